/*
 * Internal to the fused pointwise + residual ADD (te_conv_pointwise_add_s8): the scratch layout and the
 * add stage shared by the DSP path (te_pointwise.c) and the portable one (te_pointwise_add.c).
 */
#ifndef TE_PW_ADD_H
#define TE_PW_ADD_H

#include "te_internal.h"

/* The ADD's output stage when it folds (TFLM's parameters, full clamp): with one input at multiplier
 * 0.5 = (2^30, 0) its scaled value is exactly (x - zp) 2^19, the other input's scaled value is a table
 * over its 256 bytes (te_mbqm, the literal arithmetic, so exact by construction) with the linear
 * input's -zp 2^19 folded in; the sum is requantised by te_rq_fast with out_zp folded in. */
typedef struct {
    const int32_t *t; /* 256 entries, indexed by byte + 128 (t points at entry 128: t[byte]) */
    int32_t mo;       /* output multiplier */
    int32_t hz;       /* 2^(e-2) + out_zp 2^(e-1), e = -out_shift in [2, 23] */
    int32_t em1;      /* e - 1 */
    int lin_a;        /* 1: input a (the projection) is the linear one, the table is over b */
} te_pwa_t;

/* Scratch: the pointwise columns (2 in_c int16), the table (256 int32), the pixel-pair bytes (2 out_c). */
TE_INLINE int32_t *te_pwa_table(int16_t *scratch, int in_c)
{
    return (int32_t *)(void *)(scratch + 2 * in_c);
}

TE_INLINE int8_t *te_pwa_pair(int16_t *scratch, int in_c)
{
    return (int8_t *)(void *)(te_pwa_table(scratch, in_c) + 256);
}

/* Fill the table and the constants; 0 (nothing usable) when the parameters do not fold. */
int te_pwa_prepare(const te_add_params_t *p, int32_t *table, te_pwa_t *a);

/* The sum of a (the projection's int8 output) and b (the residual byte) as te_add_s8 stores it. */
TE_INLINE int8_t te_pwa_out(const te_pwa_t *a, int32_t va, int32_t vb)
{
    const int32_t s = a->lin_a ? a->t[vb] + va * (1 << 19) : a->t[va] + vb * (1 << 19);
    const int32_t v = te_rq_fast(s, a->mo, a->hz, a->em1);
#if defined(TE_USE_DSP)
    return (int8_t)te_ssat8(v);
#else
    return (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
#endif
}

/* Pixels [p0, n_pixels) two at a time: te_conv_pointwise_s8 into the pair bytes of the scratch, then the
 * add stage (folded when `a` is not NULL, else te_add_s8). Any parameters; out may be res exactly. */
void te_pwa_generic(const int8_t *in, int p0, int n_pixels, int in_c, const int8_t *w, const int32_t *bias,
                    int out_c, const te_quant_t *q, const int8_t *res, const te_add_params_t *p,
                    const te_pwa_t *a, int8_t *out, int16_t *scratch);

#endif /* TE_PW_ADD_H */
