/*
 * The stem: a k_h x k_w convolution of an input with few channels (1..4, e.g. RGB), any stride and
 * padding: im2col of two output pixels at a time and 2 x 2 tiles (two output channels x two pixels),
 * specialised for the short, odd columns of such inputs (3x3x3 = 27 values):
 *
 * - the reduction length is padded to Kp = K rounded up to a multiple of 4 (27 -> 28) with zero
 *   weights, and the column's extra values are 0 (in_zp - in_zp): whole groups of four, no scalar tail,
 *   the sums exactly those of the K real values;
 * - the weights are stored by codegen already widened to int16 (codegen/stem.py): per output channel
 *   and group of four k, two words (w0, w2) and (w1, w3) -- the order SXTAB16 and SXTAB16 ROR 8 give
 *   the column's values in -- so a group of the 2 x 2 tile is 4 word loads (paired into LDRD) and
 *   8 SMLAD for 16 MACs, with no SXTB16 on the weights (the stem's weights are tiny: out_c * Kp * 2 B);
 * - the window of an output pixel is gathered as Kp int8 bytes (kernel rows copied a word at a time;
 *   padded taps and the extra values hold in_zp), then widened to int16 (x - in_zp) a word at a time;
 * - the requantisation constants of every output channel are made once per call (up to STEM_RQ_TAB
 *   channels) and, when all are on te_rq_fast's path, each channel's constants are loaded once for
 *   both pixels of a tile row.
 *
 * Bit-exact with te_conv_im2col_s8 and the reference: the same int32 sums (padding and the extra values
 * contribute 0; int16 x int16 products of int8 weights and x - in_zp in [-255, 255] are exact), the
 * same output stage.
 */
#include "te_internal.h"

#if defined(__GNUC__) && !defined(__clang__)
#define TE_STEM_UNROLL _Pragma("GCC unroll 8")
#else
#define TE_STEM_UNROLL
#endif
#if defined(__GNUC__) && !defined(__clang__) && defined(TE_USE_DSP)
/* as in te_gemm.c: GCC's pre-allocation scheduler would hoist the loads of the 2 x 2 tile and spill */
#pragma GCC optimize("no-schedule-insns")
#endif
#if defined(__GNUC__)
#define TE_STEM_INLINE static inline __attribute__((always_inline))
#else
#define TE_STEM_INLINE static inline
#endif

#define STEM_RQ_TAB 32

int te_stem_k(int k_h, int k_w, int in_c)
{
    return (k_h * k_w * in_c + 3) & ~3;
}

size_t te_stem_scratch_bytes(int k_h, int k_w, int in_c)
{
    return (size_t)2 * (size_t)te_stem_k(k_h, k_w, in_c) * sizeof(int16_t);
}

/* n bytes from s to d, a word at a time (n is small: one kernel row). */
TE_INLINE void stem_copy(int8_t *d, const int8_t *s, int n)
{
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        te_write_u32(d + i, te_read_u32(s + i));
    }
    for (; i < n; i++) {
        d[i] = s[i];
    }
}

/* Output (oy, ox)'s window, Kp int8 values in (ky, kx, c) order: the input byte where the tap is
 * inside the input, zp where it is padding and for the Kp - K values after the window. */
static void stem_window(const int8_t *in, const te_conv_geom_t *g, int oy, int ox, int8_t zp, int8_t *buf, int Kp)
{
    const int in_h = g->in_h, in_w = g->in_w, cin = g->in_c, kh = g->k_h, kw = g->k_w;
    const int rowlen = kw * cin;
    const int iy0 = oy * g->stride_h - g->pad_top;
    const int ix0 = ox * g->stride_w - g->pad_left;
    /* the Kp - K (< 4) values after the window: one word store, the rows below overwrite its front */
    te_write_u32(buf + Kp - 4, (uint32_t)(uint8_t)zp * 0x01010101u);
    if (iy0 >= 0 && iy0 + kh <= in_h && ix0 >= 0 && ix0 + kw <= in_w) { /* inside: rows copied whole */
        const size_t pitch = (size_t)in_w * (size_t)cin;
        const int8_t *s = in + ((size_t)iy0 * (size_t)in_w + (size_t)ix0) * (size_t)cin;
        for (int ky = 0; ky < kh; ky++) {
            stem_copy(buf, s, rowlen);
            buf += rowlen;
            s += pitch;
        }
        return;
    }
    const int kx0 = ix0 < 0 ? -ix0 : 0;
    const int kx1 = ix0 + kw > in_w ? in_w - ix0 : kw;
    for (int ky = 0; ky < kh; ky++) {
        int8_t *d = buf + ky * rowlen;
        const int iy = iy0 + ky;
        for (int i = 0; i < rowlen; i++) {
            d[i] = zp;
        }
        if (iy < 0 || iy >= in_h || kx0 >= kx1) {
            continue;
        }
        const int8_t *s = in + ((size_t)iy * (size_t)in_w + (size_t)(ix0 + kx0)) * (size_t)cin;
        stem_copy(d + kx0 * cin, s, (kx1 - kx0) * cin);
    }
}

/* Per output channel: bias and requantisation constants. */
typedef struct {
    te_rq_t rq;
    int32_t bias;
    int32_t hz; /* folded output stage (DSP path): rq.hpos + out_zp * 2^em1 */
} stem_ch_t;

TE_INLINE stem_ch_t stem_ch(const int32_t *bias, const te_quant_t *q, int o)
{
    stem_ch_t c;
    c.rq = te_rq_make(q->mult[o], q->shift[o]);
    c.bias = te_bias(bias, o);
    c.hz = 0;
    return c;
}

TE_INLINE int8_t stem_out(const stem_ch_t *c, int32_t acc, const te_quant_t *q)
{
    return te_rq_s8(&c->rq, te_add_wrap(acc, c->bias), q->out_zp, q->act_min, q->act_max);
}

#if defined(TE_USE_DSP)
/* Column j (j = 0, 1): per group of four, the words (x0 - zp, x2 - zp) and (x1 - zp, x3 - zp). */
TE_INLINE void stem_widen(const int8_t *buf, int Kp, uint32_t off, uint32_t *col)
{
    for (int k = 0; k < Kp; k += 4) {
        const uint32_t v = te_read_u32(buf + k);
        col[0] = te_sxtab16(off, v);
        col[1] = te_sxtab16_ror8(off, v);
        col += 2;
    }
}

/* Output channels (wa, wb: Kp / 2 words each) x columns (c0, c1): the 2 x 2 sums, those of channel a
 * starting from ia, those of channel b from ib (the folded output stage starts them from the biases). */
TE_STEM_INLINE void stem_dot_2x2_from(const uint32_t *wa, const uint32_t *wb, const uint32_t *c0, const uint32_t *c1,
                                      int Kp, int32_t ia, int32_t ib, int32_t *s)
{
    int32_t s00 = ia, s01 = ia, s10 = ib, s11 = ib;
    TE_STEM_UNROLL
    for (int i = 0; i < Kp / 2; i += 2) {
        const uint32_t a02 = wa[i], a13 = wa[i + 1], x0 = c0[i], x1 = c0[i + 1];
        s00 = te_smlad(a13, x1, te_smlad(a02, x0, s00));
        const uint32_t b02 = wb[i], b13 = wb[i + 1];
        s10 = te_smlad(b13, x1, te_smlad(b02, x0, s10));
        const uint32_t z0 = c1[i], z1 = c1[i + 1];
        s01 = te_smlad(a13, z1, te_smlad(a02, z0, s01));
        s11 = te_smlad(b13, z1, te_smlad(b02, z0, s11));
    }
    s[0] = s00;
    s[1] = s01;
    s[2] = s10;
    s[3] = s11;
}

/* The same, not unrolled (any Kp: keeps the generic instance small). */
static void stem_dot_2x2_plain(const uint32_t *wa, const uint32_t *wb, const uint32_t *c0, const uint32_t *c1,
                               int Kp, int32_t ia, int32_t ib, int32_t *s)
{
    int32_t s00 = ia, s01 = ia, s10 = ib, s11 = ib;
    for (int i = 0; i < Kp / 2; i += 2) {
        const uint32_t a02 = wa[i], a13 = wa[i + 1], x0 = c0[i], x1 = c0[i + 1];
        s00 = te_smlad(a13, x1, te_smlad(a02, x0, s00));
        const uint32_t b02 = wb[i], b13 = wb[i + 1];
        s10 = te_smlad(b13, x1, te_smlad(b02, x0, s10));
        const uint32_t z0 = c1[i], z1 = c1[i + 1];
        s01 = te_smlad(a13, z1, te_smlad(a02, z0, s01));
        s11 = te_smlad(b13, z1, te_smlad(b02, z0, s11));
    }
    s[0] = s00;
    s[1] = s01;
    s[2] = s10;
    s[3] = s11;
}

/* Columns c0 and c1 through every output channel into y0 and (when not NULL) y1; inlined into the
 * instances below, Kp a constant in the usual ones (the group loop unrolls, fixed offsets). */
TE_STEM_INLINE void stem_tile_row(const uint32_t *w, const uint32_t *c0, const uint32_t *c1, int Kp, int out_c,
                                  const stem_ch_t *tab, int fast, const int32_t *bias, const te_quant_t *q, int8_t *y0,
                                  int8_t *y1, int unrolled)
{
#define STEM_DOT_FROM(...) (unrolled ? stem_dot_2x2_from(__VA_ARGS__) : stem_dot_2x2_plain(__VA_ARGS__))
    const int half = Kp / 2;
    if (fast == 2) { /* folded: every channel on te_rq_fast with em1 <= 22 and no fused clamp; the sums
                      * start from the biases, out_zp is in each channel's rounding word (hz), and the
                      * tile's four outputs are stored straight from it */
        for (int o = 0; o < out_c; o += 2) {
            const int two = o + 1 < out_c;
            const stem_ch_t *ca = &tab[o], *cb = two ? &tab[o + 1] : ca;
            const uint32_t *wa = w + (size_t)o * (size_t)half;
            int32_t s[4];
            STEM_DOT_FROM(wa, two ? wa + half : wa, c0, c1, Kp, ca->bias, cb->bias, s);
            y0[o] = (int8_t)te_ssat8(te_rq_fast(s[0], ca->rq.mult, ca->hz, ca->rq.em1));
            if (y1 != NULL) {
                y1[o] = (int8_t)te_ssat8(te_rq_fast(s[1], ca->rq.mult, ca->hz, ca->rq.em1));
            }
            if (two) {
                y0[o + 1] = (int8_t)te_ssat8(te_rq_fast(s[2], cb->rq.mult, cb->hz, cb->rq.em1));
                if (y1 != NULL) {
                    y1[o + 1] = (int8_t)te_ssat8(te_rq_fast(s[3], cb->rq.mult, cb->hz, cb->rq.em1));
                }
            }
        }
        return;
    }
    if (fast) { /* every channel on te_rq_fast: sums first, then each channel's constants loaded once */
        const int32_t ozp = q->out_zp, lo = q->act_min, hi = q->act_max;
        int32_t a0[STEM_RQ_TAB + 1], a1[STEM_RQ_TAB + 1];
        for (int o = 0; o < out_c; o += 2) {
            const uint32_t *wa = w + (size_t)o * (size_t)half;
            int32_t s[4];
            STEM_DOT_FROM(wa, o + 1 < out_c ? wa + half : wa, c0, c1, Kp, 0, 0, s);
            a0[o] = s[0];
            a1[o] = s[1];
            a0[o + 1] = s[2]; /* o + 1 <= out_c <= STEM_RQ_TAB */
            a1[o + 1] = s[3];
        }
        if (lo == -128 && hi == 127) { /* no fused clamp inside the int8 range: SSAT */
            for (int o = 0; o < out_c; o++) {
                const stem_ch_t *c = &tab[o];
                const int32_t b = c->bias, m = c->rq.mult, hp = c->rq.hpos, e = c->rq.em1;
                y0[o] = te_out_ssat8(te_rq_fast(te_add_wrap(a0[o], b), m, hp, e), ozp);
                if (y1 != NULL) {
                    y1[o] = te_out_ssat8(te_rq_fast(te_add_wrap(a1[o], b), m, hp, e), ozp);
                }
            }
            return;
        }
        for (int o = 0; o < out_c; o++) {
            const stem_ch_t *c = &tab[o];
            const int32_t b = c->bias, m = c->rq.mult, hp = c->rq.hpos, e = c->rq.em1;
            y0[o] = te_out_s8(te_rq_fast(te_add_wrap(a0[o], b), m, hp, e), ozp, lo, hi);
            if (y1 != NULL) {
                y1[o] = te_out_s8(te_rq_fast(te_add_wrap(a1[o], b), m, hp, e), ozp, lo, hi);
            }
        }
        return;
    }
    for (int o = 0; o < out_c; o += 2) {
        const int two = o + 1 < out_c;
        int32_t s[4];
        const uint32_t *wa = w + (size_t)o * (size_t)half;
        STEM_DOT_FROM(wa, two ? wa + half : wa, c0, c1, Kp, 0, 0, s);
        const stem_ch_t ca = tab != NULL ? tab[o] : stem_ch(bias, q, o);
        y0[o] = stem_out(&ca, s[0], q);
        if (y1 != NULL) {
            y1[o] = stem_out(&ca, s[1], q);
        }
        if (two) {
            const stem_ch_t cb = tab != NULL ? tab[o + 1] : stem_ch(bias, q, o + 1);
            y0[o + 1] = stem_out(&cb, s[2], q);
            if (y1 != NULL) {
                y1[o + 1] = stem_out(&cb, s[3], q);
            }
        }
    }
}

#define STEM_ROWS(NAME, KP, UNR)                                                                                \
    static void NAME(const uint32_t *w, const uint32_t *c0, const uint32_t *c1, int Kp, int out_c,             \
                     const stem_ch_t *tab, int fast, const int32_t *bias, const te_quant_t *q, int8_t *y0,      \
                     int8_t *y1)                                                                                \
    {                                                                                                           \
        (void)Kp;                                                                                               \
        stem_tile_row(w, c0, c1, (KP), out_c, tab, fast, bias, q, y0, y1, UNR);                                \
    }
STEM_ROWS(stem_rows_k12, 12, 1) /* 3x3, 1 channel */
STEM_ROWS(stem_rows_k28, 28, 1) /* 3x3, 3 channels (the RGB stem) */
STEM_ROWS(stem_rows_any, Kp, 0)
#undef STEM_DOT_FROM

#else /* portable */

/* The int16 lane of a weight word (two's complement, as te_internal.h relies on). */
TE_INLINE int32_t stem_lo(uint32_t v)
{
    return (int32_t)(int16_t)(uint16_t)(v & 0xFFFFu);
}

TE_INLINE int32_t stem_hi(uint32_t v)
{
    return (int32_t)(int16_t)(uint16_t)(v >> 16);
}

/* Output channel o's sums over columns x0 and x1 (natural order). */
TE_INLINE void stem_dot_1x2(const uint32_t *row, const int16_t *x0, const int16_t *x1, int Kp, int32_t *s)
{
    int32_t s0 = 0, s1 = 0;
    for (int k = 0; k < Kp; k += 4) {
        const uint32_t v02 = row[0], v13 = row[1];
        const int32_t w0 = stem_lo(v02), w2 = stem_hi(v02), w1 = stem_lo(v13), w3 = stem_hi(v13);
        s0 += w0 * x0[k] + w1 * x0[k + 1] + w2 * x0[k + 2] + w3 * x0[k + 3];
        s1 += w0 * x1[k] + w1 * x1[k + 1] + w2 * x1[k + 2] + w3 * x1[k + 3];
        row += 2;
    }
    s[0] = s0;
    s[1] = s1;
}

/* Columns x0 (and x1 when y1 != NULL) through every output channel. */
static void stem_rows_portable(const uint32_t *w, const int16_t *x0, const int16_t *x1, int Kp, int out_c,
                               const stem_ch_t *tab, const int32_t *bias, const te_quant_t *q, int8_t *y0,
                               int8_t *y1)
{
    for (int o = 0; o < out_c; o++) {
        int32_t s[2];
        if (Kp == 28) { /* the RGB 3x3 stem: a constant trip count */
            stem_dot_1x2(w + (size_t)o * 14u, x0, x1, 28, s);
        } else {
            stem_dot_1x2(w + (size_t)o * (size_t)(Kp / 2), x0, x1, Kp, s);
        }
        const stem_ch_t c = tab != NULL ? tab[o] : stem_ch(bias, q, o);
        y0[o] = stem_out(&c, s[0], q);
        if (y1 != NULL) {
            y1[o] = stem_out(&c, s[1], q);
        }
    }
}

#endif /* TE_USE_DSP */

int te_conv_stem_s8(const int8_t *in, const te_conv_geom_t *g, const int32_t *w, const int32_t *bias,
                    const te_quant_t *q, int8_t *out, int16_t *scratch)
{
    const int Kp = te_stem_k(g->k_h, g->k_w, g->in_c);
    if (g->in_c > TE_STEM_MAX_IN_C || Kp > TE_STEM_MAX_K) {
        return -1;
    }
    int8_t buf[TE_STEM_MAX_K];
    const int8_t zp = (int8_t)q->in_zp;
    const int out_w = g->out_w, out_c = g->out_c;
    const int n = g->out_h * out_w;
    const uint32_t *wu = (const uint32_t *)(const void *)w;
    stem_ch_t tab[STEM_RQ_TAB];
    const stem_ch_t *t = NULL;
    int fast = 0;
    if (out_c <= STEM_RQ_TAB) {
        fast = 1;
        for (int o = 0; o < out_c; o++) {
            tab[o] = stem_ch(bias, q, o);
            fast &= tab[o].rq.fast;
        }
        t = tab;
#if defined(TE_USE_DSP)
        if (fast && q->act_min == -128 && q->act_max == 127) { /* the folded output stage (stem_tile_row) */
            int fold = 1;
            for (int o = 0; o < out_c; o++) {
                fold &= tab[o].rq.em1 <= 22; /* |X| <= 2^30 and |out_zp * 2^em1| <= 2^29: no overflow */
                tab[o].hz = te_add_wrap(tab[o].rq.hpos, (int32_t)((uint32_t)q->out_zp << tab[o].rq.em1));
            }
            fast = fold ? 2 : 1;
        }
#endif
    }
#if defined(TE_USE_DSP)
    const uint32_t off = te_dup16(-q->in_zp);
    uint32_t *c0 = (uint32_t *)(void *)scratch, *c1 = c0 + Kp / 2; /* int32-aligned (the planner) */
    void (*rows)(const uint32_t *, const uint32_t *, const uint32_t *, int, int, const stem_ch_t *, int,
                 const int32_t *, const te_quant_t *, int8_t *, int8_t *) =
        Kp == 28 ? stem_rows_k28 : Kp == 12 ? stem_rows_k12 : stem_rows_any;
#endif
    int oy = 0, ox = 0;
    for (int p = 0; p < n; p += 2) {
        const int two = p + 1 < n;
        int8_t *y = out + (size_t)p * (size_t)out_c;
#if defined(TE_USE_DSP)
        stem_window(in, g, oy, ox, zp, buf, Kp);
        stem_widen(buf, Kp, off, c0);
        if (++ox == out_w) {
            ox = 0;
            oy++;
        }
        if (two) {
            stem_window(in, g, oy, ox, zp, buf, Kp);
            stem_widen(buf, Kp, off, c1);
            if (++ox == out_w) {
                ox = 0;
                oy++;
            }
        }
        rows(wu, c0, two ? c1 : c0, Kp, out_c, t, fast, bias, q, y, two ? y + out_c : NULL);
#else
        int16_t *x0 = scratch, *x1 = scratch + Kp;
        for (int j = 0; j <= two; j++) {
            stem_window(in, g, oy, ox, zp, buf, Kp);
            for (int k = 0; k < Kp; k++) {
                (j ? x1 : x0)[k] = (int16_t)(buf[k] - q->in_zp);
            }
            if (++ox == out_w) {
                ox = 0;
                oy++;
            }
        }
        stem_rows_portable(wu, x0, two ? x1 : x0, Kp, out_c, t, bias, q, y, two ? y + out_c : NULL);
#endif
    }
    return 0;
}
