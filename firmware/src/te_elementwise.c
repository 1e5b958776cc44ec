/*
 * Requantisation entry point, elementwise ADD, average pooling and fully connected.
 */
#include "te_internal.h"

int32_t te_requantize(int32_t acc, int32_t mult, int32_t shift)
{
    if (mult < 0) { /* outside QuantizeMultiplier's range: the literal gemmlowp arithmetic */
        return te_mbqm(acc, mult, shift);
    }
    const te_rq_t r = te_rq_make(mult, shift); /* the kernels' fast path, tested through here */
    return te_rq_scale(&r, acc);
}

/* One input of ADD scaled without 64-bit arithmetic. The reference computes, for x = byte - zp
 * (|x| <= 255), RDBPOT(SRDHM(x * 2^ls, M), e) with M in [0, 2^31), e = -shift >= 0. With s = 31 - ls:
 * SRDHM(x 2^ls, M) = floor((x M + 2^(s-1)) / 2^s) (2^ls divides both terms), and, as in te_rq_fast,
 * RDBPOT(r, e) = floor((r + 2^(e-1) - [r < 0]) / 2^e) for e >= 1. [r < 0] may be replaced by [x < 0]:
 * they differ only for x < 0 with |x| M <= 2^(s-1), where both give 0 (the merged numerator lies in
 * [0, 2^(s+e))); the nested floors merge. Splitting M = mh 2^s + ml:
 *   out = (x mh + 2^(e-1) - [x < 0] + ((x ml + 2^(s-1)) >> s)) >> e          (e >= 1)
 *   out =  x mh + ((x ml + 2^(s-1)) >> s)                                    (e = 0)
 * in int32 without overflow for 8 <= s <= 22 (|x mh| < 2^8 2^(31-s), |x ml| < 2^(8+s)). */
typedef struct {
    int32_t zp, mh, ml, c, k, sgn, e;
} add_in_t;

static add_in_t add_in_make(int32_t zp, int32_t mult, int32_t shift, int32_t ls)
{
    const int32_t sh = 31 - ls, e = -shift;
    add_in_t r;
    r.zp = zp;
    r.mh = mult >> sh;
    r.ml = mult & (int32_t)((1u << sh) - 1u);
    r.c = (int32_t)(1u << (sh - 1));
    r.k = e > 0 ? (int32_t)(1u << (e - 1)) : 0;
    r.sgn = e > 0 ? -1 : 0;
    r.e = e;
    return r;
}

TE_INLINE int32_t add_in_scale(const add_in_t *r, int32_t sh, int32_t x)
{
    const int32_t t = (x * r->ml + r->c) >> sh;
    return (x * r->mh + r->k + t + ((x >> 31) & r->sgn)) >> r->e;
}

/* The TFLM case (input shifts <= 0, output shift <= -2) with 9 <= ls <= 23. */
static void add_split(const int8_t *a, const int8_t *b, int n, const te_add_params_t *p, int8_t *out)
{
    const int32_t ls = p->left_shift, sh = 31 - ls;
    const add_in_t ra = add_in_make(p->a_zp, p->a_mult, p->a_shift, ls);
    const add_in_t rb = add_in_make(p->b_zp, p->b_mult, p->b_shift, ls);
    const int32_t mo = p->out_mult, e = -p->out_shift, hpos = (int32_t)(1u << (e - 2)), em1 = e - 1;
    const int32_t zp = p->out_zp, lo = p->act_min, hi = p->act_max;
    for (int i = 0; i < n; i++) {
        const int32_t sa = add_in_scale(&ra, sh, a[i] - ra.zp);
        const int32_t sb = add_in_scale(&rb, sh, b[i] - rb.zp);
        out[i] = te_out_s8(te_rq_fast(te_add_wrap(sa, sb), mo, hpos, em1), zp, lo, hi);
    }
}

#if defined(__GNUC__)
#define ADD_INLINE static inline __attribute__((always_inline))
#define ADD_NOINLINE __attribute__((noinline))
#else
#define ADD_INLINE static inline
#define ADD_NOINLINE
#endif

/* TFLM's usual parameters: left shift 20 and the input with the larger scale at multiplier 0.5 =
 * (2^30, 0), which makes its scaled value exactly x_a 2^19 (SRDHM(x 2^20, 2^30) = x 2^19). The other
 * input has e = -shift in [1, 19], so add_split's constants fold: c + 2^(e-1) 2^11 < 2^30 and the
 * sign term is always taken. The output's zero point is folded into the high word of the rounding
 * addend: (hi + zp 2^(e_o - 1)) >> (e_o - 1) = (hi >> (e_o - 1)) + zp, exact, and without overflow
 * for e_o - 1 <= 22 (|hi| < 2^30, |zp| 2^22 <= 2^29). `full` (a literal): the clamp is [-128, 127]. */
ADD_INLINE void add_half_body(const int8_t *a, const int8_t *b, int n, int32_t a_zp, const add_in_t *rb,
                              const te_add_params_t *p, int8_t *out, int full)
{
    const int32_t zb = rb->zp, ml = rb->ml, mh = rb->mh, eb = rb->e;
    const int32_t c = rb->c + (rb->k << 11);
    const int32_t ca = -(a_zp * (1 << 19));
    const int32_t mo = p->out_mult, eo = -p->out_shift, em1 = eo - 1;
    const int32_t hz = (int32_t)(1u << (eo - 2)) + p->out_zp * (1 << em1);
    const int32_t lo = p->act_min, hi = p->act_max;
    for (int i = 0; i < n; i++) {
        const int32_t xa = a[i], xb = b[i] - zb;
        const int32_t t = (xb * ml + c) >> 11;
        const int32_t sb = (xb * mh + t + (xb >> 31)) >> eb;
        const int32_t acc = xa * (1 << 19) + ca + sb;
        const uint32_t l = 0x40000000u | ((uint32_t)acc & 0x80000000u);
        const int32_t h = hz + (acc >> 31);
        const int64_t q = (int64_t)(((uint64_t)(uint32_t)h << 32) | l) + (int64_t)acc * mo;
        int32_t v = (int32_t)(q >> 32) >> em1;
        if (full) {
#if defined(TE_USE_DSP)
            v = te_ssat8(v);
#else
            v = v < -128 ? -128 : v;
            v = v > 127 ? 127 : v;
#endif
        } else {
            v = v < lo ? lo : v;
            v = v > hi ? hi : v;
        }
        out[i] = (int8_t)v;
    }
}

static ADD_NOINLINE void add_half_full(const int8_t *a, const int8_t *b, int n, int32_t a_zp, const add_in_t *rb,
                                       const te_add_params_t *p, int8_t *out)
{
    add_half_body(a, b, n, a_zp, rb, p, out, 1);
}

static ADD_NOINLINE void add_half_clamp(const int8_t *a, const int8_t *b, int n, int32_t a_zp, const add_in_t *rb,
                                        const te_add_params_t *p, int8_t *out)
{
    add_half_body(a, b, n, a_zp, rb, p, out, 0);
}

/* add_half's preconditions; on success the half-scale input is passed first (ADD commutes). */
static int add_half(const int8_t *a, const int8_t *b, int n, const te_add_params_t *p, int8_t *out)
{
    const int half = te_add_half_input(p);
    if (half == 0) {
        return 0;
    }
    const int a_half = half == 1;
    const int32_t m = a_half ? p->b_mult : p->a_mult, sh = a_half ? p->b_shift : p->a_shift;
    if (m < 0 || sh > -1 || sh < -19) {
        return 0;
    }
    const add_in_t r = add_in_make(a_half ? p->b_zp : p->a_zp, m, sh, 20);
    const int32_t zh = a_half ? p->a_zp : p->b_zp;
    const int8_t *x = a_half ? a : b, *y = a_half ? b : a;
    if (p->act_min == -128 && p->act_max == 127) {
        add_half_full(x, y, n, zh, &r, p, out);
    } else {
        add_half_clamp(x, y, n, zh, &r, p, out);
    }
    return 1;
}

/* TFLM int8 ADD (integer_ops/add.h): both inputs are shifted left by left_shift (20) after removing
 * their zero points, rescaled to a common scale, summed, and the sum is rescaled to the output.
 * Each element is read before the same index is written, so `out` may alias `a` or `b` exactly
 * (in-place add); partial overlaps are not supported. */
void te_add_s8(const int8_t *a, const int8_t *b, int n, const te_add_params_t *p, int8_t *out)
{
    const int32_t ls = p->left_shift, a_zp = p->a_zp, b_zp = p->b_zp;
    const int32_t zp = p->out_zp, lo = p->act_min, hi = p->act_max;
    /* The multipliers come from QuantizeMultiplierSmallerThanOneExp: non-negative, so the fast
     * requantisation applies; anything else takes the literal arithmetic. */
    if (p->a_mult < 0 || p->b_mult < 0 || p->out_mult < 0) {
        for (int i = 0; i < n; i++) {
            const int32_t va = (int32_t)((uint32_t)(a[i] - a_zp) << ls);
            const int32_t vb = (int32_t)((uint32_t)(b[i] - b_zp) << ls);
            const int32_t sum = te_add_wrap(te_mbqm(va, p->a_mult, p->a_shift), te_mbqm(vb, p->b_mult, p->b_shift));
            out[i] = te_requant_s8(sum, p->out_mult, p->out_shift, zp, lo, hi);
        }
        return;
    }
    if (add_half(a, b, n, p, out)) {
        return;
    }
    const te_rq_t ro = te_rq_make(p->out_mult, p->out_shift);
    if (p->a_shift <= 0 && p->b_shift <= 0 && ro.fast && ls >= 9 && ls <= 23) {
        add_split(a, b, n, p, out);
        return;
    }
    if (p->a_shift <= 0 && p->b_shift <= 0 && ro.fast) {
        /* TFLM's case: inputs scaled by multipliers < 1 (RDBPOT after SRDHM, branch-free), output
         * by the fast path. */
        const int32_t ma = p->a_mult, mb = p->b_mult, ea = -p->a_shift, eb = -p->b_shift;
        const int32_t mask_a = (int32_t)((1u << ea) - 1u), mask_b = (int32_t)((1u << eb) - 1u);
        for (int i = 0; i < n; i++) {
            const int32_t va = (int32_t)((uint32_t)(a[i] - a_zp) << ls); /* |a - zp| * 2^20 < 2^28 */
            const int32_t vb = (int32_t)((uint32_t)(b[i] - b_zp) << ls);
            const int32_t ra = (int32_t)(((int64_t)va * ma + ((int64_t)1 << 30)) >> 31);
            const int32_t rb = (int32_t)(((int64_t)vb * mb + ((int64_t)1 << 30)) >> 31);
            const int32_t sa = (ra >> ea) + ((ra & mask_a) > ((mask_a >> 1) + (ra < 0)));
            const int32_t sb = (rb >> eb) + ((rb & mask_b) > ((mask_b >> 1) + (rb < 0)));
            out[i] = te_rq_s8(&ro, sa + sb, zp, lo, hi);
        }
        return;
    }
    const te_rq_t ra = te_rq_make(p->a_mult, p->a_shift);
    const te_rq_t rb = te_rq_make(p->b_mult, p->b_shift);
    for (int i = 0; i < n; i++) {
        const int32_t va = (int32_t)((uint32_t)(a[i] - a_zp) << ls);
        const int32_t vb = (int32_t)((uint32_t)(b[i] - b_zp) << ls);
        const int32_t sum = te_add_wrap(te_rq_scale(&ra, va), te_rq_scale(&rb, vb));
        out[i] = te_rq_s8(&ro, sum, zp, lo, hi);
    }
}

/* Sum / count rounded half away from zero (C division truncates), clamped. */
static int8_t pool_avg(int32_t sum, int32_t count, int32_t half, int32_t act_min, int32_t act_max)
{
    int32_t avg = 0;
    if (count > 0) {
        avg = sum > 0 ? (sum + half) / count : (sum - half) / count;
    }
    avg = avg < act_min ? act_min : avg;
    avg = avg > act_max ? act_max : avg;
    return (int8_t)avg;
}

/* TFLM AVERAGE_POOL_2D: sum of the taps inside the input over their count, rounded half away from
 * zero with C integer division; input and output share scale and zero point. A window with no
 * input pixel (impossible with padding < kernel) gives 0. */
void te_avg_pool_s8(const int8_t *in, int in_h, int in_w, int c, int k_h, int k_w, int stride_h, int stride_w,
                    int pad_top, int pad_left, int out_h, int out_w, int32_t act_min, int32_t act_max, int8_t *out)
{
    for (int oy = 0; oy < out_h; oy++) {
        const int iy0 = oy * stride_h - pad_top;
        const int y0 = iy0 < 0 ? 0 : iy0;
        const int y1 = iy0 + k_h > in_h ? in_h : iy0 + k_h;
        for (int ox = 0; ox < out_w; ox++) {
            const int ix0 = ox * stride_w - pad_left;
            const int x0 = ix0 < 0 ? 0 : ix0;
            const int x1 = ix0 + k_w > in_w ? in_w : ix0 + k_w;
            const int32_t count = (int32_t)(y1 - y0) * (int32_t)(x1 - x0);
            int8_t *y = out + ((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)c;
            const int32_t half = count / 2;
            int ch = 0;
            for (; ch + 4 <= c; ch += 4) { /* four channels per pass over the window */
                int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                for (int iy = y0; iy < y1; iy++) {
                    const int8_t *x = in + ((size_t)iy * (size_t)in_w + (size_t)x0) * (size_t)c + ch;
                    for (int ix = x0; ix < x1; ix++) {
                        s0 += x[0];
                        s1 += x[1];
                        s2 += x[2];
                        s3 += x[3];
                        x += c;
                    }
                }
                y[ch] = pool_avg(s0, count, half, act_min, act_max);
                y[ch + 1] = pool_avg(s1, count, half, act_min, act_max);
                y[ch + 2] = pool_avg(s2, count, half, act_min, act_max);
                y[ch + 3] = pool_avg(s3, count, half, act_min, act_max);
            }
            for (; ch < c; ch++) {
                int32_t sum = 0;
                for (int iy = y0; iy < y1; iy++) {
                    const int8_t *x = in + ((size_t)iy * (size_t)in_w + (size_t)x0) * (size_t)c + ch;
                    for (int ix = x0; ix < x1; ix++) {
                        sum += *x;
                        x += c;
                    }
                }
                y[ch] = pool_avg(sum, count, half, act_min, act_max);
            }
        }
    }
}

/* Fully connected: out[o] = requant(bias[o] + sum_i w[o][i] * (in[i] - in_zp)). The DSP path does
 * two output rows at a time; the input is widened with SXTAB16 (adding -in_zp to both lanes) once
 * per four inputs and shared by both rows. */
void te_fully_connected_s8(const int8_t *in, int in_n, const int8_t *w, const int32_t *bias, int out_n,
                           const te_quant_t *q, int8_t *out)
{
    const int32_t zp = q->in_zp;
    int o = 0;
#if defined(TE_USE_DSP)
    const uint32_t off = te_dup16(-zp);
    for (; o + 2 <= out_n; o += 2) {
        const int8_t *restrict wa = w + (size_t)o * (size_t)in_n;
        const int8_t *restrict wb = wa + in_n;
        const int8_t *restrict x = in;
        int32_t sa = 0, sb = 0;
        for (int g = in_n >> 2; g > 0; g--) {
            const uint32_t xv = te_read_u32(x);
            const uint32_t x02 = te_sxtab16(off, xv), x13 = te_sxtab16_ror8(off, xv);
            const uint32_t av = te_read_u32(wa), bv = te_read_u32(wb);
            sa = te_smlad(te_sxtb16(av), x02, sa);
            sa = te_smlad(te_sxtb16_ror8(av), x13, sa);
            sb = te_smlad(te_sxtb16(bv), x02, sb);
            sb = te_smlad(te_sxtb16_ror8(bv), x13, sb);
            x += 4;
            wa += 4;
            wb += 4;
        }
        for (int i = 0; i < (in_n & 3); i++) {
            const int32_t xi = x[i] - zp;
            sa = te_add_wrap(sa, wa[i] * xi);
            sb = te_add_wrap(sb, wb[i] * xi);
        }
        te_rq_t r = te_rq_make(q->mult[o], q->shift[o]);
        out[o] = te_rq_s8(&r, te_add_wrap(sa, te_bias(bias, o)), q->out_zp, q->act_min, q->act_max);
        r = te_rq_make(q->mult[o + 1], q->shift[o + 1]);
        out[o + 1] = te_rq_s8(&r, te_add_wrap(sb, te_bias(bias, o + 1)), q->out_zp, q->act_min, q->act_max);
    }
#endif
    for (; o < out_n; o++) {
        const int8_t *restrict wa = w + (size_t)o * (size_t)in_n;
        int32_t s = 0;
        for (int i = 0; i < in_n; i++) {
            s += wa[i] * (in[i] - zp);
        }
        const te_rq_t r = te_rq_make(q->mult[o], q->shift[o]);
        out[o] = te_rq_s8(&r, te_add_wrap(s, te_bias(bias, o)), q->out_zp, q->act_min, q->act_max);
    }
}
