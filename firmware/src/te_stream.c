/*
 * Row kernels of fused streaming execution (firmware/include/te_stream.h).
 *
 * te_depthwise_row_s8: one output row from k_h input row pointers. Per output pixel the accumulators
 * of all channels are summed kernel tap by kernel tap (the inner loop runs over contiguous channels of
 * one input pixel and one weight row), then requantised exactly as te_depthwise_s8 does: the sum of
 * w * (x - in_zp) over the taps inside the input (padding taps add 0), the bias added modulo 2^32,
 * then te_requant_s8 with the channel's multiplier and shift. All sums are exact in int32.
 */
#include "te_internal.h"
#include "te_stream.h"

size_t te_depthwise_row_scratch_bytes(int c)
{
    return (size_t)c * sizeof(int32_t);
}

void te_depthwise_row_s8(const int8_t *const *rows, int k_h, int k_w, int in_w, int c, int stride_w,
                         int pad_left, int out_w, const int8_t *w, const int32_t *bias, const te_quant_t *q,
                         int8_t *out, int32_t *acc)
{
    const int32_t zp = q->in_zp;
    for (int ox = 0; ox < out_w; ox++) {
        const int ix0 = ox * stride_w - pad_left;
        for (int ch = 0; ch < c; ch++)
            acc[ch] = 0;
        for (int ky = 0; ky < k_h; ky++) {
            const int8_t *row = rows[ky];
            if (row == NULL)
                continue;
            for (int kx = 0; kx < k_w; kx++) {
                const int ix = ix0 + kx;
                if (ix < 0 || ix >= in_w)
                    continue;
                const int8_t *xp = row + (size_t)ix * (size_t)c;
                const int8_t *wp = w + ((size_t)ky * (size_t)k_w + (size_t)kx) * (size_t)c;
                for (int ch = 0; ch < c; ch++)
                    acc[ch] += (int32_t)wp[ch] * ((int32_t)xp[ch] - zp);
            }
        }
        int8_t *o = out + (size_t)ox * (size_t)c;
        for (int ch = 0; ch < c; ch++) {
            const int32_t a = bias ? te_add_wrap(acc[ch], bias[ch]) : acc[ch];
            o[ch] = te_requant_s8(a, q->mult[ch], q->shift[ch], q->out_zp, q->act_min, q->act_max);
        }
    }
}
