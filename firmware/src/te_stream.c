/*
 * Row kernels of fused streaming execution (firmware/include/te_stream.h).
 *
 * te_depthwise_row_s8: one output row from k_h input row pointers, with the arithmetic of
 * te_depthwise_s8: acc = bias + sum over the taps inside the input of w * (x - in_zp) (padding taps add
 * 0), modulo 2^32, then requantised with the channel's multiplier and shift (te_rq_s8: the fast form
 * of te_requant_s8, bit-exact with it).
 * The sum is split as sum w * x - in_zp * sum w (equal modulo 2^32; every partial sum is exact in int32:
 * |w * x| <= 127 * 128 per tap). For an output pixel whose taps all lie inside the row (the interior
 * columns), the per-channel constant bias - in_zp * (sum of w over the kernel rows present) is computed
 * once per call into the scratch; the accumulators start from it and sum w * x over the taps, four
 * channels at a time in registers (plain C: the Cortex-M SIMD instructions pair taps of one output,
 * which here lie C bytes apart). The border pixels
 * (left/right padding) take the direct form.
 */
#include "te_internal.h"
#include "te_stream.h"

size_t te_depthwise_row_scratch_bytes(int c)
{
    return 2 * (size_t)c * sizeof(int32_t);
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
        const te_rq_t rq = te_rq_make(q->mult[ch], q->shift[ch]);
        o[ch] = te_rq_s8(&rq, acc, q->out_zp, q->act_min, q->act_max);
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
    uint32_t *acc = (uint32_t *)(base + c);  /* second half of the scratch: accumulators, modulo 2^32 */
    for (int ox = 0; ox < out_w; ox++) {
        const int ix0 = ox * stride_w - pad_left;
        int8_t *o = out + (size_t)ox * cs;
        if (ox < ox_lo || ox >= ox_hi) {
            dw_row_pixel(rows, k_h, k_w, in_w, c, ix0, w, bias, q, o);
            continue;
        }
        int ch = 0;
        for (; ch + 4 <= c; ch += 4) {  /* four channels at a time, accumulators in registers */
            uint32_t a0 = (uint32_t)base[ch], a1 = (uint32_t)base[ch + 1];
            uint32_t a2 = (uint32_t)base[ch + 2], a3 = (uint32_t)base[ch + 3];
            for (int r = 0; r < n; r++) {
                const int8_t *xp = live[r] + (size_t)ix0 * cs + (size_t)ch;
                const int8_t *wp = wrow[r] + (size_t)ch;
                for (int kx = 0; kx < k_w; kx++, xp += cs, wp += cs) {
                    a0 += (uint32_t)((int32_t)wp[0] * (int32_t)xp[0]);
                    a1 += (uint32_t)((int32_t)wp[1] * (int32_t)xp[1]);
                    a2 += (uint32_t)((int32_t)wp[2] * (int32_t)xp[2]);
                    a3 += (uint32_t)((int32_t)wp[3] * (int32_t)xp[3]);
                }
            }
            acc[ch] = a0;
            acc[ch + 1] = a1;
            acc[ch + 2] = a2;
            acc[ch + 3] = a3;
        }
        for (; ch < c; ch++) {
            uint32_t a = (uint32_t)base[ch];
            for (int r = 0; r < n; r++) {
                const int8_t *xp = live[r] + (size_t)ix0 * cs + (size_t)ch;
                const int8_t *wp = wrow[r] + (size_t)ch;
                for (int kx = 0; kx < k_w; kx++, xp += cs, wp += cs)
                    a += (uint32_t)((int32_t)wp[0] * (int32_t)xp[0]);
            }
            acc[ch] = a;
        }
        for (int ch = 0; ch < c; ch++) {
            const te_rq_t rq = te_rq_make(q->mult[ch], q->shift[ch]);
            o[ch] = te_rq_s8(&rq, (int32_t)acc[ch], q->out_zp, q->act_min, q->act_max);
        }
    }
}
