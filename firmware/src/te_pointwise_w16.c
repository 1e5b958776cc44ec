/*
 * Pointwise (1x1, stride 1) convolution with int16 weights pre-widened in flash (`tinyengine gen
 * --pw-weights int16|auto`; layout in tinyengine.h and codegen/pw_weights.py): the weights are stored
 * in the order the 2 x 2 tile reads them, so the inner loop has no SXTB16: per group of four input
 * channels 2 LDRD (weights of both rows), 2 LDRD (both pixels' columns), 8 SMLAD, CMP, BNE = 14
 * instructions for 16 MACs against 18 with int8 weights, for twice the weight bytes in flash.
 *
 * DSP path, usual layer (full clamp, bias, every shift in [-23, -2], word-aligned scratch): pixel
 * pairs widened into the scratch (te_internal.h's column layout), 2 x 2 tiles, the folded
 * requantisation of te_pointwise.c (constants per chunk of PW16_CB channels computed once per call
 * when the pair is cheap to widen again per chunk, else per channel pair), an odd last pixel as one
 * column. Anything else (other clamps or shifts, no bias, the portable build) takes the plain loop
 * below: same arithmetic (the reference's), one output at a time, about as fast as the portable int8
 * kernel.
 */
#include "te_internal.h"

#if defined(__GNUC__)
#define PW16_INLINE static inline __attribute__((always_inline))
#define PW16_NOINLINE __attribute__((noinline))
#else
#define PW16_INLINE static inline
#define PW16_NOINLINE
#endif

/* Pixels [p0, p1) one output at a time, the general requantisation (any clamp, shift, NULL bias): the
 * portable build, and the DSP build's unusual layers. */
static void pw16_pixels(const int8_t *in, int p0, int p1, int in_c, const int32_t *w, const int32_t *bias, int out_c,
                        const te_quant_t *q, int8_t *out)
{
    const int G = in_c >> 2;
    const int32_t zp = q->in_zp;
    for (int p = p0; p < p1; p++) {
        const int8_t *x = in + (size_t)p * (size_t)in_c;
        int8_t *y = out + (size_t)p * (size_t)out_c;
        for (int o = 0; o < out_c; o++) {
            const int paired = !(o == out_c - 1 && (out_c & 1)); /* an odd last channel: 2 words a group */
            const int32_t *wo = w + (size_t)(o >> 1) * (size_t)G * 4u + (size_t)(paired ? (o & 1) * 2 : 0);
            const int step = paired ? 4 : 2;
            int32_t acc = te_bias(bias, o);
            for (int g = 0; g < G; g++) {
                const uint32_t w0 = (uint32_t)wo[0], w1 = (uint32_t)wo[1];
                const int8_t *xg = x + 4 * g;
                const int32_t s = (int32_t)(int16_t)(uint16_t)(w0 & 0xFFFFu) * ((int32_t)xg[0] - zp) +
                                  (int32_t)(int16_t)(uint16_t)(w1 & 0xFFFFu) * ((int32_t)xg[1] - zp) +
                                  (int32_t)(int16_t)(uint16_t)(w0 >> 16) * ((int32_t)xg[2] - zp) +
                                  (int32_t)(int16_t)(uint16_t)(w1 >> 16) * ((int32_t)xg[3] - zp);
                acc = te_add_wrap(acc, s);
                wo += step;
            }
            const te_rq_t r = te_rq_make(q->mult[o], q->shift[o]);
            y[o] = te_rq_s8(&r, acc, q->out_zp, q->act_min, q->act_max);
        }
    }
}

#if defined(TE_USE_DSP)

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-schedule-insns")
#endif

#if defined(__GNUC__) && !defined(TE_DSP_EMULATE) && defined(__thumb2__)
#define PW16_ASM 1
#else
#define PW16_ASM 0
#endif

#define PW16_CB 32          /* channels per table of folded constants (256 bytes of stack) */
#define PW16_MAX_REWIDEN 64 /* widening a pair again per chunk costs ~2.3 insn per in_c */

/* The G groups of a 2 x 2 tile: weights at *pw (4 words a group), columns at c (8 int16 a group). */
PW16_INLINE void pw16_loop(const int32_t *restrict *pw, const int16_t *restrict c, int G, int32_t *p00, int32_t *p01,
                           int32_t *p10, int32_t *p11)
{
    const int32_t *w = *pw;
    int32_t s00 = *p00, s01 = *p01, s10 = *p10, s11 = *p11;
#if PW16_ASM
    const int16_t *const end = c + 8 * G;
    uint32_t a0, a1, b0, b1, x0, x1;
    __asm__ volatile("1:\n\t"
                     "ldrd   %[a0], %[a1], [%[w]], #16\n\t"
                     "ldrd   %[b0], %[b1], [%[w], #-8]\n\t"
                     "ldrd   %[x0], %[x1], [%[c]], #8\n\t"
                     "smlad  %[s00], %[a0], %[x0], %[s00]\n\t"
                     "smlad  %[s00], %[a1], %[x1], %[s00]\n\t"
                     "smlad  %[s10], %[b0], %[x0], %[s10]\n\t"
                     "smlad  %[s10], %[b1], %[x1], %[s10]\n\t"
                     "ldrd   %[x0], %[x1], [%[c]], #8\n\t"
                     "smlad  %[s01], %[a0], %[x0], %[s01]\n\t"
                     "smlad  %[s01], %[a1], %[x1], %[s01]\n\t"
                     "smlad  %[s11], %[b0], %[x0], %[s11]\n\t"
                     "smlad  %[s11], %[b1], %[x1], %[s11]\n\t"
                     "cmp    %[c], %[end]\n\t"
                     "bne    1b"
                     : [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10), [s11] "+r"(s11), [w] "+r"(w), [c] "+r"(c),
                       [a0] "=&r"(a0), [a1] "=&r"(a1), [b0] "=&r"(b0), [b1] "=&r"(b1), [x0] "=&r"(x0),
                       [x1] "=&r"(x1)
                     : [end] "r"(end)
                     : "cc", "memory");
#else
    for (int g = G; g > 0; g--) {
        const uint32_t a0 = (uint32_t)w[0], a1 = (uint32_t)w[1], b0 = (uint32_t)w[2], b1 = (uint32_t)w[3];
        uint32_t x0 = te_read_u32(c), x1 = te_read_u32(c + 2);
        s00 = te_smlad(a0, x0, s00);
        s00 = te_smlad(a1, x1, s00);
        s10 = te_smlad(b0, x0, s10);
        s10 = te_smlad(b1, x1, s10);
        x0 = te_read_u32(c + 4);
        x1 = te_read_u32(c + 6);
        s01 = te_smlad(a0, x0, s01);
        s01 = te_smlad(a1, x1, s01);
        s11 = te_smlad(b0, x0, s11);
        s11 = te_smlad(b1, x1, s11);
        w += 4;
        c += 8;
    }
#endif
    *pw = w;
    *p00 = s00;
    *p01 = s01;
    *p10 = s10;
    *p11 = s11;
}

typedef struct {
    int32_t hz;  /* 2^(e-2) + zp 2^(e-1) */
    int32_t em1; /* e - 1 */
} pw16_rq_t;

PW16_INLINE pw16_rq_t pw16_rq(int32_t shift, int32_t zp)
{
    const int32_t e = -shift;
    pw16_rq_t r;
    r.em1 = e - 1;
    r.hz = (int32_t)(1 << (e - 2)) + zp * (int32_t)(1 << (e - 1));
    return r;
}

PW16_INLINE int8_t pw16_out(int32_t acc, int32_t mult, pw16_rq_t r)
{
    return (int8_t)te_ssat8(te_rq_fast(acc, mult, r.hz, r.em1));
}

/* Both pixels' columns (te_internal.h layout): SXTAB16 adds -zp. */
PW16_INLINE void pw16_cols(const int8_t *x, int in_c, uint32_t off, int16_t *cols)
{
    const int8_t *x1 = x + in_c;
    for (int g = in_c >> 2; g > 0; g--) {
        const uint32_t v = te_read_u32(x), u = te_read_u32(x1);
        te_write_u32(cols, te_sxtab16(off, v));
        te_write_u32(cols + 2, te_sxtab16_ror8(off, v));
        te_write_u32(cols + 4, te_sxtab16(off, u));
        te_write_u32(cols + 6, te_sxtab16_ror8(off, u));
        x += 4;
        x1 += 4;
        cols += 8;
    }
}

/* Channels [c0, c0 + n) of one pixel pair (columns in cols); w at channel c0 (c0 even); outputs at y, y1
 * (channel c0); r: the channels' constants, or NULL (computed here). */
PW16_INLINE void pw16_tiles(const int32_t *w, const int16_t *cols, int G, int n, const int32_t *bias,
                            const int32_t *mult, const int32_t *shift, int32_t zp, const pw16_rq_t *r, int8_t *y,
                            int8_t *y1)
{
    int i = 0;
    for (; i + 2 <= n; i += 2) {
        int32_t s00 = bias[i], s01 = bias[i], s10 = bias[i + 1], s11 = bias[i + 1];
        pw16_loop(&w, cols, G, &s00, &s01, &s10, &s11);
        const pw16_rq_t ra = r ? r[i] : pw16_rq(shift[i], zp), rb = r ? r[i + 1] : pw16_rq(shift[i + 1], zp);
        const int32_t ma = mult[i], mb = mult[i + 1];
        const int8_t o00 = pw16_out(s00, ma, ra), o01 = pw16_out(s01, ma, ra);
        const int8_t o10 = pw16_out(s10, mb, rb), o11 = pw16_out(s11, mb, rb);
        y[i] = o00;
        y1[i] = o01;
        y[i + 1] = o10;
        y1[i + 1] = o11;
    }
    if (i < n) { /* the layer's odd last channel: 2 words a group */
        int32_t s0 = bias[i], s1 = bias[i];
        const int16_t *c = cols;
        for (int g = G; g > 0; g--) {
            const uint32_t a0 = (uint32_t)w[0], a1 = (uint32_t)w[1];
            s0 = te_smlad(a0, te_read_u32(c), s0);
            s0 = te_smlad(a1, te_read_u32(c + 2), s0);
            s1 = te_smlad(a0, te_read_u32(c + 4), s1);
            s1 = te_smlad(a1, te_read_u32(c + 6), s1);
            w += 2;
            c += 8;
        }
        const pw16_rq_t ra = r ? r[i] : pw16_rq(shift[i], zp);
        y[i] = pw16_out(s0, mult[i], ra);
        y1[i] = pw16_out(s1, mult[i], ra);
    }
}

/* Every pixel pair of the usual layer. */
static PW16_NOINLINE void pw16_pairs(const int8_t *in, int n_pairs, int in_c, const int32_t *w, const int32_t *bias,
                                     int out_c, const te_quant_t *q, int8_t *out, int16_t *scratch)
{
    const int G = in_c >> 2;
    const uint32_t off = te_dup16(-q->in_zp);
    const int32_t zp = q->out_zp;
    if (out_c <= PW16_CB || in_c <= PW16_MAX_REWIDEN) {
        pw16_rq_t r[PW16_CB];
        for (int c0 = 0; c0 < out_c; c0 += PW16_CB) {
            const int n = out_c - c0 < PW16_CB ? out_c - c0 : PW16_CB;
            for (int i = 0; i < n; i++) {
                r[i] = pw16_rq(q->shift[c0 + i], zp);
            }
            const int32_t *wc = w + (size_t)c0 * (size_t)G * 2u;
            const int8_t *x = in;
            int8_t *y = out + c0;
            for (int p = 0; p < n_pairs; p++) {
                pw16_cols(x, in_c, off, scratch);
                pw16_tiles(wc, scratch, G, n, bias + c0, q->mult + c0, q->shift + c0, zp, r, y, y + out_c);
                x += 2 * in_c;
                y += 2 * out_c;
            }
        }
    } else {
        const int8_t *x = in;
        int8_t *y = out;
        for (int p = 0; p < n_pairs; p++) {
            pw16_cols(x, in_c, off, scratch);
            pw16_tiles(w, scratch, G, out_c, bias, q->mult, q->shift, zp, NULL, y, y + out_c);
            x += 2 * in_c;
            y += 2 * out_c;
        }
    }
}

/* The odd last pixel of the usual layer: column 0 only (te_col_put), the folded constants per channel. */
static PW16_NOINLINE void pw16_last(const int8_t *x, int in_c, const int32_t *w, const int32_t *bias, int out_c,
                                    const te_quant_t *q, int8_t *y, int16_t *scratch)
{
    const int G = in_c >> 2;
    te_col_put(scratch, in_c, 0, 0, x, in_c, q->in_zp);
    int o = 0;
    for (; o + 2 <= out_c; o += 2) {
        int32_t s0 = bias[o], s1 = bias[o + 1];
        const int16_t *c = scratch;
        for (int g = G; g > 0; g--) {
            const uint32_t x0 = te_read_u32(c), x1 = te_read_u32(c + 2);
            s0 = te_smlad((uint32_t)w[0], x0, s0);
            s0 = te_smlad((uint32_t)w[1], x1, s0);
            s1 = te_smlad((uint32_t)w[2], x0, s1);
            s1 = te_smlad((uint32_t)w[3], x1, s1);
            w += 4;
            c += 8;
        }
        y[o] = pw16_out(s0, q->mult[o], pw16_rq(q->shift[o], q->out_zp));
        y[o + 1] = pw16_out(s1, q->mult[o + 1], pw16_rq(q->shift[o + 1], q->out_zp));
    }
    if (o < out_c) {
        int32_t s0 = bias[o];
        const int16_t *c = scratch;
        for (int g = G; g > 0; g--) {
            s0 = te_smlad((uint32_t)w[0], te_read_u32(c), s0);
            s0 = te_smlad((uint32_t)w[1], te_read_u32(c + 2), s0);
            w += 2;
            c += 8;
        }
        y[o] = pw16_out(s0, q->mult[o], pw16_rq(q->shift[o], q->out_zp));
    }
}

static int pw16_usual(int in_c, const int32_t *bias, int out_c, const te_quant_t *q, const int16_t *scratch)
{
    if (bias == NULL || q->act_min != -128 || q->act_max != 127 || ((uintptr_t)scratch & 3u) != 0 || in_c < 4) {
        return 0;
    }
    for (int i = 0; i < out_c; i++) {
        if (q->shift[i] > -2 || q->shift[i] < -23) {
            return 0;
        }
    }
    return 1;
}
#endif /* TE_USE_DSP */

int te_conv_pointwise_w16_s8(const int8_t *in, int n_pixels, int in_c, const int32_t *w, const int32_t *bias,
                             int out_c, const te_quant_t *q, int8_t *out, int16_t *scratch)
{
    if (in_c <= 0 || (in_c & 3) != 0 || out_c <= 0 || n_pixels < 0) {
        return -1;
    }
    int p0 = 0;
#if defined(TE_USE_DSP)
    if (pw16_usual(in_c, bias, out_c, q, scratch)) {
        pw16_pairs(in, n_pixels >> 1, in_c, w, bias, out_c, q, out, scratch);
        if (n_pixels & 1) {
            pw16_last(in + (size_t)(n_pixels - 1) * (size_t)in_c, in_c, w, bias, out_c, q,
                      out + (size_t)(n_pixels - 1) * (size_t)out_c, scratch);
        }
        p0 = n_pixels;
    }
#else
    (void)scratch;
#endif
    pw16_pixels(in, p0, n_pixels, in_c, w, bias, out_c, q, out);
    return 0;
}
