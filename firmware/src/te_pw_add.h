/*
 * Internal to the fused pointwise + residual ADD (te_conv_pointwise_add_s8): the scratch layout and the
 * add stage shared by the DSP path (te_pointwise.c) and the portable one (te_pointwise_add.c).
 */
#ifndef TE_PW_ADD_H
#define TE_PW_ADD_H

#include "te_internal.h"

/* The ADD's output stage when it folds (TFLM's parameters, full clamp): with one input at multiplier
 * 0.5 = (2^30, 0) its scaled value is exactly (x - zp) 2^19, the other input's scaled value is a table
 * over its 256 bytes (te_rq_fast or te_mbqm, both exact) with the linear
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

TE_INLINE int32_t te_pwa_sat8(int32_t v)
{
#if defined(TE_USE_DSP)
    return te_ssat8(v);
#else
    return v < -128 ? -128 : (v > 127 ? 127 : v);
#endif
}

/* The add stage over n projection values v and residual bytes b -> out (out may be b exactly): per
 * output two byte loads, a table load, the sum, te_rq_fast with out_zp folded, SSAT, a store. The
 * constants are copied to locals first (int8 stores could alias the struct: no reloads). */
TE_INLINE void te_pwa_run(const int8_t *v, const int8_t *b, int8_t *out, int n, const te_pwa_t *a)
{
    const int32_t *const t = a->t;
    const int32_t mo = a->mo, hz = a->hz, em1 = a->em1;
    if (a->lin_a) {
        for (int i = 0; i < n; i++) {
            const int32_t s = t[b[i]] + v[i] * (1 << 19);
            out[i] = (int8_t)te_pwa_sat8(te_rq_fast(s, mo, hz, em1));
        }
    } else {
        for (int i = 0; i < n; i++) {
            const int32_t s = t[v[i]] + b[i] * (1 << 19);
            out[i] = (int8_t)te_pwa_sat8(te_rq_fast(s, mo, hz, em1));
        }
    }
}

/* Pixels [p0, n_pixels) two at a time: te_conv_pointwise_s8 into the pair bytes of the scratch, then the
 * add stage (folded when `a` is not NULL, else te_add_s8). Any parameters; out may be res exactly. */
void te_pwa_generic(const int8_t *in, int p0, int n_pixels, int in_c, const int8_t *w, const int32_t *bias,
                    int out_c, const te_quant_t *q, const int8_t *res, const te_add_params_t *p,
                    const te_pwa_t *a, int8_t *out, int16_t *scratch);

#endif /* TE_PW_ADD_H */
