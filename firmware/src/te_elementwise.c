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
    const te_rq_t ro = te_rq_make(p->out_mult, p->out_shift);
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
