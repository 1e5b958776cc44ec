/*
 * The GEMM core shared by the pointwise and the im2col convolutions: int8 weight rows times the two
 * int16 columns of a tile (input pixels minus the input zero point, layout in te_internal.h), 2 x 2
 * register tiles (two output channels x two pixels), requantised per output channel.
 *
 * DSP path: one 32-bit load of weights gives four int8; SXTB16 and SXTB16 ROR 8 widen them into
 * (w0, w2) and (w1, w3), which meet the columns' (x0, x2) and (x1, x3) in SMLAD. Per group of four k
 * the 2 x 2 tile costs 2 weight loads, 4 SXTB16, 4 column loads and 8 SMLAD for 16 MACs (plus the
 * loop branch); the interleaved columns need a single pointer, which keeps the loop free of spills.
 *
 * On the DSP path a two-column call with a bias (every im2col convolution codegen emits) is handed
 * to te_gemm2_s8_s16 (te_pointwise.c: the same 2 x 2 tiles with the output stage of the pointwise
 * kernel); what follows serves single columns, a NULL bias and the portable path.
 *
 * Accumulators start at 0 and the bias is added modulo 2^32 at the end (the reference's
 * wrap_int32(acc + bias)). The portable path keeps the dot product in int32 without overflow while
 * K * 128 * 255 < 2^31, i.e. K = kh * kw * in_c <= 65793; the DSP path wraps like the hardware.
 */
#include "te_internal.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(TE_USE_DSP)
/* GCC's pre-allocation scheduler hoists the loads of the 2 x 2 loop and spills accumulators. */
#pragma GCC optimize("no-schedule-insns")
#endif

#if defined(TE_USE_DSP)

/* Position of value k of column j (DSP layout). */
static int col_pos(int K, int j, int k)
{
    const int K4 = K & ~3;
    if (k >= K4) {
        return 2 * K4 + j * (K - K4) + (k - K4);
    }
    static const int8_t perm[4] = {0, 2, 1, 3};
    return 2 * (k & ~3) + 4 * j + perm[k & 3];
}

void te_col_put(int16_t *cols, int K, int j, int k0, const int8_t *src, int n, int32_t zp)
{
    const int K4 = K & ~3;
    int k = k0;
    const int end = k0 + n;
    /* single values up to a group boundary, whole groups with SXTAB16, single values after */
    for (; k < end && (k & 3) != 0; k++) {
        cols[col_pos(K, j, k)] = (int16_t)(*src++ - zp);
    }
    const uint32_t off = te_dup16(-zp); /* SXTAB16 adds the sign-extended bytes to (-zp, -zp) */
    int16_t *dst = cols + 2 * k + 4 * j;
    for (; k + 4 <= end && k + 4 <= K4; k += 4) {
        const uint32_t x = te_read_u32(src);
        te_write_u32(dst, te_sxtab16(off, x));          /* (x0 - zp, x2 - zp) */
        te_write_u32(dst + 2, te_sxtab16_ror8(off, x)); /* (x1 - zp, x3 - zp) */
        src += 4;
        dst += 8;
    }
    for (; k < end; k++) {
        cols[col_pos(K, j, k)] = (int16_t)(*src++ - zp);
    }
}

void te_col_zero(int16_t *cols, int K, int j, int k0, int n)
{
    const int K4 = K & ~3;
    int k = k0;
    const int end = k0 + n;
    for (; k < end && (k & 3) != 0; k++) {
        cols[col_pos(K, j, k)] = 0;
    }
    for (; k + 4 <= end && k + 4 <= K4; k += 4) {
        te_write_u32(cols + 2 * k + 4 * j, 0u);
        te_write_u32(cols + 2 * k + 4 * j + 2, 0u);
    }
    for (; k < end; k++) {
        cols[col_pos(K, j, k)] = 0;
    }
}

/* Two weight rows x two columns. */
static void dot_2x2(const int8_t *restrict wa, const int8_t *restrict wb, const int16_t *restrict c, int K,
                    int32_t s[4])
{
    int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0;
    for (int g = K >> 2; g > 0; g--) {
        const uint32_t a = te_read_u32(wa), b = te_read_u32(wb);
        uint32_t x0 = te_read_u32(c), x1 = te_read_u32(c + 2);
        const uint32_t a02 = te_sxtb16(a), a13 = te_sxtb16_ror8(a);
        s00 = te_smlad(a02, x0, s00);
        s00 = te_smlad(a13, x1, s00);
        const uint32_t b02 = te_sxtb16(b), b13 = te_sxtb16_ror8(b);
        s10 = te_smlad(b02, x0, s10);
        s10 = te_smlad(b13, x1, s10);
        x0 = te_read_u32(c + 4);
        x1 = te_read_u32(c + 6);
        s01 = te_smlad(a02, x0, s01);
        s01 = te_smlad(a13, x1, s01);
        s11 = te_smlad(b02, x0, s11);
        s11 = te_smlad(b13, x1, s11);
        wa += 4;
        wb += 4;
        c += 8;
    }
    const int t = K & 3;
    for (int k = 0; k < t; k++) { /* tails: column 0 at c[k], column 1 at c[t + k] */
        const int32_t x0 = c[k], x1 = c[t + k], ka = wa[k], kb = wb[k];
        s00 = te_add_wrap(s00, ka * x0);
        s01 = te_add_wrap(s01, ka * x1);
        s10 = te_add_wrap(s10, kb * x0);
        s11 = te_add_wrap(s11, kb * x1);
    }
    s[0] = s00;
    s[1] = s01;
    s[2] = s10;
    s[3] = s11;
}

/* One weight row x two columns. */
static void dot_1x2(const int8_t *restrict wa, const int16_t *restrict c, int K, int32_t s[2])
{
    int32_t s0 = 0, s1 = 0;
    for (int g = K >> 2; g > 0; g--) {
        const uint32_t a = te_read_u32(wa);
        const uint32_t a02 = te_sxtb16(a), a13 = te_sxtb16_ror8(a);
        s0 = te_smlad(a02, te_read_u32(c), s0);
        s0 = te_smlad(a13, te_read_u32(c + 2), s0);
        s1 = te_smlad(a02, te_read_u32(c + 4), s1);
        s1 = te_smlad(a13, te_read_u32(c + 6), s1);
        wa += 4;
        c += 8;
    }
    const int t = K & 3;
    for (int k = 0; k < t; k++) {
        s0 = te_add_wrap(s0, wa[k] * c[k]);
        s1 = te_add_wrap(s1, wa[k] * c[t + k]);
    }
    s[0] = s0;
    s[1] = s1;
}

/* Two weight rows x column 0. */
static void dot_2x1(const int8_t *restrict wa, const int8_t *restrict wb, const int16_t *restrict c, int K,
                    int32_t s[2])
{
    int32_t s0 = 0, s1 = 0;
    for (int g = K >> 2; g > 0; g--) {
        const uint32_t a = te_read_u32(wa), b = te_read_u32(wb);
        const uint32_t x02 = te_read_u32(c), x13 = te_read_u32(c + 2);
        s0 = te_smlad(te_sxtb16(a), x02, s0);
        s0 = te_smlad(te_sxtb16_ror8(a), x13, s0);
        s1 = te_smlad(te_sxtb16(b), x02, s1);
        s1 = te_smlad(te_sxtb16_ror8(b), x13, s1);
        wa += 4;
        wb += 4;
        c += 8;
    }
    for (int k = 0; k < (K & 3); k++) {
        s0 = te_add_wrap(s0, wa[k] * c[k]);
        s1 = te_add_wrap(s1, wb[k] * c[k]);
    }
    s[0] = s0;
    s[1] = s1;
}

static int32_t dot_1x1(const int8_t *restrict wa, const int16_t *restrict c, int K)
{
    int32_t s0 = 0;
    for (int g = K >> 2; g > 0; g--) {
        const uint32_t a = te_read_u32(wa);
        s0 = te_smlad(te_sxtb16(a), te_read_u32(c), s0);
        s0 = te_smlad(te_sxtb16_ror8(a), te_read_u32(c + 2), s0);
        wa += 4;
        c += 8;
    }
    for (int k = 0; k < (K & 3); k++) {
        s0 = te_add_wrap(s0, wa[k] * c[k]);
    }
    return s0;
}

#else /* portable: column j at cols + j * K */

void te_col_put(int16_t *cols, int K, int j, int k0, const int8_t *src, int n, int32_t zp)
{
    int16_t *restrict dst = cols + (size_t)j * (size_t)K + k0;
    for (int i = 0; i < n; i++) {
        dst[i] = (int16_t)(src[i] - zp);
    }
}

void te_col_zero(int16_t *cols, int K, int j, int k0, int n)
{
    memset(cols + (size_t)j * (size_t)K + k0, 0, (size_t)n * sizeof(int16_t));
}

static void dot_2x2(const int8_t *restrict wa, const int8_t *restrict wb, const int16_t *restrict c, int K,
                    int32_t s[4])
{
    const int16_t *restrict c1 = c + K;
    int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0;
    for (int k = 0; k < K; k++) {
        const int32_t x0 = c[k], x1 = c1[k], ka = wa[k], kb = wb[k];
        s00 += ka * x0;
        s01 += ka * x1;
        s10 += kb * x0;
        s11 += kb * x1;
    }
    s[0] = s00;
    s[1] = s01;
    s[2] = s10;
    s[3] = s11;
}

static void dot_1x2(const int8_t *restrict wa, const int16_t *restrict c, int K, int32_t s[2])
{
    const int16_t *restrict c1 = c + K;
    int32_t s0 = 0, s1 = 0;
    for (int k = 0; k < K; k++) {
        const int32_t ka = wa[k];
        s0 += ka * c[k];
        s1 += ka * c1[k];
    }
    s[0] = s0;
    s[1] = s1;
}

static void dot_2x1(const int8_t *restrict wa, const int8_t *restrict wb, const int16_t *restrict c, int K,
                    int32_t s[2])
{
    int32_t s0 = 0, s1 = 0;
    for (int k = 0; k < K; k++) {
        const int32_t x = c[k];
        s0 += wa[k] * x;
        s1 += wb[k] * x;
    }
    s[0] = s0;
    s[1] = s1;
}

static int32_t dot_1x1(const int8_t *restrict wa, const int16_t *restrict c, int K)
{
    int32_t s0 = 0;
    for (int k = 0; k < K; k++) {
        s0 += wa[k] * c[k];
    }
    return s0;
}

#endif /* TE_USE_DSP */

#if defined(__GNUC__)
#define TE_NOINLINE __attribute__((noinline))
#else
#define TE_NOINLINE
#endif

/* Requantisation of one channel's outputs for shift > -2 (rare): kept out of the hot loop. */
static TE_NOINLINE void requant_slow(const int32_t *s, int n, int32_t mult, int32_t shift, int32_t b,
                                     const te_quant_t *q, int8_t *y0, int8_t *y1)
{
    const te_rq_t r = te_rq_make(mult, shift);
    *y0 = te_rq_s8(&r, te_add_wrap(s[0], b), q->out_zp, q->act_min, q->act_max);
    if (n == 2) {
        *y1 = te_rq_s8(&r, te_add_wrap(s[1], b), q->out_zp, q->act_min, q->act_max);
    }
}

/* Fast requantisation (te_rq_scale for shift <= -2) + zero point + clamp. */
TE_INLINE int8_t rq_fast(int32_t acc, int32_t mult, int32_t hpos, int32_t em1, int32_t zp, int32_t lo, int32_t hi)
{
    return te_out_s8(te_rq_fast(acc, mult, hpos, em1), zp, lo, hi);
}

/* Output parameters of a GEMM call, copied out of te_quant_t once (the int8 stores could otherwise
 * alias them, and the compiler would reload them for every output). */
typedef struct {
    const int32_t *mult, *shift, *bias;
    int32_t zp, lo, hi;
} gemm_out_t;

/* Bias, requantisation and stores of channel o for the tile's one or two pixels. */
TE_INLINE void requant_channel(const int32_t *s, int n, int o, const gemm_out_t *g, const te_quant_t *q,
                               int8_t *restrict y0, int8_t *restrict y1)
{
    const int32_t b = te_bias(g->bias, o), mult = g->mult[o], shift = g->shift[o];
    if (shift <= -2) {
        const int32_t hpos = (int32_t)(1u << (-2 - shift)), em1 = -1 - shift;
        *y0 = rq_fast(te_add_wrap(s[0], b), mult, hpos, em1, g->zp, g->lo, g->hi);
        if (n == 2) {
            *y1 = rq_fast(te_add_wrap(s[1], b), mult, hpos, em1, g->zp, g->lo, g->hi);
        }
    } else {
        requant_slow(s, n, mult, shift, b, q, y0, y1);
    }
}

void te_gemm_s8_s16(const int8_t *w, const int16_t *cols, int ncols, int K, int out_c, const int32_t *bias,
                    const te_quant_t *q, int8_t *out0, int8_t *out1)
{
#if defined(TE_USE_DSP)
    if (ncols == 2 && bias != NULL) {
        te_gemm2_s8_s16(w, cols, K, out_c, bias, q, out0, out1);
        return;
    }
#endif
    const gemm_out_t g = {q->mult, q->shift, bias, q->out_zp, q->act_min, q->act_max};
    int8_t *restrict y0 = out0;
    int8_t *restrict y1 = out1;
    const int8_t *wrow = w;
    int o = 0;
    int32_t s[4];

    if (ncols == 2) {
        for (; o + 2 <= out_c; o += 2) {
            dot_2x2(wrow, wrow + K, cols, K, s);
            requant_channel(s, 2, o, &g, q, y0 + o, y1 + o);
            requant_channel(s + 2, 2, o + 1, &g, q, y0 + o + 1, y1 + o + 1);
            wrow += 2 * K;
        }
        if (o < out_c) {
            dot_1x2(wrow, cols, K, s);
            requant_channel(s, 2, o, &g, q, y0 + o, y1 + o);
        }
        return;
    }
    for (; o + 2 <= out_c; o += 2) {
        dot_2x1(wrow, wrow + K, cols, K, s);
        requant_channel(s, 1, o, &g, q, y0 + o, NULL);
        requant_channel(s + 1, 1, o + 1, &g, q, y0 + o + 1, NULL);
        wrow += 2 * K;
    }
    if (o < out_c) {
        s[0] = dot_1x1(wrow, cols, K);
        requant_channel(s, 1, o, &g, q, y0 + o, NULL);
    }
}
