/*
 * Row kernels of fused streaming execution (firmware/include/te_stream.h).
 *
 * te_depthwise_row_s8: one output row from k_h input row pointers, with the arithmetic of
 * te_depthwise_s8: acc = bias + sum over the taps inside the input of w * (x - in_zp) (padding taps add
 * 0), modulo 2^32, then requantised with the channel's multiplier and shift (te_rq_s8: the fast form of
 * te_requant_s8, bit-exact with it). Every partial sum is exact in int32 (|w * (x - zp)| <= 127 * 255
 * per tap, at most 16 x k_w taps); the accumulators are uint32 so that adding the bias wraps without UB.
 * For an output pixel whose taps all lie inside the row (the interior columns) the sum is split as
 * sum w * x + (bias - in_zp * sum w) (equal modulo 2^32), the constant computed once per call into the
 * scratch, so the inner loop is a plain multiply-accumulate (column loop unrolled for k_w 3/5/7; with
 * TE_USE_DSP one word load of four channels' w and x each, SXTB16, then SMLABB/SMLATT per channel);
 * border pixels (left/right padding) sum w * (x - in_zp) over the columns inside, in plain C. Four
 * channels at a time, accumulators in registers.
 */
#include "te_internal.h"
#include "te_stream.h"

#if defined(__GNUC__)
#define DWR_INLINE static inline __attribute__((always_inline))
#else
#define DWR_INLINE static inline
#endif

#define DWR_MAX_KH 16  /* kernel rows held for the fast path; taller kernels are refused (nothing written) */

size_t te_depthwise_row_scratch_bytes(int c)
{
    return 2 * (size_t)c * sizeof(int32_t);
}

/* acc[ch] = start[ch] (0 if start is NULL) + sum over the n rows and the columns kx in [kx0, kx1) of
 * w * (x - zs), modulo 2^32. */
DWR_INLINE void dwr_pixel(const int8_t *const *live, const int8_t *const *wrow, int n, int kx0, int kx1,
                          int ix0, size_t cs, int c, const int32_t *start, int32_t zs, uint32_t *acc)
{
    int ch = 0;
    for (; ch + 4 <= c; ch += 4) {
        uint32_t a0 = start ? (uint32_t)start[ch] : 0u, a1 = start ? (uint32_t)start[ch + 1] : 0u;
        uint32_t a2 = start ? (uint32_t)start[ch + 2] : 0u, a3 = start ? (uint32_t)start[ch + 3] : 0u;
        for (int r = 0; r < n; r++) {
            const int8_t *xp = live[r] + (size_t)(ix0 + kx0) * cs + (size_t)ch;
            const int8_t *wp = wrow[r] + (size_t)kx0 * cs + (size_t)ch;
            for (int kx = kx0; kx < kx1; kx++, xp += cs, wp += cs) {
                a0 += (uint32_t)((int32_t)wp[0] * ((int32_t)xp[0] - zs));
                a1 += (uint32_t)((int32_t)wp[1] * ((int32_t)xp[1] - zs));
                a2 += (uint32_t)((int32_t)wp[2] * ((int32_t)xp[2] - zs));
                a3 += (uint32_t)((int32_t)wp[3] * ((int32_t)xp[3] - zs));
            }
        }
        acc[ch] = a0;
        acc[ch + 1] = a1;
        acc[ch + 2] = a2;
        acc[ch + 3] = a3;
    }
    for (; ch < c; ch++) {
        uint32_t a = start ? (uint32_t)start[ch] : 0u;
        for (int r = 0; r < n; r++) {
            const int8_t *xp = live[r] + (size_t)(ix0 + kx0) * cs + (size_t)ch;
            const int8_t *wp = wrow[r] + (size_t)kx0 * cs + (size_t)ch;
            for (int kx = kx0; kx < kx1; kx++, xp += cs, wp += cs)
                a += (uint32_t)((int32_t)wp[0] * ((int32_t)xp[0] - zs));
        }
        acc[ch] = a;
    }
}

/* One tap (kernel column) of four channels into a0..a3: w * x (the interior: no zero point here).
 * DSP: one word load each of w and x, SXTB16 into halfword pairs, SMLABB/SMLATT per channel. */
#if defined(TE_USE_DSP)
#define DWR_TAP4(wp, xp)                                                                  \
    do {                                                                                  \
        const uint32_t wv_ = te_read_u32(wp), xv_ = te_read_u32(xp);                      \
        const uint32_t w02_ = te_sxtb16(wv_), w13_ = te_sxtb16_ror8(wv_);                 \
        const uint32_t x02_ = te_sxtb16(xv_), x13_ = te_sxtb16_ror8(xv_);                 \
        a0 = te_smlabb(w02_, x02_, a0);                                                   \
        a2 = te_smlatt(w02_, x02_, a2);                                                   \
        a1 = te_smlabb(w13_, x13_, a1);                                                   \
        a3 = te_smlatt(w13_, x13_, a3);                                                   \
    } while (0)
#else
#define DWR_TAP4(wp, xp)                                                                  \
    do {                                                                                  \
        a0 = te_add_wrap(a0, (int32_t)(wp)[0] * (int32_t)(xp)[0]);                         \
        a1 = te_add_wrap(a1, (int32_t)(wp)[1] * (int32_t)(xp)[1]);                         \
        a2 = te_add_wrap(a2, (int32_t)(wp)[2] * (int32_t)(xp)[2]);                         \
        a3 = te_add_wrap(a3, (int32_t)(wp)[3] * (int32_t)(xp)[3]);                         \
    } while (0)
#endif

/* The interior pixel: acc[ch] = base[ch] + sum w * x over the n rows and all k_w columns (k_w a
 * compile-time constant where inlined from the switch below, so the column loop unrolls). */
DWR_INLINE void dwr_interior(const int8_t *const *live, const int8_t *const *wrow, int n, int k_w, int ix0,
                             size_t cs, int c, const int32_t *base, uint32_t *acc)
{
    int ch = 0;
    for (; ch + 4 <= c; ch += 4) {
        int32_t a0 = base[ch], a1 = base[ch + 1], a2 = base[ch + 2], a3 = base[ch + 3];
        for (int r = 0; r < n; r++) {
            const int8_t *xp = live[r] + (size_t)ix0 * cs + (size_t)ch;
            const int8_t *wp = wrow[r] + (size_t)ch;
            for (int kx = 0; kx < k_w; kx++, xp += cs, wp += cs)
                DWR_TAP4(wp, xp);
        }
        acc[ch] = (uint32_t)a0;
        acc[ch + 1] = (uint32_t)a1;
        acc[ch + 2] = (uint32_t)a2;
        acc[ch + 3] = (uint32_t)a3;
    }
    for (; ch < c; ch++) {
        int32_t a = base[ch];
        for (int r = 0; r < n; r++) {
            const int8_t *xp = live[r] + (size_t)ix0 * cs + (size_t)ch;
            const int8_t *wp = wrow[r] + (size_t)ch;
            for (int kx = 0; kx < k_w; kx++, xp += cs, wp += cs)
                a = te_add_wrap(a, (int32_t)wp[0] * (int32_t)xp[0]);
        }
        acc[ch] = (uint32_t)a;
    }
}

void te_depthwise_row_s8(const int8_t *const *rows, int k_h, int k_w, int in_w, int c, int stride_w,
                         int pad_left, int out_w, const int8_t *w, const int32_t *bias, const te_quant_t *q,
                         int8_t *out, int32_t *scratch)
{
    if (k_h > DWR_MAX_KH)
        return;
    const int8_t *live[DWR_MAX_KH];  /* the kernel rows present, and their weight rows */
    const int8_t *wrow[DWR_MAX_KH];
    int n = 0;
    for (int ky = 0; ky < k_h; ky++) {
        if (rows[ky] != NULL) {
            live[n] = rows[ky];
            wrow[n] = w + (size_t)ky * (size_t)k_w * (size_t)c;
            n++;
        }
    }
    const size_t cs = (size_t)c;
    int32_t *base = scratch;                     /* bias - in_zp * sum w, per channel */
    uint32_t *acc = (uint32_t *)(scratch + c);   /* accumulators, modulo 2^32 */
    int have_base = 0;
    for (int ox = 0; ox < out_w; ox++) {
        const int ix0 = ox * stride_w - pad_left;
        const int kx0 = ix0 < 0 ? -ix0 : 0;
        const int kx1 = ix0 + k_w > in_w ? in_w - ix0 : k_w;
        if (kx0 == 0 && kx1 == k_w) {
            if (!have_base) {
                for (int ch = 0; ch < c; ch++) {
                    int32_t sw = 0;
                    for (int r = 0; r < n; r++)
                        for (int kx = 0; kx < k_w; kx++)
                            sw += wrow[r][(size_t)kx * cs + (size_t)ch];
                    base[ch] = te_add_wrap(bias ? bias[ch] : 0, -q->in_zp * sw);
                }
                have_base = 1;
            }
            switch (k_w) {  /* the usual widths with the column loop unrolled */
            case 3: dwr_interior(live, wrow, n, 3, ix0, cs, c, base, acc); break;
            case 5: dwr_interior(live, wrow, n, 5, ix0, cs, c, base, acc); break;
            case 7: dwr_interior(live, wrow, n, 7, ix0, cs, c, base, acc); break;
            default: dwr_interior(live, wrow, n, k_w, ix0, cs, c, base, acc); break;
            }
        } else {
            dwr_pixel(live, wrow, n, kx0, kx1 > kx0 ? kx1 : kx0, ix0, cs, c, bias, q->in_zp, acc);
        }
        int8_t *o = out + (size_t)ox * cs;
        for (int ch = 0; ch < c; ch++) {
            const te_rq_t rq = te_rq_make(q->mult[ch], q->shift[ch]);
            o[ch] = te_rq_s8(&rq, (int32_t)acc[ch], q->out_zp, q->act_min, q->act_max);
        }
    }
}
