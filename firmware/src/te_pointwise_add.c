/*
 * Pointwise convolution fused with the residual ADD that follows it (the projection of an inverted
 * residual block): the projection's requantised int8 value goes straight into the ADD's arithmetic
 * with the residual's byte, and only the sum is stored, so the projection's output tensor never exists.
 * Bit-exact with te_conv_pointwise_s8 followed by te_add_s8 (the NumPy reference composes the two).
 *
 * This file: the scratch size, the add stage's table (te_pw_add.h), the pixel-pair path used for any
 * parameters, and the portable entry point. The DSP entry point is at the end of te_pointwise.c.
 */
#include "te_pw_add.h"

size_t te_pointwise_add_scratch_bytes(int in_c, int out_c)
{
    return (size_t)2 * (size_t)in_c * sizeof(int16_t) + 256u * sizeof(int32_t) + (size_t)2 * (size_t)out_c;
}

int te_pwa_prepare(const te_add_params_t *p, int32_t *table, te_pwa_t *a)
{
    const int32_t eo = -p->out_shift;
    const int half = te_add_half_input(p);
    if (half == 0 || p->act_min != -128 || p->act_max != 127) {
        return 0;
    }
    const int a_half = half == 1;
    /* the table's input: a multiplier < 1 (TFLM's QuantizeMultiplierSmallerThanOneExp): |T| < 2^28 */
    const int32_t m = a_half ? p->b_mult : p->a_mult, sh = a_half ? p->b_shift : p->a_shift;
    const int32_t zt = a_half ? p->b_zp : p->a_zp, zl = a_half ? p->a_zp : p->b_zp;
    if (m < 0 || sh > 0 || zl < -128 || zl > 127 || zt < -128 || zt > 127) {
        return 0;
    }
    if (sh <= -2) { /* te_rq_fast: bit-exact with te_mbqm for m >= 0, shift <= -2 (te_internal.h) */
        const int32_t hpos = (int32_t)(1u << (-sh - 2)), em1 = -sh - 1;
        for (int i = -128; i < 128; i++) {
            table[i + 128] = te_rq_fast((i - zt) * (1 << 20), m, hpos, em1) - zl * (1 << 19);
        }
    } else {
        for (int i = -128; i < 128; i++) {
            table[i + 128] = te_mbqm((i - zt) * (1 << 20), m, sh) - zl * (1 << 19);
        }
    }
    a->t = table + 128;
    a->mo = p->out_mult;
    a->em1 = eo - 1;
    a->hz = (int32_t)(1u << (eo - 2)) + p->out_zp * (int32_t)(1u << (eo - 1));
    a->lin_a = a_half;
    return 1;
}

void te_pwa_generic(const int8_t *in, int p0, int n_pixels, int in_c, const int8_t *w, const int32_t *bias,
                    int out_c, const te_quant_t *q, const int8_t *res, const te_add_params_t *p,
                    const te_pwa_t *a, int8_t *out, int16_t *scratch)
{
    int8_t *pair = te_pwa_pair(scratch, in_c);
    for (int px = p0; px < n_pixels; px += 2) {
        const int np = n_pixels - px < 2 ? n_pixels - px : 2;
        const size_t o = (size_t)px * (size_t)out_c;
        const int n = np * out_c;
        te_conv_pointwise_s8(in + (size_t)px * (size_t)in_c, np, in_c, w, bias, out_c, q, pair, scratch);
        if (a != NULL) {
            te_pwa_run(pair, res + o, out + o, n, a);
        } else {
            te_add_s8(pair, res + o, n, p, out + o);
        }
    }
}

#if !defined(TE_USE_DSP) /* the DSP entry point is at the end of te_pointwise.c */
void te_conv_pointwise_add_s8(const int8_t *in, int n_pixels, int in_c, const int8_t *w, const int32_t *bias,
                              int out_c, const te_quant_t *q, const int8_t *res, const te_add_params_t *p,
                              int8_t *out, int16_t *scratch)
{
    te_pwa_t a;
    const int fold = te_pwa_prepare(p, te_pwa_table(scratch, in_c), &a);
    te_pwa_generic(in, 0, n_pixels, in_c, w, bias, out_c, q, res, p, fold ? &a : NULL, out, scratch);
}
#endif
