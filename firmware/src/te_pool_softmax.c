/*
 * Kernels imported .tflite models need: MAX_POOL_2D, MEAN over H and W, int8 SOFTMAX and PAD, with TFLite
 * Micro's reference arithmetic (NumPy reference: tinyengine/numerics/kernels_ref_tflite.py).
 *
 * Softmax is gemmlowp fixed point: the difference to the row maximum, scaled by beta * input_scale
 * into Q5.26 (input_mult, input_left_shift; differences below diff_min give exp = 0), is
 * exponentiated by exp_on_negative_values into Q0.31, the exps are summed in Q12.19, and each exp is
 * multiplied by the reciprocal of the sum (one_over_one_plus_x_for_x_in_0_1, three Newton-Raphson
 * steps). Additions of raw fixed-point values wrap modulo 2^32 like the reference (done in uint32).
 */
#include "te_internal.h"

/* ------------------------------------------------------------------------------------------------
 * MAX_POOL_2D
 * --------------------------------------------------------------------------------------------- */
void te_max_pool_s8(const int8_t *in, int in_h, int in_w, int c, int k_h, int k_w, int stride_h, int stride_w,
                    int pad_top, int pad_left, int out_h, int out_w, int32_t act_min, int32_t act_max, int8_t *out)
{
    for (int oy = 0; oy < out_h; oy++) {
        int y0, y1;
        te_pool_span(oy, stride_h, pad_top, k_h, in_h, &y0, &y1);
        for (int ox = 0; ox < out_w; ox++) {
            int x0, x1;
            te_pool_span(ox, stride_w, pad_left, k_w, in_w, &x0, &x1);
            int8_t *y = out + ((size_t)oy * (size_t)out_w + (size_t)ox) * (size_t)c;
            for (int ch = 0; ch < c; ch++) {
                int32_t m = -128;
                for (int iy = y0; iy < y1; iy++) {
                    const int8_t *x = in + ((size_t)iy * (size_t)in_w + (size_t)x0) * (size_t)c + ch;
                    for (int ix = x0; ix < x1; ix++) {
                        m = *x > m ? *x : m;
                        x += c;
                    }
                }
                m = m < act_min ? act_min : m;
                m = m > act_max ? act_max : m;
                y[ch] = (int8_t)m;
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------------
 * MEAN over H and W (TFLite QuantizedMeanOrSum): out[c] = MBQM(sum - in_zp * n, mult, shift) + out_zp,
 * 1/n already folded into mult/shift by codegen (kernels_ref_tflite.mean_params).
 * --------------------------------------------------------------------------------------------- */
void te_mean_hw_s8(const int8_t *in, int n_pixels, int c, int32_t in_zp, int32_t mult, int32_t shift,
                   int32_t out_zp, int8_t *out)
{
    const uint32_t zp_total = (uint32_t)in_zp * (uint32_t)n_pixels;
    for (int ch = 0; ch < c; ch++) {
        int32_t sum = 0;
        const int8_t *x = in + ch;
        for (int i = 0; i < n_pixels; i++) {
            sum += *x;
            x += c;
        }
        int32_t v = te_add_wrap(te_mbqm((int32_t)((uint32_t)sum - zp_total), mult, shift), out_zp);
        v = v < -128 ? -128 : v;
        v = v > 127 ? 127 : v;
        out[ch] = (int8_t)v;
    }
}

/* ------------------------------------------------------------------------------------------------
 * SOFTMAX
 * --------------------------------------------------------------------------------------------- */
static int32_t fx_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static int32_t fx_sub(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

/* gemmlowp SaturatingRoundingMultiplyByPOT<e> for e > 0: a saturating left shift. */
static int32_t fx_sat_shl(int32_t x, int e)
{
    const int32_t thr = (int32_t)((1u << (31 - e)) - 1u);
    if (x > thr) {
        return INT32_MAX;
    }
    if (x < -thr) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << e);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor series around -1/8. */
static int32_t fx_exp_quarter(int32_t a)
{
    const int32_t const_term = 1895147668, one_third = 715827883;
    const int32_t x = fx_add(a, 1 << 28);
    const int32_t x2 = te_srdhm(x, x);
    const int32_t x3 = te_srdhm(x2, x);
    const int32_t x4 = te_srdhm(x2, x2);
    const int32_t x4_4 = te_rdbpot(x4, 2);
    const int32_t poly = te_rdbpot(fx_add(te_srdhm(fx_add(x4_4, x3), one_third), x2), 1);
    return fx_add(const_term, te_srdhm(const_term, fx_add(x, poly)));
}

/* gemmlowp exp_on_negative_values: Q5.26 input <= 0 -> Q0.31. */
static int32_t fx_exp_neg(int32_t a)
{
    static const int32_t mults[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int frac = 26;
    const int32_t quarter = 1 << (frac - 2);
    const int32_t a_mod = fx_sub(a & (quarter - 1), quarter);
    int32_t result = fx_exp_quarter(fx_sat_shl(a_mod, 5));
    const int32_t remainder = fx_sub(a_mod, a);
    for (int i = 0; i < 7; i++) { /* exponents -2 .. 4: bit frac + exponent of the remainder */
        if (((uint32_t)remainder & (1u << (frac - 2 + i))) != 0u) {
            result = te_srdhm(result, mults[i]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1, Q0.31 in and out. */
static int32_t fx_one_over_one_plus_x(int32_t a)
{
    const int64_t s = (int64_t)a + INT32_MAX;
    const int32_t half_den = (int32_t)((s + (s >= 0 ? 1 : -1)) / 2); /* RoundingHalfSum */
    int32_t x = fx_add(1515870810, te_srdhm(half_den, -1010580540));
    for (int i = 0; i < 3; i++) {
        const int32_t one_minus = fx_sub(1 << 29, te_srdhm(half_den, x));
        x = fx_add(x, fx_sat_shl(te_srdhm(x, one_minus), 2));
    }
    return fx_sat_shl(x, 1);
}

static int32_t fx_scaled_diff(int32_t diff, int32_t mult, int32_t left_shift)
{
    return te_srdhm((int32_t)((uint32_t)diff << left_shift), mult);
}

void te_softmax_s8(const int8_t *in, int rows, int depth, int32_t input_mult, int32_t input_left_shift,
                   int32_t diff_min, int8_t *out)
{
    for (int r = 0; r < rows; r++) {
        const int8_t *x = in + (size_t)r * (size_t)depth;
        int8_t *y = out + (size_t)r * (size_t)depth;
        int32_t max_in = -128;
        for (int i = 0; i < depth; i++) {
            max_in = x[i] > max_in ? x[i] : max_in;
        }
        int32_t sum = 0; /* Q12.19 */
        for (int i = 0; i < depth; i++) {
            const int32_t diff = (int32_t)x[i] - max_in;
            if (diff >= diff_min) {
                sum = fx_add(sum, te_rdbpot(fx_exp_neg(fx_scaled_diff(diff, input_mult, input_left_shift)), 12));
            }
        }
        int headroom = 0; /* count leading zeros of the (positive) sum */
        while (headroom < 32 && ((uint32_t)sum & (0x80000000u >> headroom)) == 0u) {
            headroom++;
        }
        const int32_t bits_over = 12 - headroom;
        const int32_t shifted = (int32_t)(((uint32_t)sum << headroom) - 0x80000000u);
        const int32_t recip = fx_one_over_one_plus_x(shifted);
        for (int i = 0; i < depth; i++) {
            const int32_t diff = (int32_t)x[i] - max_in;
            int32_t v = -128;
            if (diff >= diff_min) {
                const int32_t e = fx_exp_neg(fx_scaled_diff(diff, input_mult, input_left_shift));
                v = te_rdbpot(te_srdhm(recip, e), bits_over + 23) - 128;
                v = v > 127 ? 127 : v;
                v = v < -128 ? -128 : v;
            }
            y[i] = (int8_t)v;
        }
    }
}

/* ------------------------------------------------------------------------------------------------
 * PAD (H and W): the input copied into the middle of the output, the border filled with `value`
 * (the zero point: TFLM pads int8 with the output zero point, equal to the input's).
 * --------------------------------------------------------------------------------------------- */
void te_pad_s8(const int8_t *in, int in_h, int in_w, int c, int pad_top, int pad_bottom, int pad_left,
               int pad_right, int32_t value, int8_t *out)
{
    const size_t out_w = (size_t)(in_w + pad_left + pad_right);
    const size_t row = out_w * (size_t)c;
    const int8_t v = (int8_t)value;
    memset(out, v, (size_t)pad_top * row);
    for (int y = 0; y < in_h; y++) {
        int8_t *o = out + (size_t)(pad_top + y) * row;
        memset(o, v, (size_t)pad_left * (size_t)c);
        memcpy(o + (size_t)pad_left * (size_t)c, in + (size_t)y * (size_t)in_w * (size_t)c, (size_t)in_w * (size_t)c);
        memset(o + (size_t)(pad_left + in_w) * (size_t)c, v, (size_t)pad_right * (size_t)c);
    }
    memset(out + (size_t)(pad_top + in_h) * row, v, (size_t)pad_bottom * row);
}
