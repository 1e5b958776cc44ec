/*
 * Pointwise (1x1, stride 1) convolution, DSP path: two pixels at a time are widened once into the
 * scratch (x - in_zp, the GEMM column layout of te_internal.h), then every pair of output channels
 * is a 2 x 2 register tile (two weight rows x two pixels) whose accumulators start at the bias.
 * The output stage loads the channel's multiplier and shift once for both pixels and, when the
 * clamp is the whole int8 range (the usual case), clamps with one SSAT. The pixel-pair loop is
 * instantiated from one always-inlined body with the clamp kind and "in_c is a multiple of 4" as
 * literals (three variants), so nothing inside the loops tests them. An odd last pixel, and a NULL
 * bias, go through the shared GEMM core (te_gemm.c). The portable path (no DSP) is te_conv.c's.
 *
 * On real Cortex-M DSP cores the tile's inner loop over groups of four input channels is assembly
 * (pw_loop_asm: 18 instructions per 16 MACs against GCC's 21) in a fourth variant, chosen when the
 * clamp is full, in_c is a multiple of 4 and >= PW_ASM_MIN_K, and the scratch is word aligned.
 * Measured (benchmarks/model_instructions.py): pointwise 2.00 -> 1.89 insn/MAC on mcunet-vww1,
 * 1.92 -> 1.81 on mcunet-in3, many-channel layers 7-13 % fewer instructions, +888 bytes of code; with
 * in_c = 16 the 14 registers the loop holds make GCC spill around it (1-1.4 % slower), hence 20.
 *
 * Full clamp, in_c a multiple of 4 and every shift in [-23, -2] (the usual layer): the folded
 * requantisation below (per-channel constants once per call, out_zp folded into the rounding word):
 * pointwise 1.89 -> 1.81 insn/MAC (vww1), 1.81 -> 1.73 (in3); few-input-channel expands 7-13 % fewer
 * instructions (vww1 b1.expand 3.94 -> 3.52); +2.0 KB code, 256 bytes of stack.
 *
 * Per-layer specialisation (gen --specialize, codegen/specialize.py) compiles a copy of this file with the
 * layer's constants set by the TE_SPEC_POINTWISE entry hook: 1-6 % fewer instructions on few-channel
 * layers, < 0.1 % with in_c >= 96 (left generic by --specialize auto).
 */
#include "te_internal.h"

#if defined(TE_USE_DSP)

#if defined(__GNUC__) && !defined(__clang__)
/* GCC's pre-allocation scheduler hoists the loads of the 2 x 2 loop and spills accumulators. */
#pragma GCC optimize("no-schedule-insns")
#endif

#if defined(__GNUC__)
#define PW_INLINE static inline __attribute__((always_inline))
#define PW_NOINLINE __attribute__((noinline))
#else
#define PW_INLINE static inline
#define PW_NOINLINE
#endif

#if defined(__GNUC__) && !defined(TE_DSP_EMULATE) && defined(__thumb2__)
#define PW_ASM 1
#ifndef PW_ASM_MIN_K
#define PW_ASM_MIN_K 20 /* measured: below, the C loop's tile (fewer spills around it) is as fast */
#endif
/* The 2 x 2 tile's G >= 1 groups of four in assembly: per group 2 LDR (weights), 2 LDRD (columns),
 * 4 SXTB16, 8 SMLAD, CMP, BNE = 18 instructions for 16 MACs (GCC's own loop: 21, it does not use
 * LDRD with post-increment). 14 registers: the four sums, three pointers, the end, six temporaries.
 * cols must be word aligned (LDRD); the caller checks. */
PW_INLINE void pw_loop_asm(const int8_t *restrict *ppa, const int8_t *restrict *ppb, const int16_t *restrict *pc, int G, int32_t *p00,
                           int32_t *p01, int32_t *p10, int32_t *p11)
{
    const int8_t *pa = *ppa, *pb = *ppb;
    const int16_t *c = *pc;
    const int8_t *const end = pa + 4 * G;
    int32_t s00 = *p00, s01 = *p01, s10 = *p10, s11 = *p11;
    uint32_t a, a13, b, b13, x0, x1;
    __asm__ volatile("1:\n\t"
                     "ldr    %[a], [%[pa]], #4\n\t"
                     "ldr    %[b], [%[pb]], #4\n\t"
                     "ldrd   %[x0], %[x1], [%[c]], #8\n\t"
                     "sxtb16 %[a13], %[a], ror #8\n\t"
                     "sxtb16 %[a], %[a]\n\t"
                     "smlad  %[s00], %[a], %[x0], %[s00]\n\t"
                     "smlad  %[s00], %[a13], %[x1], %[s00]\n\t"
                     "sxtb16 %[b13], %[b], ror #8\n\t"
                     "sxtb16 %[b], %[b]\n\t"
                     "smlad  %[s10], %[b], %[x0], %[s10]\n\t"
                     "smlad  %[s10], %[b13], %[x1], %[s10]\n\t"
                     "ldrd   %[x0], %[x1], [%[c]], #8\n\t"
                     "smlad  %[s01], %[a], %[x0], %[s01]\n\t"
                     "smlad  %[s01], %[a13], %[x1], %[s01]\n\t"
                     "smlad  %[s11], %[b], %[x0], %[s11]\n\t"
                     "smlad  %[s11], %[b13], %[x1], %[s11]\n\t"
                     "cmp    %[pa], %[end]\n\t"
                     "bne    1b"
                     : [s00] "+&r"(s00), [s01] "+&r"(s01), [s10] "+&r"(s10), [s11] "+&r"(s11), [pa] "+&r"(pa),
                       [pb] "+&r"(pb), [c] "+&r"(c), [a] "=&r"(a), [a13] "=&r"(a13), [b] "=&r"(b),
                       [b13] "=&r"(b13), [x0] "=&r"(x0), [x1] "=&r"(x1)
                     : [end] "r"(end)
                     : "cc", "memory");
    *ppa = pa;
    *ppb = pb;
    *pc = c;
    *p00 = s00;
    *p01 = s01;
    *p10 = s10;
    *p11 = s11;
}
#else
#define PW_ASM 0
#endif

/* zero point + clamp; full (a literal) = the clamp is [-128, 127]. */
PW_INLINE int8_t pw_out(int32_t v, int32_t zp, int32_t lo, int32_t hi, int full)
{
    v = te_add_wrap(v, zp);
    if (full) {
        v = te_ssat8(v);
    } else {
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
    }
    return (int8_t)v;
}

/* shift > -2 (rare): the general requantisation, out of the hot loop. acc includes the bias. */
static PW_NOINLINE void pw_requant_slow(int32_t a0, int32_t a1, int32_t mult, int32_t shift, const te_quant_t *q,
                                        int8_t *y0, int8_t *y1)
{
    const te_rq_t r = te_rq_make(mult, shift);
    *y0 = te_rq_s8(&r, a0, q->out_zp, q->act_min, q->act_max);
    *y1 = te_rq_s8(&r, a1, q->out_zp, q->act_min, q->act_max);
}

/* One channel's two outputs (accumulators with the bias included). */
PW_INLINE void pw_store2(int32_t a0, int32_t a1, int32_t mult, int32_t shift, const te_quant_t *q, int32_t zp,
                         int32_t lo, int32_t hi, int8_t *y0, int8_t *y1, int full)
{
    if (shift <= -2) {
        /* 2^(-2 - shift) as 2^30 >> (32 + shift): shift + 32 in [1, 30] */
        const int32_t hpos = (int32_t)(0x40000000u >> (uint32_t)(shift + 32)), em1 = -1 - shift;
        *y0 = pw_out(te_rq_fast(a0, mult, hpos, em1), zp, lo, hi, full);
        *y1 = pw_out(te_rq_fast(a1, mult, hpos, em1), zp, lo, hi, full);
    } else {
        pw_requant_slow(a0, a1, mult, shift, q, y0, y1);
    }
}

/* One weight row (the last of an odd out_c) against both columns: G groups of four, the pointers advanced. */
PW_INLINE void pw_loop_1x2(const int8_t *restrict *ppa, const int16_t *restrict *pc, int G, int32_t *p0, int32_t *p1)
{
    const int8_t *restrict pa = *ppa;
    const int16_t *restrict c = *pc;
    int32_t s0 = *p0, s1 = *p1;
    for (int g = G; g > 0; g--) {
        const uint32_t a = te_read_u32(pa);
        const uint32_t a02 = te_sxtb16(a), a13 = te_sxtb16_ror8(a);
        s0 = te_smlad(a02, te_read_u32(c), s0);
        s0 = te_smlad(a13, te_read_u32(c + 2), s0);
        s1 = te_smlad(a02, te_read_u32(c + 4), s1);
        s1 = te_smlad(a13, te_read_u32(c + 6), s1);
        pa += 4;
        c += 8;
    }
    *ppa = pa;
    *pc = c;
    *p0 = s0;
    *p1 = s1;
}

/* All output channels of two pixels (columns in `cols`), outputs at y and y + out_c. `full` and
 * `tail` (K % 4 != 0) are literals at every call; bias is not NULL. */
PW_INLINE void pw_two_pixels(const int8_t *w, const int16_t *cols, int K, int out_c, const int32_t *bias,
                             const te_quant_t *q, int8_t *y, int8_t *y1, int full, int tail, int use_asm)
{
    (void)use_asm;
    const int32_t *mult = q->mult, *shift = q->shift;
    const int32_t zp = q->out_zp, lo = q->act_min, hi = q->act_max;
    const int G = K >> 2, t = tail ? K & 3 : 0;
    const int8_t *wa = w;
    int8_t *const yend = y + (out_c & ~1);
    while (y < yend) {
        const int8_t *restrict pa = wa;
        const int8_t *restrict pb = wa + K;
        const int16_t *restrict c = cols;
        const int32_t b0 = bias[0], b1 = bias[1];
        int32_t s00 = b0, s01 = b0, s10 = b1, s11 = b1;
#if PW_ASM
        if (use_asm && (!tail || G > 0)) {
            pw_loop_asm(&pa, &pb, &c, G, &s00, &s01, &s10, &s11);
        } else
#endif
        {
            int g = G;
            while (tail ? g > 0 : 1) { /* without tails K >= 4: at least one group, tested at the end */
                const uint32_t a = te_read_u32(pa), b = te_read_u32(pb);
                uint32_t x0 = te_read_u32(c), x1 = te_read_u32(c + 2);
                const uint32_t a02 = te_sxtb16(a), a13 = te_sxtb16_ror8(a);
                s00 = te_smlad(a02, x0, s00);
                s00 = te_smlad(a13, x1, s00);
                const uint32_t b02 = te_sxtb16(b), b13 = te_sxtb16_ror8(b);
                s10 = te_smlad(b02, x0, s10);
                s10 = te_smlad(b13, x1, s10);
                x0 = te_read_u32(c + 4);
                x1 = te_read_u32(c + 6);
                s01 = te_smlad(a02, x0, s01);
                s01 = te_smlad(a13, x1, s01);
                s11 = te_smlad(b02, x0, s11);
                s11 = te_smlad(b13, x1, s11);
                pa += 4;
                pb += 4;
                c += 8;
                if (--g == 0) {
                    break;
                }
            }
        }
        if (tail) {
            for (int k = 0; k < t; k++) { /* tails: column 0 at c[k], column 1 at c[t + k] */
                const int32_t x0 = c[k], x1 = c[t + k], ka = pa[k], kb = pb[k];
                s00 = te_add_wrap(s00, ka * x0);
                s01 = te_add_wrap(s01, ka * x1);
                s10 = te_add_wrap(s10, kb * x0);
                s11 = te_add_wrap(s11, kb * x1);
            }
        }
        pw_store2(s00, s01, mult[0], shift[0], q, zp, lo, hi, y, y1, full);
        pw_store2(s10, s11, mult[1], shift[1], q, zp, lo, hi, y + 1, y1 + 1, full);
        wa += 2 * K;
        bias += 2;
        mult += 2;
        shift += 2;
        y += 2;
        y1 += 2;
    }
    if (out_c & 1) {
        const int16_t *restrict c = cols;
        const int8_t *restrict pa = wa;
        int32_t s0 = bias[0], s1 = s0;
        pw_loop_1x2(&pa, &c, G, &s0, &s1);
        for (int k = 0; k < t; k++) {
            s0 = te_add_wrap(s0, pa[k] * c[k]);
            s1 = te_add_wrap(s1, pa[k] * c[t + k]);
        }
        pw_store2(s0, s1, mult[0], shift[0], q, zp, lo, hi, y, y1, full);
    }
}

/* Both pixels' columns (te_internal.h layout) when in_c is a multiple of 4: SXTAB16 adds -zp. */
PW_INLINE void pw_cols4(const int8_t *x, int in_c, int32_t zp, int16_t *cols)
{
    const uint32_t off = te_dup16(-zp);
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

PW_INLINE void pw_pairs(const int8_t *in, int n_pairs, int in_c, const int8_t *w, const int32_t *bias, int out_c,
                        const te_quant_t *q, int8_t *out, int16_t *scratch, int full, int tail, int use_asm)
{
    for (int i = 0; i < n_pairs; i++) {
        if (tail) {
            te_col_put(scratch, in_c, 0, 0, in, in_c, q->in_zp);
            te_col_put(scratch, in_c, 1, 0, in + in_c, in_c, q->in_zp);
        } else {
            pw_cols4(in, in_c, q->in_zp, scratch);
        }
        pw_two_pixels(w, scratch, in_c, out_c, bias, q, out, out + out_c, full, tail, use_asm);
        in += 2 * in_c;
        out += 2 * out_c;
    }
}

#define PW_VARIANT(NAME, FULL, TAIL, ASM)                                                                  \
    static PW_NOINLINE void NAME(const int8_t *in, int n_pairs, int in_c, const int8_t *w,                 \
                                 const int32_t *bias, int out_c, const te_quant_t *q, int8_t *out,         \
                                 int16_t *scratch)                                                         \
    {                                                                                                      \
        pw_pairs(in, n_pairs, in_c, w, bias, out_c, q, out, scratch, FULL, TAIL, ASM);                     \
    }
PW_VARIANT(pw_pairs_full, 1, 0, 0)
PW_VARIANT(pw_pairs_full_tail, 1, 1, 0)
PW_VARIANT(pw_pairs_clamp, 0, 1, 0) /* a clamp inside int8 (rare): one variant, tails included */
#if PW_ASM
PW_VARIANT(pw_pairs_full_asm, 1, 0, 1) /* in_c a multiple of 4, >= PW_ASM_MIN_K, word-aligned scratch */
#endif

/* The 2 x 2 tiles of one pixel pair for the shared GEMM core (te_gemm.c: im2col convolutions). */
#define PW_TILE_VARIANT(NAME, FULL, TAIL, ASM)                                                             \
    static PW_NOINLINE void NAME(const int8_t *w, const int16_t *cols, int K, int out_c, const int32_t *bias, \
                                 const te_quant_t *q, int8_t *y0, int8_t *y1)                              \
    {                                                                                                      \
        pw_two_pixels(w, cols, K, out_c, bias, q, y0, y1, FULL, TAIL, ASM);                                 \
    }
PW_TILE_VARIANT(pw_tile_full, 1, 0, 0)
PW_TILE_VARIANT(pw_tile_full_tail, 1, 1, 0)
PW_TILE_VARIANT(pw_tile_clamp, 0, 1, 0)

void te_gemm2_s8_s16(const int8_t *w, const int16_t *cols, int K, int out_c, const int32_t *bias,
                     const te_quant_t *q, int8_t *out0, int8_t *out1)
{
    if (q->act_min == -128 && q->act_max == 127) {
        ((K & 3) || K == 0 ? pw_tile_full_tail : pw_tile_full)(w, cols, K, out_c, bias, q, out0, out1);
    } else {
        pw_tile_clamp(w, cols, K, out_c, bias, q, out0, out1);
    }
}

/* ------------------------------------------------------------------------------------------------
 * Few input channels (in_c 8, or 16; full clamp, every shift in [-23, -2], bias not NULL): one pixel
 * at a time with its whole widened input in registers (x - in_zp: 4 words for 8 channels, 8 for 16),
 * against a stack table of the chunk's channels built once per call: per channel the bias, the K
 * weights widened to int16 in the order of the pixel's words, mult, hz = 2^(e-2) + zp 2^(e-1) and
 * e - 1 (the folded requantisation below). The chunk's last entry has bit 31 of e - 1 set: ASR by a
 * register reads bits 0-7 only, so the loop ends on that word's sign and needs no end register. Per
 * output: in_c 8, two channels a turn, 17 instructions (1 LDR bias, 2 LDRD, 4 SMLAD, 9 output, 1
 * loop); in_c 16, 24 (1 + 4 LDRD + 8 SMLAD + 9 + 1), against ~26 and ~36 for the 2 x 2 tiles, whose
 * per-tile setup, reloads and SXTB16 of the weights dominate with so few channels. The table is at
 * most PW_FEW_WORDS words (768 bytes of stack); wider layers take it in chunks, reading the pixel
 * again per chunk (6 or 12 instructions).
 * --------------------------------------------------------------------------------------------- */
#define PW_FEW_WORDS 192

/* Table of n channels (K = 8 or 16): 4 + K/2 words each. */
static void pw_few_fill(uint32_t *t, const int8_t *w, int K, const int32_t *bias, const int32_t *mult,
                        const int32_t *shift, int n, int32_t zp)
{
    for (int i = 0; i < n; i++) {
        const int32_t e = -shift[i];
        *t++ = (uint32_t)bias[i];
        for (int g = 0; g < K; g += 4) {
            const uint32_t v = te_read_u32(w + (size_t)i * (size_t)K + (size_t)g);
            *t++ = te_sxtb16(v);
            *t++ = te_sxtb16_ror8(v);
        }
        *t++ = (uint32_t)mult[i];
        *t++ = (uint32_t)((int32_t)(1 << (e - 2)) + zp * (int32_t)(1 << (e - 1)));
        *t++ = (uint32_t)(e - 1) | (i == n - 1 ? 0x80000000u : 0u);
    }
}

#if !PW_ASM
/* The table's channels for one pixel (x: its K/2 widened words) in C: the emulated DSP build. */
static void pw_few_run_c(const uint32_t *x, int K, const uint32_t *t, int8_t *y)
{
    const int W = K / 2;
    for (;;) {
        int32_t acc = (int32_t)t[0];
        for (int j = 0; j < W; j++) {
            acc = te_smlad(t[1 + j], x[j], acc);
        }
        const uint32_t *r = t + 1 + W;
        *y++ = (int8_t)te_ssat8(te_rq_fast(acc, (int32_t)r[0], (int32_t)r[1], (int32_t)(r[2] & 0xFFu)));
        if (r[2] & 0x80000000u) {
            return;
        }
        t += 4 + W;
    }
}
#endif

/* One pixel, in_c 8: the table's channels two a turn (n even), outputs at y. */
PW_INLINE void pw_few8_run(const int8_t *in, uint32_t off, const uint32_t *t, int8_t *y)
{
    const uint32_t v0 = te_read_u32(in), v1 = te_read_u32(in + 4);
    const uint32_t x0 = te_sxtab16(off, v0), x1 = te_sxtab16_ror8(off, v0);
    const uint32_t x2 = te_sxtab16(off, v1), x3 = te_sxtab16_ror8(off, v1);
#if PW_ASM
    int32_t a0, a1;
    uint32_t w0, w1, m;
    __asm__ volatile("1:\n\t"
                     "ldr    %[a0], [%[t]], #64\n\t"
                     "ldr    %[a1], [%[t], #-32]\n\t"
                     "ldrd   %[w0], %[w1], [%[t], #-60]\n\t"
                     "smlad  %[a0], %[w0], %[x0], %[a0]\n\t"
                     "smlad  %[a0], %[w1], %[x1], %[a0]\n\t"
                     "ldrd   %[w0], %[w1], [%[t], #-52]\n\t"
                     "smlad  %[a0], %[w0], %[x2], %[a0]\n\t"
                     "smlad  %[a0], %[w1], %[x3], %[a0]\n\t"
                     "ldrd   %[w0], %[w1], [%[t], #-28]\n\t"
                     "smlad  %[a1], %[w0], %[x0], %[a1]\n\t"
                     "smlad  %[a1], %[w1], %[x1], %[a1]\n\t"
                     "ldrd   %[w0], %[w1], [%[t], #-20]\n\t"
                     "smlad  %[a1], %[w0], %[x2], %[a1]\n\t"
                     "smlad  %[a1], %[w1], %[x3], %[a1]\n\t"
                     "ldrd   %[m], %[w1], [%[t], #-44]\n\t"
                     "and    %[w0], %[a0], #0x80000000\n\t"
                     "orr    %[w0], %[w0], #0x40000000\n\t"
                     "add    %[w1], %[w1], %[a0], asr #31\n\t"
                     "smlal  %[w0], %[w1], %[a0], %[m]\n\t"
                     "ldr    %[m], [%[t], #-36]\n\t"
                     "asr    %[w1], %[w1], %[m]\n\t"
                     "ssat   %[w1], #8, %[w1]\n\t"
                     "strb   %[w1], [%[y]], #1\n\t"
                     "ldrd   %[m], %[w1], [%[t], #-12]\n\t"
                     "and    %[w0], %[a1], #0x80000000\n\t"
                     "orr    %[w0], %[w0], #0x40000000\n\t"
                     "add    %[w1], %[w1], %[a1], asr #31\n\t"
                     "smlal  %[w0], %[w1], %[a1], %[m]\n\t"
                     "ldr    %[m], [%[t], #-4]\n\t"
                     "asr    %[w1], %[w1], %[m]\n\t"
                     "ssat   %[w1], #8, %[w1]\n\t"
                     "strb   %[w1], [%[y]], #1\n\t"
                     "cmp    %[m], #0\n\t"
                     "bge    1b"
                     : [t] "+r"(t), [y] "+r"(y), [a0] "=&r"(a0), [a1] "=&r"(a1), [w0] "=&r"(w0), [w1] "=&r"(w1),
                       [m] "=&r"(m)
                     : [x0] "r"(x0), [x1] "r"(x1), [x2] "r"(x2), [x3] "r"(x3)
                     : "cc", "memory");
#else
    const uint32_t x[4] = {x0, x1, x2, x3};
    pw_few_run_c(x, 8, t, y);
#endif
}

/* One pixel, in_c 16: the table's n channels one a turn, outputs at y. The loop body is there twice
 * and the end mark tested after the second only (one CMP/BGE per two channels); with n odd the first
 * turn enters at the second body (bit 0 of the table's address, which is word aligned, says so). */
#define PW_FEW16_BODY                                                                                      \
    "ldr    %[a], [%[t]], #48\n\t"                                                                         \
    "ldrd   %[w0], %[w1], [%[t], #-44]\n\t"                                                                \
    "smlad  %[a], %[w0], %[x0], %[a]\n\t"                                                                  \
    "smlad  %[a], %[w1], %[x1], %[a]\n\t"                                                                  \
    "ldrd   %[w0], %[w1], [%[t], #-36]\n\t"                                                                \
    "smlad  %[a], %[w0], %[x2], %[a]\n\t"                                                                  \
    "smlad  %[a], %[w1], %[x3], %[a]\n\t"                                                                  \
    "ldrd   %[w0], %[w1], [%[t], #-28]\n\t"                                                                \
    "smlad  %[a], %[w0], %[x4], %[a]\n\t"                                                                  \
    "smlad  %[a], %[w1], %[x5], %[a]\n\t"                                                                  \
    "ldrd   %[w0], %[w1], [%[t], #-20]\n\t"                                                                \
    "smlad  %[a], %[w0], %[x6], %[a]\n\t"                                                                  \
    "smlad  %[a], %[w1], %[x7], %[a]\n\t"                                                                  \
    "ldrd   %[m], %[w1], [%[t], #-12]\n\t"                                                                 \
    "and    %[w0], %[a], #0x80000000\n\t"                                                                  \
    "orr    %[w0], %[w0], #0x40000000\n\t"                                                                 \
    "add    %[w1], %[w1], %[a], asr #31\n\t"                                                               \
    "smlal  %[w0], %[w1], %[a], %[m]\n\t"                                                                  \
    "ldr    %[m], [%[t], #-4]\n\t"                                                                         \
    "asr    %[w1], %[w1], %[m]\n\t"                                                                        \
    "ssat   %[w1], #8, %[w1]\n\t"                                                                          \
    "strb   %[w1], [%[y]], #1\n\t"

PW_INLINE void pw_few16_run(const int8_t *in, uint32_t off, const uint32_t *t, int n, int8_t *y)
{
    const uint32_t v0 = te_read_u32(in), v1 = te_read_u32(in + 4), v2 = te_read_u32(in + 8), v3 = te_read_u32(in + 12);
    const uint32_t x0 = te_sxtab16(off, v0), x1 = te_sxtab16_ror8(off, v0);
    const uint32_t x2 = te_sxtab16(off, v1), x3 = te_sxtab16_ror8(off, v1);
    const uint32_t x4 = te_sxtab16(off, v2), x5 = te_sxtab16_ror8(off, v2);
    const uint32_t x6 = te_sxtab16(off, v3), x7 = te_sxtab16_ror8(off, v3);
#if PW_ASM
    uintptr_t tp = (uintptr_t)t | (uintptr_t)(n & 1);
    int32_t a;
    uint32_t w0, w1, m;
    __asm__ volatile("lsrs   %[t], %[t], #1\n\t"
                     "lsl    %[t], %[t], #1\n\t"
                     "bcs    2f\n\t"
                     "1:\n\t" PW_FEW16_BODY "2:\n\t" PW_FEW16_BODY
                     "cmp    %[m], #0\n\t"
                     "bge    1b"
                     : [t] "+r"(tp), [y] "+r"(y), [a] "=&r"(a), [w0] "=&r"(w0), [w1] "=&r"(w1), [m] "=&r"(m)
                     : [x0] "r"(x0), [x1] "r"(x1), [x2] "r"(x2), [x3] "r"(x3), [x4] "r"(x4), [x5] "r"(x5),
                       [x6] "r"(x6), [x7] "r"(x7)
                     : "cc", "memory");
#else
    const uint32_t x[8] = {x0, x1, x2, x3, x4, x5, x6, x7};
    (void)n;
    pw_few_run_c(x, 16, t, y);
#endif
}

/* in_c = K (8 or 16; 8 needs out_c even), every pixel; channels in chunks of at most PW_FEW_WORDS
 * words of table (equal sizes, even for K = 8). */
PW_INLINE void pw_few(const int8_t *in, int n_pixels, const int8_t *w, const int32_t *bias, int out_c,
                      const te_quant_t *q, int8_t *out, int K)
{
    uint32_t t[PW_FEW_WORDS];
    const int per = 4 + K / 2, cmax = PW_FEW_WORDS / per;
    const int chunks = (out_c + cmax - 1) / cmax;
    int cb = (out_c + chunks - 1) / chunks;
    cb += K == 8 ? cb & 1 : 0;
    const uint32_t off = te_dup16(-q->in_zp);
    for (int c0 = 0; c0 < out_c; c0 += cb) {
        const int n = out_c - c0 < cb ? out_c - c0 : cb;
        pw_few_fill(t, w + (size_t)c0 * (size_t)K, K, bias + c0, q->mult + c0, q->shift + c0, n, q->out_zp);
        const int8_t *x = in;
        int8_t *y = out + c0;
        for (int p = 0; p < n_pixels; p++) {
            if (K == 8) {
                pw_few8_run(x, off, t, y);
            } else {
                pw_few16_run(x, off, t, n, y);
            }
            x += K;
            y += out_c;
        }
    }
}

static PW_NOINLINE void pw_few8(const int8_t *in, int n_pixels, const int8_t *w, const int32_t *bias, int out_c,
                                const te_quant_t *q, int8_t *out)
{
    pw_few(in, n_pixels, w, bias, out_c, q, out, 8);
}

static PW_NOINLINE void pw_few16(const int8_t *in, int n_pixels, const int8_t *w, const int32_t *bias, int out_c,
                                 const te_quant_t *q, int8_t *out)
{
    pw_few(in, n_pixels, w, bias, out_c, q, out, 16);
}

/* ------------------------------------------------------------------------------------------------
 * Folded requantisation (full clamp, in_c a multiple of 4): for a chunk of up to PW_CB output
 * channels the per-channel constants are computed once per call into a stack table, not once per
 * pixel pair, with the output zero point folded in: te_rq_fast's hi word gets zp * 2^(e-1) added,
 * and floor((X + zp 2^(e-1) 2^32) / 2^(32+e-1)) = floor(X / 2^(31+e)) + zp exactly. Bounds: e in
 * [2, 23] (em1 <= 22: |zp 2^em1| <= 2^29, so the high word stays inside int32 and the 64-bit sum
 * cannot overflow); a call with any channel outside takes the per-pair path above. An output is then
 * AND, ORR, ADD, SMLAL, ASR, SSAT, STRB. With more than PW_CB channels the pixel pair is widened
 * again for every chunk, so the path is taken only while that costs less than it saves.
 * --------------------------------------------------------------------------------------------- */
#define PW_CB 32
#ifndef PW_RQ_ASM_MIN_K
#define PW_RQ_ASM_MIN_K 16 /* measured: in_c 16 0.5 % fewer with the asm loop, in_c 8 4.6 % more */
#endif
#define PW_RQ_MAX_REWIDEN 64 /* widening again per chunk: ~2.3 insn per in_c; the chunk saves ~256 */

typedef struct {
    int32_t hz;  /* 2^(e-2) + zp 2^(e-1) */
    int32_t em1; /* e - 1 */
} pw_rq_t;

/* The constants of channels [0, n); 0 when one of them is outside the folded form. */
static int pw_rq_fill(pw_rq_t *r, const int32_t *shift, int n, int32_t zp)
{
    for (int i = 0; i < n; i++) {
        const int32_t e = -shift[i];
        if (e < 2 || e > 23) {
            return 0;
        }
        r[i].em1 = e - 1;
        r[i].hz = (int32_t)(1 << (e - 2)) + zp * (int32_t)(1 << (e - 1));
    }
    return 1;
}

PW_INLINE int8_t pw_rq_out(int32_t acc, int32_t mult, const pw_rq_t *r)
{
    return (int8_t)te_ssat8(te_rq_fast(acc, mult, r->hz, r->em1));
}

/* The groups of four of a 2 x 2 tile in C (K = 4G, G >= 1). */
PW_INLINE void pw_loop_c(const int8_t *restrict *ppa, const int8_t *restrict *ppb, const int16_t *restrict *pc,
                         int G, int32_t *p00, int32_t *p01, int32_t *p10, int32_t *p11)
{
    const int8_t *restrict pa = *ppa, *restrict pb = *ppb;
    const int16_t *restrict c = *pc;
    int32_t s00 = *p00, s01 = *p01, s10 = *p10, s11 = *p11;
    for (int g = G; g > 0; g--) {
        const uint32_t a = te_read_u32(pa), b = te_read_u32(pb);
        uint32_t x0 = te_read_u32(c), x1 = te_read_u32(c + 2);
        const uint32_t a02 = te_sxtb16(a), a13 = te_sxtb16_ror8(a);
        s00 = te_smlad(a02, x0, s00);
        s00 = te_smlad(a13, x1, s00);
        const uint32_t b02 = te_sxtb16(b), b13 = te_sxtb16_ror8(b);
        s10 = te_smlad(b02, x0, s10);
        s10 = te_smlad(b13, x1, s10);
        x0 = te_read_u32(c + 4);
        x1 = te_read_u32(c + 6);
        s01 = te_smlad(a02, x0, s01);
        s01 = te_smlad(a13, x1, s01);
        s11 = te_smlad(b02, x0, s11);
        s11 = te_smlad(b13, x1, s11);
        pa += 4;
        pb += 4;
        c += 8;
    }
    *ppa = pa;
    *ppb = pb;
    *pc = c;
    *p00 = s00;
    *p01 = s01;
    *p10 = s10;
    *p11 = s11;
}

/* n channels (weights w, bias, mult, r) of two pixels (columns in cols), outputs at y and y1. */
PW_INLINE void pw_two_pixels_rq(const int8_t *w, const int16_t *cols, int K, int n, const int32_t *bias,
                                const int32_t *mult, const pw_rq_t *r, int8_t *y, int8_t *y1, int use_asm)
{
    const int G = K >> 2;
    int8_t *const yend = y + (n & ~1);
    (void)use_asm;
    while (y < yend) {
        const int8_t *restrict pa = w;
        const int8_t *restrict pb = w + K;
        const int16_t *restrict c = cols;
        int32_t s00 = bias[0], s01 = bias[0], s10 = bias[1], s11 = bias[1];
#if PW_ASM
        if (use_asm) {
            pw_loop_asm(&pa, &pb, &c, G, &s00, &s01, &s10, &s11);
        } else
#endif
        {
            pw_loop_c(&pa, &pb, &c, G, &s00, &s01, &s10, &s11);
        }
        y[0] = pw_rq_out(s00, mult[0], &r[0]);
        y1[0] = pw_rq_out(s01, mult[0], &r[0]);
        y[1] = pw_rq_out(s10, mult[1], &r[1]);
        y1[1] = pw_rq_out(s11, mult[1], &r[1]);
        w += 2 * K;
        bias += 2;
        mult += 2;
        r += 2;
        y += 2;
        y1 += 2;
    }
    if (n & 1) {
        const int16_t *restrict c = cols;
        const int8_t *restrict pa = w;
        int32_t s0 = bias[0], s1 = s0;
        pw_loop_1x2(&pa, &c, G, &s0, &s1);
        y[0] = pw_rq_out(s0, mult[0], &r[0]);
        y1[0] = pw_rq_out(s1, mult[0], &r[0]);
    }
}

/* Every pixel pair, channel chunk by channel chunk; 0 (nothing written) when a channel's shift is
 * outside the folded form. in_c is a positive multiple of 4, the clamp full, bias not NULL. */
PW_INLINE int pw_pairs_rq(const int8_t *in, int n_pairs, int in_c, const int8_t *w, const int32_t *bias, int out_c,
                          const te_quant_t *q, int8_t *out, int16_t *scratch, int use_asm)
{
    pw_rq_t r[PW_CB];
    for (int c0 = 0; c0 < out_c; c0 += PW_CB) {
        const int n = out_c - c0 < PW_CB ? out_c - c0 : PW_CB;
        if (!pw_rq_fill(r, q->shift + c0, n, q->out_zp)) {
            return 0; /* only the first chunk can fail: every shift is checked before (the caller) */
        }
        const int8_t *x = in;
        int8_t *y = out + c0;
        for (int i = 0; i < n_pairs; i++) {
            pw_cols4(x, in_c, q->in_zp, scratch);
            pw_two_pixels_rq(w + (size_t)c0 * (size_t)in_c, scratch, in_c, n, bias + c0, q->mult + c0, r, y,
                             y + out_c, use_asm);
            x += 2 * in_c;
            y += 2 * out_c;
        }
    }
    return 1;
}

static PW_NOINLINE int pw_pairs_rq_c(const int8_t *in, int n_pairs, int in_c, const int8_t *w, const int32_t *bias,
                                     int out_c, const te_quant_t *q, int8_t *out, int16_t *scratch)
{
    return pw_pairs_rq(in, n_pairs, in_c, w, bias, out_c, q, out, scratch, 0);
}

#if PW_ASM
static PW_NOINLINE int pw_pairs_rq_asm(const int8_t *in, int n_pairs, int in_c, const int8_t *w,
                                       const int32_t *bias, int out_c, const te_quant_t *q, int8_t *out,
                                       int16_t *scratch)
{
    return pw_pairs_rq(in, n_pairs, in_c, w, bias, out_c, q, out, scratch, 1);
}
#endif

/* Every shift in the folded form (checked once, so a chunk never fails after outputs were written). */
static int pw_rq_ok(const int32_t *shift, int n)
{
    for (int i = 0; i < n; i++) {
        if (shift[i] > -2 || shift[i] < -23) {
            return 0;
        }
    }
    return 1;
}

void te_conv_pointwise_s8(const int8_t *in, int n_pixels, int in_c, const int8_t *w, const int32_t *bias,
                          int out_c, const te_quant_t *q, int8_t *out, int16_t *scratch)
{
    TE_SPEC_POINTWISE(n_pixels, in_c, out_c, q); /* a per-layer copy's constants (codegen/specialize.py) */
    int n_pairs = n_pixels >> 1;
    if (bias == NULL) {
        n_pairs = 0; /* no bias (not what codegen emits): every pixel through the shared GEMM core */
    } else if (q->act_min == -128 && q->act_max == 127 && (in_c & 3) == 0 && in_c > 0 &&
               (out_c <= PW_CB || in_c <= PW_RQ_MAX_REWIDEN) && pw_rq_ok(q->shift, out_c)) {
        if (in_c == 16 || (in_c == 8 && (out_c & 1) == 0)) { /* few input channels: every pixel */
            (in_c == 8 ? pw_few8 : pw_few16)(in, n_pixels, w, bias, out_c, q, out);
            return;
        }
#if PW_ASM
        if (in_c >= PW_RQ_ASM_MIN_K && ((uintptr_t)scratch & 3u) == 0) {
            (void)pw_pairs_rq_asm(in, n_pairs, in_c, w, bias, out_c, q, out, scratch);
        } else
#endif
        {
            (void)pw_pairs_rq_c(in, n_pairs, in_c, w, bias, out_c, q, out, scratch);
        }
    } else if (q->act_min == -128 && q->act_max == 127) {
        /* the variant without tails needs in_c a positive multiple of 4 */
        ((in_c & 3) || in_c == 0 ? pw_pairs_full_tail
#if PW_ASM
         : in_c >= PW_ASM_MIN_K && ((uintptr_t)scratch & 3u) == 0 ? pw_pairs_full_asm
#endif
                                  : pw_pairs_full)(in, n_pairs, in_c, w, bias, out_c, q, out, scratch);
    } else {
        pw_pairs_clamp(in, n_pairs, in_c, w, bias, out_c, q, out, scratch);
    }
    for (int p = 2 * n_pairs; p < n_pixels; p++) {
        te_col_put(scratch, in_c, 0, 0, in + (size_t)p * (size_t)in_c, in_c, q->in_zp);
        te_gemm_s8_s16(w, scratch, 1, in_c, out_c, bias, q, out + (size_t)p * (size_t)out_c, NULL);
    }
}

/* ------------------------------------------------------------------------------------------------
 * Pointwise + residual ADD fused (te_conv_pointwise_add_s8; the add stage, its table and the general
 * pixel-pair path are in te_pw_add.h / te_pointwise_add.c). The usual block (full clamps, in_c a
 * multiple of 4, shifts in the folded form, TFLM's ADD parameters) runs the folded pointwise above
 * (pw_cols4, pw_loop_asm / pw_loop_c, pw_rq_fill) per pixel pair and channel chunk; the chunk's int8
 * projection values (2 x up to 32 bytes in the scratch) then go through te_pwa_run with the residual's
 * bytes: one table load replaces the ADD's scaling of one input, the other is a shift, and only the sum
 * is stored (13 instructions per output on the M4 against te_add_s8's 21, and the projection's output
 * tensor is gone). The residual element is read right before the output element of the same index is
 * written, so out may be res.
 * --------------------------------------------------------------------------------------------- */
#include "te_pw_add.h"

/* Every pixel pair, channel chunk by channel chunk (pw_pairs_rq's order); the caller checked the shifts.
 * A chunk's projection values of one pixel pair (2 n bytes in the scratch, after the add stage's table)
 * go through the add stage right away: the 2 x 2 tile's registers are all taken, so the sums are formed
 * in a second, tight loop (measured: 19 instructions per output with the add inside the tile's output
 * stage against 13 this way). */
PW_INLINE void pwa_pairs(const int8_t *in, int n_pairs, int in_c, const int8_t *w, const int32_t *bias, int out_c,
                         const te_quant_t *q, const te_pwa_t *a, const int8_t *res, int8_t *out, int16_t *scratch,
                         int use_asm)
{
    pw_rq_t r[PW_CB];
    int8_t *const v = te_pwa_pair(scratch, in_c);
    for (int c0 = 0; c0 < out_c; c0 += PW_CB) {
        const int n = out_c - c0 < PW_CB ? out_c - c0 : PW_CB;
        (void)pw_rq_fill(r, q->shift + c0, n, q->out_zp);
        const int8_t *x = in;
        const int8_t *b = res + c0;
        int8_t *y = out + c0;
        for (int i = 0; i < n_pairs; i++) {
            pw_cols4(x, in_c, q->in_zp, scratch);
            /* the projection's int8 values: pixel 0 at v[0..n), pixel 1 at v[n..2n) */
            pw_two_pixels_rq(w + (size_t)c0 * (size_t)in_c, scratch, in_c, n, bias + c0, q->mult + c0, r, v, v + n,
                             use_asm);
            te_pwa_run(v, b, y, n, a);
            te_pwa_run(v + n, b + out_c, y + out_c, n, a);
            x += 2 * in_c;
            b += 2 * out_c;
            y += 2 * out_c;
        }
    }
}

#define PWA_VARIANT(NAME, ASM)                                                                             \
    static PW_NOINLINE void NAME(const int8_t *in, int n_pairs, int in_c, const int8_t *w,                 \
                                 const int32_t *bias, int out_c, const te_quant_t *q, const te_pwa_t *a,   \
                                 const int8_t *res, int8_t *out, int16_t *scratch)                         \
    {                                                                                                      \
        pwa_pairs(in, n_pairs, in_c, w, bias, out_c, q, a, res, out, scratch, ASM);                        \
    }
PWA_VARIANT(pwa_pairs_c, 0)
#if PW_ASM
PWA_VARIANT(pwa_pairs_asm, 1)
#endif

void te_conv_pointwise_add_s8(const int8_t *in, int n_pixels, int in_c, const int8_t *w, const int32_t *bias,
                              int out_c, const te_quant_t *q, const int8_t *res, const te_add_params_t *p,
                              int8_t *out, int16_t *scratch)
{
    te_pwa_t a;
    const int fold = te_pwa_prepare(p, te_pwa_table(scratch, in_c), &a);
    int done = 0;
    if (fold && bias != NULL && q->act_min == -128 && q->act_max == 127 && (in_c & 3) == 0 && in_c > 0 &&
        (out_c <= PW_CB || in_c <= PW_RQ_MAX_REWIDEN) && pw_rq_ok(q->shift, out_c)) {
        const int n_pairs = n_pixels >> 1;
#if PW_ASM
        if (in_c >= PW_RQ_ASM_MIN_K && ((uintptr_t)scratch & 3u) == 0) {
            pwa_pairs_asm(in, n_pairs, in_c, w, bias, out_c, q, &a, res, out, scratch);
        } else
#endif
        {
            pwa_pairs_c(in, n_pairs, in_c, w, bias, out_c, q, &a, res, out, scratch);
        }
        done = 2 * n_pairs;
    }
    te_pwa_generic(in, done, n_pixels, in_c, w, bias, out_c, q, res, p, fold ? &a : NULL, out, scratch);
}

#endif /* TE_USE_DSP */
