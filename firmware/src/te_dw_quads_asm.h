/*
 * Depthwise 5x5 / 7x7 quads (four outputs of one plane row per pass) and single outputs (a row's odd
 * last one, TE_DW_ONE_*) in Thumb-2 DSP assembly, one asm block per kernel row. Included by te_depthwise.c on the real DSP path only (TE_DW_QUADS_ASM); the C
 * row functions quad_k{5,7}s{1,2} there compute the same sums (the host's DSP emulation and the tests'
 * portable builds use those).
 *
 * Why assembly: the compiler hoists the loads of a row and spills accumulators and packed weights
 * (7x7: about 38 instructions per row where 30 do the work). Here a row is exactly
 *   7x7/s1: 2 LDRD (packed weights) + 4 LDR + 8 SXTB16 + 16 SMLAD/SMLAxy + 1 ADD = 31 for 28 MACs,
 *   7x7/s2: 2 LDRD + 6 LDR + 11 SXTB16 + 16 MAC + 1 ADD = 36,
 *   5x5/s1: 1 LDRD + 1 LDR (w4) + 3 LDR + 6 SXTB16 + 12 MAC + 1 ADD = 24 for 20 MACs,
 *   5x5/s2: 1 LDRD + 1 LDR + 5 LDR + 9 SXTB16 + 12 MAC + 1 ADD = 29.
 * Operands: the row pointer q (advanced by pitch) and the packed-weight pointer w (dw_wrow_t, advanced
 * by one row with post-indexed loads), the four sums a0..a3, and scratch registers. The pairing of
 * bytes and weights is that of the C rows: xAB is the SXTB16 pair (pA, pB) of plane bytes at q, the
 * row's weights are (w0, w2), (w1, w3), (w4, w6) as int16 pairs and w_mid (w5 for 7x7, w4 for 5x5) in
 * the bottom half of its word. Reads end at the last tap of output 3 (unaligned LDR, as in C); the
 * weight rows are word-aligned (LDRD).
 */
#ifndef TE_DW_QUADS_ASM_H
#define TE_DW_QUADS_ASM_H

/* 7x7, stride 1: outputs at q, q+1, q+2, q+3 read p0..p9. */
#define TE_DW_ROW_K7S1                                                                                \
    "ldrd   %[w02], %[w13], [%[w]], #8\n\t"                                                               \
    "ldr    %[v], [%[q]]\n\t"                                                                         \
    "sxtb16 %[xo], %[v], ror #8\n\t"    /* x13 */                                                     \
    "sxtb16 %[v], %[v]\n\t"             /* x02 */                                                     \
    "smlad  %[a0], %[v], %[w02], %[a0]\n\t"                                                           \
    "smlad  %[a0], %[xo], %[w13], %[a0]\n\t"                                                          \
    "smlad  %[a1], %[xo], %[w02], %[a1]\n\t"                                                          \
    "ldr    %[v], [%[q], #2]\n\t"                                                                     \
    "sxtb16 %[xo], %[v], ror #8\n\t"    /* x35 */                                                     \
    "sxtb16 %[v], %[v]\n\t"             /* x24 */                                                     \
    "smlad  %[a1], %[v], %[w13], %[a1]\n\t"                                                           \
    "smlad  %[a2], %[v], %[w02], %[a2]\n\t"                                                           \
    "smlad  %[a2], %[xo], %[w13], %[a2]\n\t"                                                          \
    "smlad  %[a3], %[xo], %[w02], %[a3]\n\t"                                                          \
    "ldrd   %[w02], %[wm], [%[w]], #8\n\t" /* w02 now holds (w4, w6) */                               \
    "ldr    %[v], [%[q], #4]\n\t"                                                                     \
    "sxtb16 %[xo], %[v], ror #8\n\t"    /* x57 */                                                     \
    "sxtb16 %[v], %[v]\n\t"             /* x46 */                                                     \
    "smlad  %[a0], %[v], %[w02], %[a0]\n\t"                                                           \
    "smlabb %[a0], %[xo], %[wm], %[a0]\n\t"  /* w5 p5 */                                              \
    "smlad  %[a1], %[xo], %[w02], %[a1]\n\t"                                                          \
    "smlatb %[a1], %[v], %[wm], %[a1]\n\t"   /* w5 p6 */                                              \
    "smlatb %[a2], %[xo], %[wm], %[a2]\n\t"  /* w5 p7 */                                              \
    "smlad  %[a3], %[v], %[w13], %[a3]\n\t"                                                           \
    "ldr    %[v], [%[q], #6]\n\t"                                                                     \
    "sxtb16 %[xo], %[v], ror #8\n\t"    /* x79 */                                                     \
    "sxtb16 %[v], %[v]\n\t"             /* x68 */                                                     \
    "smlad  %[a2], %[v], %[w02], %[a2]\n\t"                                                           \
    "smlatb %[a3], %[v], %[wm], %[a3]\n\t"   /* w5 p8 */                                              \
    "smlad  %[a3], %[xo], %[w02], %[a3]\n\t"                                                          \
    "add    %[q], %[q], %[pitch]\n\t"

/* 7x7, stride 2: outputs at q, q+2, q+4, q+6 read p0..p12 (the last word from q+9: ROR 8 gives
 * (p10, p12), nothing past p12). */
#define TE_DW_ROW_K7S2                                                                                \
    "ldrd   %[w02], %[w13], [%[w]], #8\n\t"                                                               \
    "ldrd   %[w46], %[wm], [%[w]], #8\n\t"                                                            \
    "ldr    %[v], [%[q]]\n\t"                                                                         \
    "sxtb16 %[xo], %[v], ror #8\n\t"    /* x13 */                                                     \
    "sxtb16 %[v], %[v]\n\t"             /* x02 */                                                     \
    "smlad  %[a0], %[v], %[w02], %[a0]\n\t"                                                           \
    "smlad  %[a0], %[xo], %[w13], %[a0]\n\t"                                                          \
    "ldr    %[v], [%[q], #2]\n\t"                                                                     \
    "sxtb16 %[xo], %[v], ror #8\n\t"    /* x35 */                                                     \
    "sxtb16 %[v], %[v]\n\t"             /* x24 */                                                     \
    "smlad  %[a1], %[v], %[w02], %[a1]\n\t"                                                           \
    "smlad  %[a1], %[xo], %[w13], %[a1]\n\t"                                                          \
    "ldr    %[v], [%[q], #4]\n\t"                                                                     \
    "sxtb16 %[xo], %[v], ror #8\n\t"    /* x57 */                                                     \
    "sxtb16 %[v], %[v]\n\t"             /* x46 */                                                     \
    "smlad  %[a0], %[v], %[w46], %[a0]\n\t"                                                           \
    "smlabb %[a0], %[xo], %[wm], %[a0]\n\t"  /* w5 p5 */                                              \
    "smlatb %[a1], %[xo], %[wm], %[a1]\n\t"  /* w5 p7 */                                              \
    "smlad  %[a2], %[v], %[w02], %[a2]\n\t"                                                           \
    "smlad  %[a2], %[xo], %[w13], %[a2]\n\t"                                                          \
    "ldr    %[v], [%[q], #6]\n\t"                                                                     \
    "sxtb16 %[xo], %[v], ror #8\n\t"    /* x79 */                                                     \
    "sxtb16 %[v], %[v]\n\t"             /* x68 */                                                     \
    "smlad  %[a1], %[v], %[w46], %[a1]\n\t"                                                           \
    "smlad  %[a3], %[v], %[w02], %[a3]\n\t"                                                           \
    "smlad  %[a3], %[xo], %[w13], %[a3]\n\t"                                                          \
    "smlatb %[a2], %[xo], %[wm], %[a2]\n\t"  /* w5 p9 */                                              \
    "ldr    %[v], [%[q], #8]\n\t"                                                                     \
    "sxtb16 %[xo], %[v], ror #8\n\t"    /* x9B */                                                     \
    "sxtb16 %[v], %[v]\n\t"             /* x8A */                                                     \
    "smlad  %[a2], %[v], %[w46], %[a2]\n\t"                                                           \
    "smlatb %[a3], %[xo], %[wm], %[a3]\n\t"  /* w5 p11 */                                             \
    "ldr    %[v], [%[q], #9]\n\t"                                                                     \
    "sxtb16 %[v], %[v], ror #8\n\t"     /* xAC */                                                     \
    "smlad  %[a3], %[v], %[w46], %[a3]\n\t"                                                           \
    "add    %[q], %[q], %[pitch]\n\t"

/* 5x5, stride 1: outputs at q .. q+3 read p0..p7. */
#define TE_DW_ROW_K5S1                                                                                \
    "ldr    %[wm], [%[w], #12]\n\t"                                                                \
    "ldrd   %[w02], %[w13], [%[w]], #16\n\t"                                                                   \
    "ldr    %[v], [%[q]]\n\t"                                                                         \
    "sxtb16 %[xo], %[v], ror #8\n\t"    /* x13 */                                                     \
    "sxtb16 %[v], %[v]\n\t"             /* x02 */                                                     \
    "smlad  %[a0], %[v], %[w02], %[a0]\n\t"                                                           \
    "smlad  %[a0], %[xo], %[w13], %[a0]\n\t"                                                          \
    "smlad  %[a1], %[xo], %[w02], %[a1]\n\t"                                                          \
    "ldr    %[v], [%[q], #2]\n\t"                                                                     \
    "sxtb16 %[xo], %[v], ror #8\n\t"    /* x35 */                                                     \
    "sxtb16 %[v], %[v]\n\t"             /* x24 */                                                     \
    "smlad  %[a1], %[v], %[w13], %[a1]\n\t"                                                           \
    "smlatb %[a0], %[v], %[wm], %[a0]\n\t"   /* w4 p4 */                                              \
    "smlatb %[a1], %[xo], %[wm], %[a1]\n\t"  /* w4 p5 */                                              \
    "smlad  %[a2], %[v], %[w02], %[a2]\n\t"                                                           \
    "smlad  %[a2], %[xo], %[w13], %[a2]\n\t"                                                          \
    "smlad  %[a3], %[xo], %[w02], %[a3]\n\t"                                                          \
    "ldr    %[v], [%[q], #4]\n\t"                                                                     \
    "sxtb16 %[xo], %[v], ror #8\n\t"    /* x57 */                                                     \
    "sxtb16 %[v], %[v]\n\t"             /* x46 */                                                     \
    "smlatb %[a2], %[v], %[wm], %[a2]\n\t"   /* w4 p6 */                                              \
    "smlad  %[a3], %[v], %[w13], %[a3]\n\t"                                                           \
    "smlatb %[a3], %[xo], %[wm], %[a3]\n\t"  /* w4 p7 */                                              \
    "add    %[q], %[q], %[pitch]\n\t"

/* 5x5, stride 2: outputs at q, q+2, q+4, q+6 read p0..p10 (the last word from q+7: ROR 8 gives
 * (p8, p10)). */
#define TE_DW_ROW_K5S2                                                                                \
    "ldr    %[wm], [%[w], #12]\n\t"                                                                \
    "ldrd   %[w02], %[w13], [%[w]], #16\n\t"                                                                   \
    "ldr    %[v], [%[q]]\n\t"                                                                         \
    "sxtb16 %[xo], %[v], ror #8\n\t"    /* x13 */                                                     \
    "sxtb16 %[v], %[v]\n\t"             /* x02 */                                                     \
    "smlad  %[a0], %[v], %[w02], %[a0]\n\t"                                                           \
    "smlad  %[a0], %[xo], %[w13], %[a0]\n\t"                                                          \
    "ldr    %[v], [%[q], #2]\n\t"                                                                     \
    "sxtb16 %[xo], %[v], ror #8\n\t"    /* x35 */                                                     \
    "sxtb16 %[v], %[v]\n\t"             /* x24 */                                                     \
    "smlatb %[a0], %[v], %[wm], %[a0]\n\t"   /* w4 p4 */                                              \
    "smlad  %[a1], %[v], %[w02], %[a1]\n\t"                                                           \
    "smlad  %[a1], %[xo], %[w13], %[a1]\n\t"                                                          \
    "ldr    %[v], [%[q], #4]\n\t"                                                                     \
    "sxtb16 %[xo], %[v], ror #8\n\t"    /* x57 */                                                     \
    "sxtb16 %[v], %[v]\n\t"             /* x46 */                                                     \
    "smlatb %[a1], %[v], %[wm], %[a1]\n\t"   /* w4 p6 */                                              \
    "smlad  %[a2], %[v], %[w02], %[a2]\n\t"                                                           \
    "smlad  %[a2], %[xo], %[w13], %[a2]\n\t"                                                          \
    "ldr    %[v], [%[q], #6]\n\t"                                                                     \
    "sxtb16 %[xo], %[v], ror #8\n\t"    /* x79 */                                                     \
    "sxtb16 %[v], %[v]\n\t"             /* x68 */                                                     \
    "smlatb %[a2], %[v], %[wm], %[a2]\n\t"   /* w4 p8 */                                              \
    "smlad  %[a3], %[v], %[w02], %[a3]\n\t"                                                           \
    "smlad  %[a3], %[xo], %[w13], %[a3]\n\t"                                                          \
    "ldr    %[v], [%[q], #7]\n\t"                                                                     \
    "sxtb16 %[v], %[v], ror #8\n\t"     /* x8A */                                                     \
    "smlatb %[a3], %[v], %[wm], %[a3]\n\t"   /* w4 p10 */                                             \
    "add    %[q], %[q], %[pitch]\n\t"

/* One output (any stride), 7x7: taps p0..p6, the second word from q+3 ((p3, p5), (p4, p6)): nothing past p6.
 * 2 LDRD + 2 LDR + 4 SXTB16 + 4 MAC + 1 ADD = 13 for 7 MACs. */
#define TE_DW_ONE_K7                                                                                  \
    "ldrd   %[w02], %[w13], [%[w]], #8\n\t"                                                            \
    "ldr    %[v], [%[q]]\n\t"                                                                         \
    "sxtb16 %[xo], %[v], ror #8\n\t"    /* x13 */                                                     \
    "sxtb16 %[v], %[v]\n\t"             /* x02 */                                                     \
    "smlad  %[a0], %[v], %[w02], %[a0]\n\t"                                                           \
    "smlad  %[a0], %[xo], %[w13], %[a0]\n\t"                                                          \
    "ldrd   %[w02], %[wm], [%[w]], #8\n\t" /* w02 now holds (w4, w6) */                               \
    "ldr    %[v], [%[q], #3]\n\t"                                                                     \
    "sxtb16 %[xo], %[v], ror #8\n\t"    /* x46 */                                                     \
    "sxtb16 %[v], %[v]\n\t"             /* x35 */                                                     \
    "smlad  %[a0], %[xo], %[w02], %[a0]\n\t"                                                          \
    "smlatb %[a0], %[v], %[wm], %[a0]\n\t"  /* w5 p5 */                                               \
    "add    %[q], %[q], %[pitch]\n\t"

/* One output, 5x5: taps p0..p4, the second word from q+1 (ROR 8: (p2, p4)). 11 for 5 MACs. */
#define TE_DW_ONE_K5                                                                                  \
    "ldr    %[wm], [%[w], #12]\n\t"                                                                   \
    "ldrd   %[w02], %[w13], [%[w]], #16\n\t"                                                          \
    "ldr    %[v], [%[q]]\n\t"                                                                         \
    "sxtb16 %[xo], %[v], ror #8\n\t"    /* x13 */                                                     \
    "sxtb16 %[v], %[v]\n\t"             /* x02 */                                                     \
    "smlad  %[a0], %[v], %[w02], %[a0]\n\t"                                                           \
    "smlad  %[a0], %[xo], %[w13], %[a0]\n\t"                                                          \
    "ldr    %[v], [%[q], #1]\n\t"                                                                     \
    "sxtb16 %[v], %[v], ror #8\n\t"     /* x24 */                                                     \
    "smlatb %[a0], %[v], %[wm], %[a0]\n\t"  /* w4 p4 */                                               \
    "add    %[q], %[q], %[pitch]\n\t"

/* The sum of one output at p (a row's odd last output), starting from `base`. */
#define TE_DW_ONE_ASM_FN(NAME, ROW, K)                                                                \
    static DW_NOINLINE int32_t NAME(const int8_t *p, int pitch, const dw_wrow_t *wr, int32_t base)      \
    {                                                                                                 \
        int32_t a0 = base;                                                                            \
        const int8_t *q = p;                                                                          \
        const dw_wrow_t *w = wr;                                                                      \
        uint32_t v, xo, w02, w13, wm;                                                                 \
        TE_UNROLL                                                                                     \
        for (int r = 0; r < (K); r++) {                                                               \
            __asm__(ROW                                                                               \
                    : [a0] "+r"(a0), [q] "+r"(q), [w] "+r"(w), [v] "=&r"(v), [xo] "=&r"(xo),           \
                      [w02] "=&r"(w02), [w13] "=&r"(w13), [wm] "=&r"(wm)                              \
                    : [pitch] "r"(pitch)                                                              \
                    : "memory");                                                                      \
        }                                                                                             \
        return a0;                                                                                    \
    }

/* n quads of one output row, quad i at p + 4 * i * S, sums starting from `base` into acc[4i .. 4i+3]. */
#define TE_DW_QUADS_ASM_FN(NAME, ROW, K, S)                                                           \
    static DW_NOINLINE void NAME(const int8_t *p, int pitch, const dw_wrow_t *wr, int32_t *acc, int n,  \
                                 int32_t base)                                                        \
    {                                                                                                 \
        for (int i = 0; i < n; i++) {                                                                 \
            int32_t a0 = base, a1 = base, a2 = base, a3 = base;                                       \
            const int8_t *q = p;                                                                      \
            const dw_wrow_t *w = wr;                                                                  \
            uint32_t v, xo, w02, w13, w46, wm;                                                        \
            TE_UNROLL                                                                                 \
            for (int r = 0; r < (K); r++) {                                                           \
                __asm__(ROW                                                                           \
                        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [q] "+r"(q),     \
                          [w] "+r"(w), [v] "=&r"(v), [xo] "=&r"(xo), [w02] "=&r"(w02), [w13] "=&r"(w13), \
                          [w46] "=&r"(w46), [wm] "=&r"(wm)                                            \
                        : [pitch] "r"(pitch)                                                          \
                        : "memory");                                                                  \
            }                                                                                         \
            (void)w46;                                                                                \
            acc[0] = a0;                                                                              \
            acc[1] = a1;                                                                              \
            acc[2] = a2;                                                                              \
            acc[3] = a3;                                                                              \
            acc += 4;                                                                                 \
            p += 4 * (S);                                                                             \
        }                                                                                             \
    }

#endif /* TE_DW_QUADS_ASM_H */
