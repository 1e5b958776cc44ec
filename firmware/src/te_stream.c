/*
 * Row kernels of fused streaming execution (firmware/include/te_stream.h).
 *
 * te_depthwise_row_s8: one output row from k_h input row pointers, with the arithmetic of
 * te_depthwise_s8: acc = bias + sum over the taps inside the input of w * (x - in_zp) (padding taps add
 * 0), modulo 2^32, then te_requant_s8 with the channel's multiplier and shift.
 * The sum is split as sum w * x - in_zp * sum w (equal modulo 2^32; every partial sum is exact in int32:
 * |w * x| <= 127 * 128 per tap). For an output pixel whose taps all lie inside the row (the interior
 * columns), the per-channel constant bias - in_zp * (sum of w over the kernel rows present) is computed
 * once per call into the scratch, and the inner loop is a plain multiply-accumulate with the
 * accumulator in a register; the border pixels (left/right padding) take the direct form.
 */
#include "te_internal.h"
#include "te_stream.h"

size_t te_depthwise_row_scratch_bytes(int c)
{
    return (size_t)c * sizeof(int32_t);
}

/* Direct form for one output pixel (any columns; taps outside [0, in_w) skipped). */
static void dw_row_pixel(const int8_t *const *rows, int k_h, int k_w, int in_w, int c, int ix0,
                         const int8_t *w, const int32_t *bias, const te_quant_t *q, int8_t *o)
{
    for (int ch = 0; ch < c; ch++) {
        int32_t acc = 0;
        for (int ky = 0; ky < k_h; ky++) {
            if (rows[ky] == NULL)
                continue;
            for (int kx = 0; kx < k_w; kx++) {
                const int ix = ix0 + kx;
                if (ix < 0 || ix >= in_w)
                    continue;
                acc += (int32_t)w[((size_t)ky * (size_t)k_w + (size_t)kx) * (size_t)c + (size_t)ch] *
                       ((int32_t)rows[ky][(size_t)ix * (size_t)c + (size_t)ch] - q->in_zp);
            }
        }
        if (bias)
            acc = te_add_wrap(acc, bias[ch]);
        o[ch] = te_requant_s8(acc, q->mult[ch], q->shift[ch], q->out_zp, q->act_min, q->act_max);
    }
}

void te_depthwise_row_s8(const int8_t *const *rows, int k_h, int k_w, int in_w, int c, int stride_w,
                         int pad_left, int out_w, const int8_t *w, const int32_t *bias, const te_quant_t *q,
                         int8_t *out, int32_t *base)
{
    /* the interior columns: ox with 0 <= ox * stride_w - pad_left and ox * stride_w - pad_left + k_w <= in_w */
    int ox_lo = (pad_left + stride_w - 1) / stride_w;
    int ox_hi = (in_w - k_w + pad_left) / stride_w + 1;  /* exclusive */
    if (in_w - k_w + pad_left < 0)
        ox_hi = 0;
    if (ox_hi > out_w)
        ox_hi = out_w;
    if (ox_lo > ox_hi)
        ox_lo = ox_hi;
    const int8_t *live[16];  /* the kernel rows present, and their weight rows */
    const int8_t *wrow[16];
    int n = 0;
    for (int ky = 0; ky < k_h && ky < 16; ky++) {
        if (rows[ky] != NULL) {
            live[n] = rows[ky];
            wrow[n] = w + (size_t)ky * (size_t)k_w * (size_t)c;
            n++;
        }
    }
    if (k_h > 16) {  /* larger kernels than the fast path holds: direct form everywhere */
        ox_lo = ox_hi = 0;
    }
    if (ox_hi > ox_lo) {
        for (int ch = 0; ch < c; ch++) {
            int32_t sw = 0;
            for (int r = 0; r < n; r++)
                for (int kx = 0; kx < k_w; kx++)
                    sw += wrow[r][(size_t)kx * (size_t)c + (size_t)ch];
            base[ch] = te_add_wrap(bias ? bias[ch] : 0, -q->in_zp * sw);
        }
    }
    const size_t cs = (size_t)c;
    for (int ox = 0; ox < out_w; ox++) {
        const int ix0 = ox * stride_w - pad_left;
        int8_t *o = out + (size_t)ox * cs;
        if (ox < ox_lo || ox >= ox_hi) {
            dw_row_pixel(rows, k_h, k_w, in_w, c, ix0, w, bias, q, o);
            continue;
        }
        for (int ch = 0; ch < c; ch++) {
            int32_t acc = 0;
            for (int r = 0; r < n; r++) {
                const int8_t *xp = live[r] + (size_t)ix0 * cs + (size_t)ch;
                const int8_t *wp = wrow[r] + (size_t)ch;
                for (int kx = 0; kx < k_w; kx++)
                    acc += (int32_t)wp[(size_t)kx * cs] * (int32_t)xp[(size_t)kx * cs];
            }
            o[ch] = te_requant_s8(te_add_wrap(acc, base[ch]), q->mult[ch], q->shift[ch], q->out_zp, q->act_min,
                                  q->act_max);
        }
    }
}
