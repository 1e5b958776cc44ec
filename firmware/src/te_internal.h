/*
 * Internal helpers of the TinyEngine kernels: build-time path selection, the Cortex-M DSP
 * intrinsics (real instructions on ARM, a bit-exact C model on the host), unaligned loads and the
 * fixed-point requantisation primitives. Not part of the public API (firmware/include/tinyengine.h).
 *
 * Path selection
 *   TE_USE_DSP       use the SIMD paths (SXTB16/SXTAB16/SMLAD). Defined automatically when the
 *                    compiler targets a core with the DSP extension (__ARM_FEATURE_DSP: M4, M7, M33,
 *                    M55), unless TE_NO_DSP is defined.
 *   TE_NO_DSP        force the portable C path even on a DSP core (benchmarks, A/B checks).
 *   TE_DSP_EMULATE   with TE_USE_DSP on a host (x86, ...): run the DSP path with the C models below,
 *                    so the host tests exercise exactly the code the Cortex-M runs.
 *
 * Implementation-defined behaviour relied on (true for GCC, Clang, armcc/armclang, IAR):
 *   right shift of a negative signed integer is arithmetic, and converting an out-of-range unsigned
 *   value to a signed type wraps modulo 2^N. Everything else is plain C99 without undefined
 *   behaviour (checked with -fsanitize=undefined on the host).
 */
#ifndef TE_INTERNAL_H
#define TE_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "tinyengine.h"

#if defined(TE_NO_DSP)
#undef TE_USE_DSP
#elif defined(__ARM_FEATURE_DSP) && !defined(TE_USE_DSP)
#define TE_USE_DSP 1
#endif

#if defined(TE_USE_DSP) && !defined(TE_DSP_EMULATE) && !defined(__ARM_FEATURE_DSP)
#error "TE_USE_DSP needs a core with the DSP extension (-mcpu=cortex-m4/m7/m33) or -DTE_DSP_EMULATE on the host"
#endif

#define TE_INLINE static inline

/* ------------------------------------------------------------------------------------------------
 * Small integer helpers
 * --------------------------------------------------------------------------------------------- */

/* a + b modulo 2^32 (the accumulator wrap of the reference: wrap_int32(acc + bias)), without UB. */
TE_INLINE int32_t te_add_wrap(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

/* 4 bytes from any address (LDR on ARMv7-M, which allows unaligned word loads). */
TE_INLINE uint32_t te_read_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

TE_INLINE void te_write_u32(void *p, uint32_t v)
{
    memcpy(p, &v, sizeof v);
}

TE_INLINE int32_t te_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }
TE_INLINE int32_t te_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }

/* ------------------------------------------------------------------------------------------------
 * DSP intrinsics. Operands are packed as two int16 lanes in a uint32 (lane 0 = bits 0..15).
 *   te_sxtb16(x)          = (sext(x.b0), sext(x.b2))
 *   te_sxtb16_ror8(x)     = (sext(x.b1), sext(x.b3))
 *   te_sxtab16(a, x)      = (a.h0 + sext(x.b0), a.h1 + sext(x.b2))   lanes wrap mod 2^16
 *   te_sxtab16_ror8(a, x) = (a.h0 + sext(x.b1), a.h1 + sext(x.b3))
 *   te_smlad(x, y, acc)   = acc + x.h0*y.h0 + x.h1*y.h1             wraps mod 2^32 (Q flag unused)
 *   te_smlabb(x, y, acc)  = acc + x.h0*y.h0                         wraps mod 2^32
 *   te_smlatb(x, y, acc)  = acc + x.h1*y.h0                         wraps mod 2^32
 *   te_smlatt(x, y, acc)  = acc + x.h1*y.h1                         wraps mod 2^32
 *   te_smlabt(x, y, acc)  = acc + x.h0*y.h1                         wraps mod 2^32
 *   te_pkhbt(a, b)        = (a.h0, b.h0)     i.e. PKHBT a, b, LSL #16
 *   te_pkhtb(a, b)        = (b.h1, a.h1)     i.e. PKHTB a, b, ASR #16
 * --------------------------------------------------------------------------------------------- */
#if defined(TE_USE_DSP)
#if defined(TE_DSP_EMULATE)

TE_INLINE int32_t te_lane_s16(uint32_t x, int lane)
{
    return (int32_t)(((x >> (16 * lane)) & 0xFFFFu) ^ 0x8000u) - 0x8000;
}

TE_INLINE uint32_t te_sext8_lane(uint32_t byte)
{
    return (((byte & 0xFFu) ^ 0x80u) - 0x80u) & 0xFFFFu;
}

TE_INLINE uint32_t te_sxtb16(uint32_t x)
{
    return te_sext8_lane(x) | (te_sext8_lane(x >> 16) << 16);
}

TE_INLINE uint32_t te_sxtb16_ror8(uint32_t x)
{
    return te_sext8_lane(x >> 8) | (te_sext8_lane(x >> 24) << 16);
}

TE_INLINE uint32_t te_sxtab16(uint32_t a, uint32_t x)
{
    uint32_t s = te_sxtb16(x);
    return ((a + s) & 0xFFFFu) | (((a >> 16) + (s >> 16)) << 16);
}

TE_INLINE uint32_t te_sxtab16_ror8(uint32_t a, uint32_t x)
{
    uint32_t s = te_sxtb16_ror8(x);
    return ((a + s) & 0xFFFFu) | (((a >> 16) + (s >> 16)) << 16);
}

TE_INLINE int32_t te_smlad(uint32_t x, uint32_t y, int32_t acc)
{
    uint32_t p0 = (uint32_t)(te_lane_s16(x, 0) * te_lane_s16(y, 0));
    uint32_t p1 = (uint32_t)(te_lane_s16(x, 1) * te_lane_s16(y, 1));
    return (int32_t)((uint32_t)acc + p0 + p1);
}

TE_INLINE int32_t te_smlabb(uint32_t x, uint32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(te_lane_s16(x, 0) * te_lane_s16(y, 0)));
}

TE_INLINE int32_t te_smlatb(uint32_t x, uint32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(te_lane_s16(x, 1) * te_lane_s16(y, 0)));
}

TE_INLINE int32_t te_smlatt(uint32_t x, uint32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(te_lane_s16(x, 1) * te_lane_s16(y, 1)));
}

TE_INLINE int32_t te_smlabt(uint32_t x, uint32_t y, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(te_lane_s16(x, 0) * te_lane_s16(y, 1)));
}

TE_INLINE uint32_t te_pkhbt(uint32_t a, uint32_t b)
{
    return (a & 0xFFFFu) | (b << 16);
}

TE_INLINE uint32_t te_pkhtb(uint32_t a, uint32_t b)
{
    return (a & 0xFFFF0000u) | (b >> 16);
}

#else /* real instructions */

TE_INLINE uint32_t te_sxtb16(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(x));
    return r;
}

TE_INLINE uint32_t te_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

TE_INLINE uint32_t te_sxtab16(uint32_t a, uint32_t x)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

TE_INLINE uint32_t te_sxtab16_ror8(uint32_t a, uint32_t x)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

TE_INLINE int32_t te_smlad(uint32_t x, uint32_t y, int32_t acc)
{
    int32_t r;
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

TE_INLINE int32_t te_smlabb(uint32_t x, uint32_t y, int32_t acc)
{
    int32_t r;
    __asm__("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

TE_INLINE int32_t te_smlatb(uint32_t x, uint32_t y, int32_t acc)
{
    int32_t r;
    __asm__("smlatb %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

TE_INLINE int32_t te_smlatt(uint32_t x, uint32_t y, int32_t acc)
{
    int32_t r;
    __asm__("smlatt %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

TE_INLINE int32_t te_smlabt(uint32_t x, uint32_t y, int32_t acc)
{
    int32_t r;
    __asm__("smlabt %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

TE_INLINE uint32_t te_pkhbt(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

TE_INLINE uint32_t te_pkhtb(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

#endif /* TE_DSP_EMULATE */

/* Saturation to [-128, 127]: one SSAT #8 (GCC does not always find it in the clamp). */
TE_INLINE int32_t te_ssat8(int32_t v)
{
#if defined(TE_DSP_EMULATE)
    v = v < -128 ? -128 : v;
    return v > 127 ? 127 : v;
#else
    int32_t r;
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
    return r;
#endif
}

/* Two int16 lanes both holding v (v in [-32768, 32767]). */
TE_INLINE uint32_t te_dup16(int32_t v)
{
    return ((uint32_t)v & 0xFFFFu) * 0x00010001u;
}
#endif /* TE_USE_DSP */

/* ------------------------------------------------------------------------------------------------
 * Requantisation (TFLite Micro reference, double rounding), see tinyengine/numerics/requant.py.
 * --------------------------------------------------------------------------------------------- */

/* Saturating rounding doubling high multiply (gemmlowp). gemmlowp adds 2^30 (product >= 0) or
 * 1 - 2^30 (product < 0) and divides by 2^31 truncating toward zero. That equals
 * floor((ab + 2^30) / 2^31) for every product: for ab >= 0 truncation is floor; for ab = -t < 0,
 * gemmlowp gives -floor((t + 2^30 - 1) / 2^31) and floor((2^30 - t) / 2^31) = -ceil((t - 2^30) / 2^31)
 * = -floor((t - 2^30 + 2^31 - 1) / 2^31), the same. So it is one SMLAL and a 64-bit shift on
 * Cortex-M. The only product whose result does not fit is INT32_MIN * INT32_MIN: it saturates. */
TE_INLINE int32_t te_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

/* Rounding divide by 2^e, ties away from zero (gemmlowp RoundingDivideByPOT), e in [0, 31]. */
TE_INLINE int32_t te_rdbpot(int32_t x, int32_t e)
{
    const int32_t mask = (int32_t)((1u << e) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0);
    return (x >> e) + (remainder > threshold);
}

/* MultiplyByQuantizedMultiplier: RDBPOT(SRDHM(acc << max(shift, 0), mult), max(-shift, 0)),
 * the left shift wrapping to int32 like the reference. */
TE_INLINE int32_t te_mbqm(int32_t acc, int32_t mult, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return te_rdbpot(te_srdhm((int32_t)((uint32_t)acc << left), mult), right);
}

/* One axis of a pooling window: the taps [*lo, *hi) of output o, o * stride - pad .. + k, clipped to
 * the input's [0, n) (padding taps are skipped, as TFLM's pooling does). */
TE_INLINE void te_pool_span(int o, int stride, int pad, int k, int n, int *lo, int *hi)
{
    const int i0 = o * stride - pad;
    *lo = i0 < 0 ? 0 : i0;
    *hi = i0 + k > n ? n : i0 + k;
}

/* THE output stage of every kernel: a requantised value + out_zp (mod 2^32), clamped to
 * [act_min, act_max], as int8. Each requantisation below ends here. */
TE_INLINE int8_t te_out_s8(int32_t scaled, int32_t out_zp, int32_t act_min, int32_t act_max)
{
    int32_t v = te_add_wrap(scaled, out_zp);
    v = v < act_min ? act_min : v;
    v = v > act_max ? act_max : v;
    return (int8_t)v;
}

/* te_out_s8 with the full int8 clamp: one SSAT on Cortex-M (the compiler's two compares and IT moves
 * take six), the C clamp elsewhere; the same value as te_out_s8(scaled, out_zp, -128, 127). */
TE_INLINE int8_t te_out_ssat8(int32_t scaled, int32_t out_zp)
{
#if defined(TE_USE_DSP) && !defined(TE_DSP_EMULATE)
    int32_t r;
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(te_add_wrap(scaled, out_zp)));
    return (int8_t)r;
#else
    return te_out_s8(scaled, out_zp, -128, 127);
#endif
}

/* int32 accumulator (bias included) -> int8: requantise, add out_zp (mod 2^32), clamp. */
TE_INLINE int8_t te_requant_s8(int32_t acc, int32_t mult, int32_t shift, int32_t out_zp, int32_t act_min,
                               int32_t act_max)
{
    return te_out_s8(te_mbqm(acc, mult, shift), out_zp, act_min, act_max);
}

/* ------------------------------------------------------------------------------------------------
 * Fast requantisation for one output channel, bit-exact with te_mbqm for mult in [0, INT32_MAX]
 * (the range QuantizeMultiplier produces and the reference accepts; the kernels require it).
 *
 * shift <= -2 (e = -shift >= 2, the usual case): RDBPOT(r1, e) = floor((r1 + 2^(e-1) - [r1 < 0]) / 2^e)
 *   with r1 = SRDHM(acc, M) = floor(p / 2^31), p = acc M + 2^30 (see te_srdhm). Since
 *   floor((floor(y) + c) / n) = floor((y + c) / n) for integer c and n > 0, and [r1 < 0] = [p < 0],
 *   the double rounding is one division of the 64-bit product:
 *     out = floor((acc M + 2^30 + 2^(30+e) - [p < 0] 2^31) / 2^(31+e)).
 *   [p < 0] may be replaced by [acc < 0]: they differ only when -2^30 <= acc M < 0 or M = 0, where
 *   both give 0 (the numerator lies in [0, 2^(31+e))). With hi = 2^(e-2) - [acc < 0] and
 *   lo = 2^30 + [acc < 0] 2^31 the addend is hi * 2^32 + lo, and as 31 + e >= 33 the result is the
 *   high word of the sum shifted right by e - 1: AND, ORR, ADD (asr #31), SMLAL, ASR on Cortex-M4.
 * shift = -1 or shift >= 0: the two-step arithmetic (te_mbqm without the unreachable saturation).
 * --------------------------------------------------------------------------------------------- */
typedef struct {
    int32_t mult;
    int32_t fast;   /* shift <= -2 */
    int32_t hpos;   /* fast: 2^(e-2) */
    int32_t em1;    /* fast: e - 1 */
    int32_t shift;  /* otherwise */
} te_rq_t;

TE_INLINE te_rq_t te_rq_make(int32_t mult, int32_t shift)
{
    te_rq_t r;
    r.mult = mult;
    r.shift = shift;
    r.fast = shift <= -2;
    r.em1 = -shift - 1;
    r.hpos = r.fast ? (int32_t)(1u << (-shift - 2)) : 0;
    return r;
}

/* The shift <= -2 case: hpos = 2^(e-2), em1 = e - 1. */
TE_INLINE int32_t te_rq_fast(int32_t acc, int32_t mult, int32_t hpos, int32_t em1)
{
    const uint32_t lo = 0x40000000u | ((uint32_t)acc & 0x80000000u);
    const int32_t hi = hpos + (acc >> 31);
    const int64_t p = (int64_t)(((uint64_t)(uint32_t)hi << 32) | lo) + (int64_t)acc * mult;
    return (int32_t)(p >> 32) >> em1;
}

/* An ADD in TFLM's usual form (the fast paths of te_add_s8 and te_conv_pointwise_add_s8): left_shift 20,
 * an output multiplier >= 0 with its shift in [-23, -2], and one input at scale ratio 0.5 (multiplier
 * 2^30, shift 0). Returns 1 when that input is a, 2 when it is only b, 0 when the form does not hold. */
TE_INLINE int te_add_half_input(const te_add_params_t *p)
{
    const int32_t eo = -p->out_shift;
    if (p->left_shift != 20 || p->out_mult < 0 || eo < 2 || eo > 23) {
        return 0;
    }
    if (p->a_mult == (1 << 30) && p->a_shift == 0) {
        return 1;
    }
    return p->b_mult == (1 << 30) && p->b_shift == 0 ? 2 : 0;
}

TE_INLINE int32_t te_rq_scale(const te_rq_t *r, int32_t acc)
{
    if (r->fast) {
        return te_rq_fast(acc, r->mult, r->hpos, r->em1);
    }
    if (r->shift == 0) { /* e.g. ADD's larger input multiplier 0.5 = (2^30, 0) */
        return (int32_t)(((int64_t)acc * r->mult + ((int64_t)1 << 30)) >> 31);
    }
    const int32_t left = r->shift > 0 ? r->shift : 0;
    const int32_t a = (int32_t)((uint32_t)acc << left);
    const int32_t r1 = (int32_t)(((int64_t)a * r->mult + ((int64_t)1 << 30)) >> 31);
    return r->shift < 0 ? te_rdbpot(r1, -r->shift) : r1;
}

TE_INLINE int8_t te_rq_s8(const te_rq_t *r, int32_t acc, int32_t out_zp, int32_t act_min, int32_t act_max)
{
    return te_out_s8(te_rq_scale(r, acc), out_zp, act_min, act_max);
}

TE_INLINE int32_t te_bias(const int32_t *bias, int c)
{
    return bias != NULL ? bias[c] : 0;
}

/* ------------------------------------------------------------------------------------------------
 * Shared GEMM core (te_gemm.c): int8 weight rows x int16 columns, 2 x 2 tiles.
 *
 * The scratch holds the two columns of a tile (K = kh * kw * in_c values x - in_zp each, 2K int16):
 *   portable: column j at cols[j * K + k], natural order;
 *   DSP: full groups of four (k = 4g..4g+3 < K4 = K & ~3) interleaved, 8 int16 per group:
 *        cols[8g .. 8g+3] = column 0 as (x[4g], x[4g+2], x[4g+1], x[4g+3]), cols[8g+4 .. 8g+7] the same
 *        for column 1 -- the order in which SXTB16(w) = (w[4g], w[4g+2]) and SXTB16(w ROR 8) =
 *        (w[4g+1], w[4g+3]) pair with them in SMLAD --; the K - K4 tail values of column j follow at
 *        cols[2 * K4 + j * (K - K4)] in natural order.
 * A single-column tile uses the same layout (column 1's slots are left alone).
 * --------------------------------------------------------------------------------------------- */

/* Column j, values k0 .. k0+n-1: src[i] - zp. */
void te_col_put(int16_t *cols, int K, int j, int k0, const int8_t *src, int n, int32_t zp);

/* Column j, values k0 .. k0+n-1: 0 (padding). */
void te_col_zero(int16_t *cols, int K, int j, int k0, int n);

/* For o in [0, out_c): out0[o] = requant(bias[o] + <w[o], column 0>), and the same for column 1 /
 * out1 when ncols == 2. w is out_c rows of K int8 (row-major). */
void te_gemm_s8_s16(const int8_t *w, const int16_t *cols, int ncols, int K, int out_c, const int32_t *bias,
                    const te_quant_t *q, int8_t *out0, int8_t *out1);

#if defined(TE_USE_DSP)
/* te_gemm_s8_s16 for two columns and a bias (te_pointwise.c: the pointwise kernel's tiles). */
void te_gemm2_s8_s16(const int8_t *w, const int16_t *cols, int K, int out_c, const int32_t *bias,
                     const te_quant_t *q, int8_t *out0, int8_t *out1);
#endif

/* Per-layer specialised copies (codegen/specialize.py): a generated te_spec_<layer>.c defines these to
 * give the kernel entry the layer's constants before it includes the kernel's .c file (GCC then
 * propagates them through the inlined bodies); in the generic kernels they do nothing. */
#ifndef TE_SPEC_POINTWISE
#define TE_SPEC_POINTWISE(n_pixels, in_c, out_c, q) ((void)0)
#endif
#ifndef TE_SPEC_DEPTHWISE
#define TE_SPEC_DEPTHWISE(g, q) ((void)0)
#endif

#endif /* TE_INTERNAL_H */
