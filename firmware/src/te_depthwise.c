/*
 * Depthwise convolution, depth multiplier 1, NHWC, any k_h x k_w (fast paths for 3x3, 5x5 and 7x7 at
 * stride 1 and 2), any stride and explicit (top, left) padding.
 *
 * In place (te_depthwise_inplace_s8). The H x W x C input and the out_h x out_w x C output share one
 * buffer. Channel by channel: channel c of the input is copied into `scratch`, a padded int8 plane
 * whose border holds in_zp (so a padded tap contributes w * (in_zp - in_zp) = 0, exactly as the
 * reference's zero padding after the zero-point subtraction); then output channel c is computed from
 * the plane and stored at (oy * out_w + ox) * C + c, the compact NHWC layout from the start of the
 * buffer.
 *
 * Why this never overwrites an input value that is still to be read (any stride, incl. 2):
 *   input  (iy, ix, c') lives at byte (iy * W + ix) * C + c'      -> offset = c' (mod C)
 *   output (oy, ox, c)  goes to byte (oy * out_w + ox) * C + c     -> offset = c  (mod C)
 * The output has the same channel count C as the input, so every byte written while processing
 * channel c is congruent to c modulo C: it is a slot of channel c, never a slot of another channel.
 * Channels c' > c, the only ones not yet read, are therefore intact; channel c itself was copied to
 * the scratch plane before its first output is written, and the plane, not the buffer, is what the
 * outputs of channel c read. Stride 2 changes only which slots of channel c are written (fewer of
 * them), not their residue. The writes stay inside the buffer because out_h * out_w <= H * W
 * (required: the planner gives the shared buffer the input's size).
 * Within one channel a direct in-place computation would not be safe (output pixel q overwrites
 * input pixel q of the same channel, which later outputs still read); that is what the plane is for.
 *
 * Accumulator: acc = bias + sum w * (x - in_zp) = (bias - in_zp * sum(w)) + sum w * x, so the inner
 * loops multiply raw int8 plane values; the constant is per channel. All sums are exact in int32
 * (|sum w * x| <= k_h * k_w * 128 * 128), the bias is added modulo 2^32 like the reference.
 *
 * DSP path (3x3, 5x5, 7x7; stride 1 or 2): two horizontally adjacent outputs per pass over the kernel
 * rows. A 32-bit load of plane bytes p0..p3 gives (p0, p2) with SXTB16 and (p1, p3) with SXTB16 ROR 8;
 * the row's weights are packed as (w0, w2), (w1, w3), (w4, w6) and a single w_mid, so each SMLAD does
 * two taps of one output and SMLABB/SMLATB the odd one (see the row functions for the exact pairing).
 * Per kernel row and output pair: 3x3/s1 1 load + 2 SXTB16 + 4 MAC instructions for 6 MACs,
 * 5x5/s1 2 + 4 + 6 for 10, 7x7/s1 3 + 6 + 8 for 14 (stride 2: one more load and SXTB16). The loads
 * never reach past the last tap of the second output (unaligned word loads, 4 bytes from any
 * offset), so the pair loop runs to the end of every row.
 * 3x3 pairs run in functions of their own with the packed weights in registers and the sums starting
 * from the channel's base (the store then skips that addition); stride-1 planes up to DW_FLAT_MAX_W
 * wide are swept whole as flat rows (see dw_flat_k3s1). 5x5 and 7x7 take four
 * outputs per pass (two pairs sharing their loads, the row's weights loaded once for the four; in
 * Thumb-2 assembly on the real DSP path, te_dw_quads_asm.h), a pair for a leftover of 2, one more quad
 * ending at the last output for a leftover of 3 after quads, and an odd last output on its own (in
 * assembly; elsewhere the second of the pair ending at it, its first recomputed), so the reads still
 * end at the last output's last tap. On the real DSP path the usual output stage (no fused clamp,
 * em1 <= 22) folds out_zp into the rounding word, two outputs per pass.
 */
#include "te_internal.h"

#if defined(__GNUC__) && !defined(__clang__)
#define TE_UNROLL _Pragma("GCC unroll 8")
#else
#define TE_UNROLL
#endif

size_t te_depthwise_scratch_bytes(int in_h, int in_w, int pad_top, int pad_bottom, int pad_left, int pad_right)
{
    return (size_t)(in_h + pad_top + pad_bottom) * (size_t)(in_w + pad_left + pad_right);
}

/* Per-channel output parameters. */
typedef struct {
    int32_t base; /* bias - in_zp * sum(w) (mod 2^32) */
    te_rq_t rq;
    int32_t zp, lo, hi;
} dw_out_t;

/* Channel c's output stage: bias folded with the input zero point's contribution, requantisation. */
static dw_out_t dw_out_make(const int32_t *bias, const te_quant_t *q, int c, int32_t wsum)
{
    dw_out_t o;
    o.base = te_add_wrap(te_bias(bias, c), -q->in_zp * wsum);
    o.rq = te_rq_make(q->mult[c], q->shift[c]);
    o.zp = q->out_zp;
    o.lo = q->act_min;
    o.hi = q->act_max;
    return o;
}

TE_INLINE int8_t dw_requant(const dw_out_t *o, int32_t acc)
{
    return te_rq_s8(&o->rq, te_add_wrap(acc, o->base), o->zp, o->lo, o->hi);
}

#if defined(TE_USE_DSP) && !defined(TE_DSP_EMULATE)
/* The folded output stage of dw_store / dw_store_based (base a constant 0 in the latter: the addition
 * folds away), two outputs per pass: one loop test and one pointer step for both. */
TE_INLINE void dw_store_folded(const int32_t *acc, int n, int32_t base, int32_t mult, int32_t hz, int32_t em1,
                               int8_t *out, int C)
{
    if (n & 1) { /* the odd one first: nothing to fix up after the loop */
        int32_t r;
        __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(te_rq_fast(te_add_wrap(acc[0], base), mult, hz, em1)));
        out[0] = (int8_t)r;
        out += C;
        acc++;
    }
    const int32_t *const end = acc + (n & ~1);
    const size_t c2 = 2 * (size_t)C;
    while (acc != end) {
        int32_t r0, r1;
        __asm__("ssat %0, #8, %1" : "=r"(r0) : "r"(te_rq_fast(te_add_wrap(acc[0], base), mult, hz, em1)));
        __asm__("ssat %0, #8, %1" : "=r"(r1) : "r"(te_rq_fast(te_add_wrap(acc[1], base), mult, hz, em1)));
        out[0] = (int8_t)r0;
        out[C] = (int8_t)r1;
        out += c2;
        acc += 2;
    }
}
#endif

/* Requantise n raw accumulators into outputs C bytes apart. The usual shift <= -2 case gets its
 * own loop (te_rq_scale's fast branch, unswitched by hand). */
static void dw_store(const int32_t *acc, int n, const dw_out_t *o, int8_t *out, int C)
{
    const int32_t base = o->base, zp = o->zp, lo = o->lo, hi = o->hi;
#if defined(TE_USE_DSP) && !defined(TE_DSP_EMULATE)
    if (o->rq.fast && lo == -128 && hi == 127 && o->rq.em1 <= 22) {
        /* no fused clamp: SSAT #8, with out_zp folded into the rounding word:
         * (X >> em1) + zp == (X + (zp << em1)) >> em1, and for em1 <= 22 the sum stays inside int32
         * (|X| <= 2^30, |zp << em1| <= 2^29): one instruction less per output. */
        const int32_t mult = o->rq.mult, em1 = o->rq.em1;
        const int32_t hz = te_add_wrap(o->rq.hpos, (int32_t)((uint32_t)zp << em1));
        if (n >= 8) {
            dw_store_folded(acc, n, base, mult, hz, em1, out, C);
            return;
        }
        for (int i = 0; i < n; i++) { /* short rows (out of place, small planes): the plain loop */
            int32_t r;
            __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(te_rq_fast(te_add_wrap(acc[i], base), mult, hz, em1)));
            out[(size_t)i * (size_t)C] = (int8_t)r;
        }
        return;
    }
#endif
    if (o->rq.fast && lo == -128 && hi == 127) { /* no fused clamp: SSAT #8 */
        const int32_t mult = o->rq.mult, hpos = o->rq.hpos, em1 = o->rq.em1;
        for (int i = 0; i < n; i++) {
            out[(size_t)i * (size_t)C] = te_out_ssat8(te_rq_fast(te_add_wrap(acc[i], base), mult, hpos, em1), zp);
        }
        return;
    }
    if (o->rq.fast) {
        const int32_t mult = o->rq.mult, hpos = o->rq.hpos, em1 = o->rq.em1;
        for (int i = 0; i < n; i++) {
            out[(size_t)i * (size_t)C] = te_out_s8(te_rq_fast(te_add_wrap(acc[i], base), mult, hpos, em1), zp, lo, hi);
        }
        return;
    }
    const te_rq_t rq = o->rq;
    for (int i = 0; i < n; i++) {
        out[(size_t)i * (size_t)C] = te_rq_s8(&rq, te_add_wrap(acc[i], base), zp, lo, hi);
    }
}

/* dw_store for accumulators that already hold o->base (the DSP in-place loops start from it): on the
 * real DSP path the usual case saves the addition per output; otherwise dw_store with base 0. */
#if defined(TE_USE_DSP)
static void dw_store_based(const int32_t *acc, int n, const dw_out_t *o, int8_t *out, int C)
{
#if defined(TE_USE_DSP) && !defined(TE_DSP_EMULATE)
    if (o->rq.fast && o->lo == -128 && o->hi == 127 && o->rq.em1 <= 22) { /* as in dw_store */
        const int32_t em1 = o->rq.em1;
        dw_store_folded(acc, n, 0, o->rq.mult, te_add_wrap(o->rq.hpos, (int32_t)((uint32_t)o->zp << em1)), em1, out, C);
        return;
    }
#endif
    dw_out_t o0 = *o;
    o0.base = 0;
    dw_store(acc, n, &o0, out, C);
}
#endif

/* One output from the plane, any kernel and stride (borders, leftovers, unusual kernels). */
static int32_t dw_one(const int8_t *p, int pitch, int kh, int kw, const int32_t *wk)
{
    int32_t acc = 0;
    for (int ky = 0; ky < kh; ky++) {
        for (int kx = 0; kx < kw; kx++) {
            acc += wk[ky * kw + kx] * p[kx];
        }
        p += pitch;
    }
    return acc;
}

#if defined(TE_USE_DSP)

/* Packed weights of one kernel row (int16 lanes). */
typedef struct {
    uint32_t w02, w13, w46, wmid;
} dw_wrow_t;

static void pack_rows(const int32_t *wk, int k, dw_wrow_t *wr)
{
    for (int r = 0; r < k; r++) {
        const int32_t *w = wk + r * k;
        if (k == 3) {
            wr[r].w02 = te_pkhbt((uint32_t)w[0], (uint32_t)w[2]);
            wr[r].wmid = (uint32_t)w[1];
            wr[r].w13 = wr[r].w46 = 0u;
        } else if (k == 5) {
            wr[r].w02 = te_pkhbt((uint32_t)w[0], (uint32_t)w[2]);
            wr[r].w13 = te_pkhbt((uint32_t)w[1], (uint32_t)w[3]);
            wr[r].wmid = (uint32_t)w[4];
            wr[r].w46 = 0u;
        } else {
            wr[r].w02 = te_pkhbt((uint32_t)w[0], (uint32_t)w[2]);
            wr[r].w13 = te_pkhbt((uint32_t)w[1], (uint32_t)w[3]);
            wr[r].w46 = te_pkhbt((uint32_t)w[4], (uint32_t)w[6]);
            wr[r].wmid = (uint32_t)w[5];
        }
    }
}

/* Row kernels: add one kernel row's taps to outputs a0 (at p) and a1 (at p + stride).
 * xAB denotes the SXTB16 pair (pA, pB) of plane bytes relative to p. */
TE_INLINE void row_k3s1(const int8_t *p, const dw_wrow_t *w, int32_t *a0, int32_t *a1)
{
    const uint32_t v = te_read_u32(p);
    const uint32_t x02 = te_sxtb16(v), x13 = te_sxtb16_ror8(v);
    *a0 = te_smlabb(x13, w->wmid, te_smlad(x02, w->w02, *a0)); /* w0p0 + w2p2 + w1p1 */
    *a1 = te_smlatb(x02, w->wmid, te_smlad(x13, w->w02, *a1)); /* w0p1 + w2p3 + w1p2 */
}

TE_INLINE void row_k3s2(const int8_t *p, const dw_wrow_t *w, int32_t *a0, int32_t *a1)
{
    const uint32_t v = te_read_u32(p), u = te_read_u32(p + 1);
    const uint32_t x02 = te_sxtb16(v), x13 = te_sxtb16_ror8(v), x24 = te_sxtb16_ror8(u);
    *a0 = te_smlabb(x13, w->wmid, te_smlad(x02, w->w02, *a0)); /* w0p0 + w2p2 + w1p1 */
    *a1 = te_smlatb(x13, w->wmid, te_smlad(x24, w->w02, *a1)); /* w0p2 + w2p4 + w1p3 */
}

TE_INLINE void row_k5s1(const int8_t *p, const dw_wrow_t *w, int32_t *a0, int32_t *a1)
{
    const uint32_t v = te_read_u32(p), u = te_read_u32(p + 2);
    const uint32_t x02 = te_sxtb16(v), x13 = te_sxtb16_ror8(v);
    const uint32_t x24 = te_sxtb16(u), x35 = te_sxtb16_ror8(u);
    *a0 = te_smlatb(x24, w->wmid, te_smlad(x13, w->w13, te_smlad(x02, w->w02, *a0))); /* .. + w4p4 */
    *a1 = te_smlatb(x35, w->wmid, te_smlad(x24, w->w13, te_smlad(x13, w->w02, *a1))); /* .. + w4p5 */
}

TE_INLINE void row_k5s2(const int8_t *p, const dw_wrow_t *w, int32_t *a0, int32_t *a1)
{
    const uint32_t v = te_read_u32(p), t = te_read_u32(p + 2), u = te_read_u32(p + 3);
    const uint32_t x02 = te_sxtb16(v), x13 = te_sxtb16_ror8(v);
    const uint32_t x24 = te_sxtb16(t), x35 = te_sxtb16_ror8(t), x46 = te_sxtb16_ror8(u);
    *a0 = te_smlabb(x46, w->wmid, te_smlad(x13, w->w13, te_smlad(x02, w->w02, *a0))); /* .. + w4p4 */
    *a1 = te_smlatb(x46, w->wmid, te_smlad(x35, w->w13, te_smlad(x24, w->w02, *a1))); /* .. + w4p6 */
}

TE_INLINE void row_k7s1(const int8_t *p, const dw_wrow_t *w, int32_t *a0, int32_t *a1)
{
    const uint32_t v = te_read_u32(p), t = te_read_u32(p + 2), u = te_read_u32(p + 4);
    const uint32_t x02 = te_sxtb16(v), x13 = te_sxtb16_ror8(v);
    const uint32_t x24 = te_sxtb16(t), x46 = te_sxtb16(u), x57 = te_sxtb16_ror8(u);
    /* a0: w0p0 + w2p2, w1p1 + w3p3, w4p4 + w6p6, w5p5 */
    *a0 = te_smlabb(x57, w->wmid, te_smlad(x46, w->w46, te_smlad(x13, w->w13, te_smlad(x02, w->w02, *a0))));
    /* a1: w0p1 + w2p3, w1p2 + w3p4, w4p5 + w6p7, w5p6 */
    *a1 = te_smlatb(x46, w->wmid, te_smlad(x57, w->w46, te_smlad(x24, w->w13, te_smlad(x13, w->w02, *a1))));
}

TE_INLINE void row_k7s2(const int8_t *p, const dw_wrow_t *w, int32_t *a0, int32_t *a1)
{
    const uint32_t v = te_read_u32(p), t = te_read_u32(p + 2), u = te_read_u32(p + 4), z = te_read_u32(p + 5);
    const uint32_t x02 = te_sxtb16(v), x13 = te_sxtb16_ror8(v);
    const uint32_t x24 = te_sxtb16(t), x35 = te_sxtb16_ror8(t);
    const uint32_t x46 = te_sxtb16(u), x57 = te_sxtb16_ror8(u), x68 = te_sxtb16_ror8(z);
    /* a0: p0..p6; a1: p2..p8 */
    *a0 = te_smlabb(x57, w->wmid, te_smlad(x46, w->w46, te_smlad(x13, w->w13, te_smlad(x02, w->w02, *a0))));
    *a1 = te_smlatb(x57, w->wmid, te_smlad(x68, w->w46, te_smlad(x35, w->w13, te_smlad(x24, w->w02, *a1))));
}

/* Outputs are produced in chunks: raw accumulators of up to DW_CHUNK outputs of a row into a stack
 * buffer, then one requantisation loop over them. Two short loops keep their values in registers;
 * one combined loop would spill the packed weights and the quantisation constants. */
#define DW_CHUNK 32

/* Pair loops: one noinline function per (k, s) so that its registers serve only the loop (inlined into
 * the channel function they spilled the packed weights, which were then reloaded for every pair).
 * Each computes n pairs of raw sums of one output row, pair i at p + 2 * i * s, into acc[2i], acc[2i+1]. */
#if defined(__GNUC__)
#define DW_NOINLINE __attribute__((noinline))
#else
#define DW_NOINLINE
#endif

/* Keeps the compiler from hoisting every row's loads to the top of the pass (its scheduler does, and
 * then spills them): memory accesses stay between two barriers. No instruction is emitted. */
#if defined(__GNUC__)
#define DW_ROW_BARRIER() __asm__ volatile("" ::: "memory")
#else
#define DW_ROW_BARRIER()
#endif

/* 3x3, stride 1: the row weights live in registers, w1 of rows 0 and 1 share one (lanes 0 and 1), the
 * sums start from the channel's base (bias - in_zp * sum(w));
 * per pair 3 loads, 6 SXTB16, 6 SMLAD, 6 SMLAxy for 18 MACs. */
static DW_NOINLINE void dw_pairs_k3s1(const int8_t *p, int pitch, const dw_wrow_t *wr, int32_t *acc, int n,
                                      int32_t base)
{
    const uint32_t a02 = wr[0].w02, b02 = wr[1].w02, c02 = wr[2].w02;
    const uint32_t m01 = te_pkhbt(wr[0].wmid, wr[1].wmid), m2 = wr[2].wmid;
    const int32_t *const end = acc + 2 * n;
    while (acc != end) {
        uint32_t v = te_read_u32(p);
        uint32_t x02 = te_sxtb16(v), x13 = te_sxtb16_ror8(v);
        int32_t a0 = te_smlabb(x13, m01, te_smlad(x02, a02, base));
        int32_t a1 = te_smlatb(x02, m01, te_smlad(x13, a02, base));
        DW_ROW_BARRIER();
        v = te_read_u32(p + pitch);
        x02 = te_sxtb16(v);
        x13 = te_sxtb16_ror8(v);
        a0 = te_smlabt(x13, m01, te_smlad(x02, b02, a0));
        a1 = te_smlatt(x02, m01, te_smlad(x13, b02, a1));
        DW_ROW_BARRIER();
        v = te_read_u32(p + 2 * pitch);
        x02 = te_sxtb16(v);
        x13 = te_sxtb16_ror8(v);
        acc[0] = te_smlabb(x13, m2, te_smlad(x02, c02, a0));
        acc[1] = te_smlatb(x02, m2, te_smlad(x13, c02, a1));
        acc += 2;
        p += 2;
    }
}

/* 3x3, stride 2: per pair 6 loads, 9 SXTB16, 12 MAC instructions for 18 MACs. */
static DW_NOINLINE void dw_pairs_k3s2(const int8_t *p, int pitch, const dw_wrow_t *wr, int32_t *acc, int n,
                                      int32_t base)
{
    const uint32_t a02 = wr[0].w02, b02 = wr[1].w02, c02 = wr[2].w02;
    const uint32_t m01 = te_pkhbt(wr[0].wmid, wr[1].wmid), m2 = wr[2].wmid;
    const int32_t *const end = acc + 2 * n;
    while (acc != end) {
        uint32_t v = te_read_u32(p);
        uint32_t x02 = te_sxtb16(v), x13 = te_sxtb16_ror8(v);
        int32_t a0 = te_smlabb(x13, m01, te_smlad(x02, a02, base));
        int32_t a1 = te_smlatb(x13, m01, te_smlad(te_sxtb16_ror8(te_read_u32(p + 1)), a02, base));
        DW_ROW_BARRIER();
        v = te_read_u32(p + pitch);
        x02 = te_sxtb16(v);
        x13 = te_sxtb16_ror8(v);
        a0 = te_smlabt(x13, m01, te_smlad(x02, b02, a0));
        a1 = te_smlatt(x13, m01, te_smlad(te_sxtb16_ror8(te_read_u32(p + pitch + 1)), b02, a1));
        DW_ROW_BARRIER();
        v = te_read_u32(p + 2 * pitch);
        x02 = te_sxtb16(v);
        x13 = te_sxtb16_ror8(v);
        acc[0] = te_smlabb(x13, m2, te_smlad(x02, c02, a0));
        acc[1] = te_smlatb(x13, m2, te_smlad(te_sxtb16_ror8(te_read_u32(p + 2 * pitch + 1)), c02, a1));
        acc += 2;
        p += 4;
    }
}

/* 5x5 and 7x7, stride 1: four outputs per pass (two pairs sharing their loads), the row's packed
 * weights loaded once per row for all four. Per row and four outputs, 5x5: 3 loads + 6 SXTB16 +
 * 12 MAC instructions + 2 weight loads for 20 MACs; 7x7: 4 + 8 + 16 + 2 for 28. xAB as above. */
TE_INLINE void quad_k5s1(const int8_t *p, const dw_wrow_t *w, int32_t *a)
{
    DW_ROW_BARRIER();
    const uint32_t w02 = w->w02, w13 = w->w13, wm = w->wmid;
    uint32_t v = te_read_u32(p);
    uint32_t xe = te_sxtb16(v), xo = te_sxtb16_ror8(v);  /* x02, x13 */
    a[0] = te_smlad(xo, w13, te_smlad(xe, w02, a[0]));
    a[1] = te_smlad(xo, w02, a[1]);
    v = te_read_u32(p + 2);
    xe = te_sxtb16(v);                                   /* x24 */
    xo = te_sxtb16_ror8(v);                              /* x35 */
    a[0] = te_smlatb(xe, wm, a[0]);
    a[1] = te_smlatb(xo, wm, te_smlad(xe, w13, a[1]));
    a[2] = te_smlad(xo, w13, te_smlad(xe, w02, a[2]));
    a[3] = te_smlad(xo, w02, a[3]);
    v = te_read_u32(p + 4);
    xe = te_sxtb16(v);                                   /* x46 */
    xo = te_sxtb16_ror8(v);                              /* x57 */
    a[2] = te_smlatb(xe, wm, a[2]);
    a[3] = te_smlatb(xo, wm, te_smlad(xe, w13, a[3]));
}

TE_INLINE void quad_k7s1(const int8_t *p, const dw_wrow_t *w, int32_t *a)
{
    DW_ROW_BARRIER();
    const uint32_t w02 = w->w02, w13 = w->w13, w46 = w->w46, wm = w->wmid;
    uint32_t v = te_read_u32(p);
    uint32_t x02 = te_sxtb16(v), x13 = te_sxtb16_ror8(v);
    a[0] = te_smlad(x13, w13, te_smlad(x02, w02, a[0]));
    a[1] = te_smlad(x13, w02, a[1]);
    v = te_read_u32(p + 2);
    const uint32_t x24 = te_sxtb16(v), x35 = te_sxtb16_ror8(v);
    a[1] = te_smlad(x24, w13, a[1]);
    a[2] = te_smlad(x35, w13, te_smlad(x24, w02, a[2]));
    a[3] = te_smlad(x35, w02, a[3]);
    v = te_read_u32(p + 4);
    x02 = te_sxtb16(v);     /* x46 */
    x13 = te_sxtb16_ror8(v); /* x57 */
    a[0] = te_smlabb(x13, wm, te_smlad(x02, w46, a[0]));
    a[1] = te_smlatb(x02, wm, te_smlad(x13, w46, a[1]));
    a[2] = te_smlatb(x13, wm, a[2]);
    a[3] = te_smlad(x02, w13, a[3]);
    v = te_read_u32(p + 6);
    x02 = te_sxtb16(v);     /* x68 */
    x13 = te_sxtb16_ror8(v); /* x79 */
    a[2] = te_smlad(x02, w46, a[2]);
    a[3] = te_smlatb(x02, wm, te_smlad(x13, w46, a[3]));
}

/* Stride 2: output j of the four reads p[2j .. 2j + k - 1]; the last load starts at p + 7 (5x5) or
 * p + 9 (7x7) so that no byte past output 3's last tap is read. */
TE_INLINE void quad_k5s2(const int8_t *p, const dw_wrow_t *w, int32_t *a)
{
    DW_ROW_BARRIER();
    const uint32_t w02 = w->w02, w13 = w->w13, wm = w->wmid;
    uint32_t v = te_read_u32(p);
    a[0] = te_smlad(te_sxtb16_ror8(v), w13, te_smlad(te_sxtb16(v), w02, a[0])); /* x02, x13 */
    v = te_read_u32(p + 2);
    uint32_t xe = te_sxtb16(v), xo = te_sxtb16_ror8(v);                         /* x24, x35 */
    a[0] = te_smlatb(xe, wm, a[0]);
    a[1] = te_smlad(xo, w13, te_smlad(xe, w02, a[1]));
    v = te_read_u32(p + 4);
    xe = te_sxtb16(v);                                                          /* x46 */
    xo = te_sxtb16_ror8(v);                                                     /* x57 */
    a[1] = te_smlatb(xe, wm, a[1]);
    a[2] = te_smlad(xo, w13, te_smlad(xe, w02, a[2]));
    v = te_read_u32(p + 6);
    xe = te_sxtb16(v);                                                          /* x68 */
    xo = te_sxtb16_ror8(v);                                                     /* x79 */
    a[2] = te_smlatb(xe, wm, a[2]);
    a[3] = te_smlad(xo, w13, te_smlad(xe, w02, a[3]));
    a[3] = te_smlatb(te_sxtb16_ror8(te_read_u32(p + 7)), wm, a[3]);             /* x8A: p10 */
}

TE_INLINE void quad_k7s2(const int8_t *p, const dw_wrow_t *w, int32_t *a)
{
    DW_ROW_BARRIER();
    const uint32_t w02 = w->w02, w13 = w->w13, w46 = w->w46, wm = w->wmid;
    uint32_t v = te_read_u32(p);
    a[0] = te_smlad(te_sxtb16_ror8(v), w13, te_smlad(te_sxtb16(v), w02, a[0])); /* x02, x13 */
    v = te_read_u32(p + 2);
    uint32_t xe = te_sxtb16(v), xo = te_sxtb16_ror8(v);                         /* x24, x35 */
    a[0] = te_smlatb(xo, wm, a[0]);                                             /* p5 */
    a[1] = te_smlad(xo, w13, te_smlad(xe, w02, a[1]));
    v = te_read_u32(p + 4);
    xe = te_sxtb16(v);                                                          /* x46 */
    xo = te_sxtb16_ror8(v);                                                     /* x57 */
    a[0] = te_smlad(xe, w46, a[0]);
    a[1] = te_smlatb(xo, wm, a[1]);                                             /* p7 */
    a[2] = te_smlad(xo, w13, te_smlad(xe, w02, a[2]));
    v = te_read_u32(p + 6);
    xe = te_sxtb16(v);                                                          /* x68 */
    xo = te_sxtb16_ror8(v);                                                     /* x79 */
    a[1] = te_smlad(xe, w46, a[1]);
    a[2] = te_smlatb(xo, wm, a[2]);                                             /* p9 */
    a[3] = te_smlad(xo, w13, te_smlad(xe, w02, a[3]));
    v = te_read_u32(p + 8);
    xe = te_sxtb16(v);                                                          /* x8A */
    xo = te_sxtb16_ror8(v);                                                     /* x9B */
    a[2] = te_smlad(xe, w46, a[2]);
    a[3] = te_smlatb(xo, wm, a[3]);                                             /* p11 */
    a[3] = te_smlad(te_sxtb16_ror8(te_read_u32(p + 9)), w46, a[3]);             /* xAC */
}

#define DW_QUADS_FN(NAME, QUAD, K, S)                                                               \
    static DW_NOINLINE void NAME(const int8_t *p, int pitch, const dw_wrow_t *wr, int32_t *acc, int n, \
                                 int32_t base)                                                     \
    {                                                                                              \
        for (int i = 0; i < n; i++) {                                                              \
            int32_t a[4] = {base, base, base, base};                                               \
            const int8_t *q = p;                                                                   \
            TE_UNROLL                                                                              \
            for (int r = 0; r < (K); r++) {                                                        \
                QUAD(q, &wr[r], a);                                                                \
                q += pitch;                                                                        \
            }                                                                                      \
            acc[0] = a[0];                                                                         \
            acc[1] = a[1];                                                                         \
            acc[2] = a[2];                                                                         \
            acc[3] = a[3];                                                                         \
            acc += 4;                                                                              \
            p += 4 * (S);                                                                          \
        }                                                                                          \
    }

#if defined(TE_DSP_EMULATE) || !defined(__GNUC__) || !defined(__thumb2__)
DW_QUADS_FN(dw_quads_k5s1_fast, quad_k5s1, 5, 1)
DW_QUADS_FN(dw_quads_k7s1_fast, quad_k7s1, 7, 1)
DW_QUADS_FN(dw_quads_k5s2_fast, quad_k5s2, 5, 2)
DW_QUADS_FN(dw_quads_k7s2_fast, quad_k7s2, 7, 2)
#else /* the same sums in assembly, the real DSP path (see te_dw_quads_asm.h) */
#include "te_dw_quads_asm.h"
TE_DW_QUADS_ASM_FN(dw_quads_k5s1_fast, TE_DW_ROW_K5S1, 5, 1)
TE_DW_QUADS_ASM_FN(dw_quads_k5s2_fast, TE_DW_ROW_K5S2, 5, 2)
TE_DW_QUADS_ASM_FN(dw_quads_k7s1_fast, TE_DW_ROW_K7S1, 7, 1)
TE_DW_QUADS_ASM_FN(dw_quads_k7s2_fast, TE_DW_ROW_K7S2, 7, 2)
TE_DW_ONE_ASM_FN(dw_one_k5_fast, TE_DW_ONE_K5, 5)
TE_DW_ONE_ASM_FN(dw_one_k7_fast, TE_DW_ONE_K7, 7)
#define TE_DW_ONE_FAST 1
#endif

#define DW_PAIR_LOOP(ROW, K)                                                  \
    for (; ox + 2 <= end; ox += 2) {                                          \
        int32_t a0 = base, a1 = base;                                         \
        const int8_t *p = prow + ox * s;                                      \
        TE_UNROLL                                                             \
        for (int r = 0; r < (K); r++) {                                       \
            ROW(p, &wr[r], &a0, &a1);                                         \
            p += pitch;                                                       \
        }                                                                     \
        acc[ox - ox0] = a0;                                                   \
        acc[ox - ox0 + 1] = a1;                                               \
    }

/* One output channel, 3x3, stride s in {1, 2}: the pair loops above, then the odd output and the
 * requantisation of each chunk. */
/* Small planes, stride 1 (ow <= DW_FLAT_MAX_W): the rows but the last are swept as one flat row of
 * the plane, output (oy, ox) at plane offset oy * pitch + ox, a few rows per call of the pair loop;
 * the pitch - ow = 2 outputs between two rows are computed and dropped. This saves the per-row calls
 * (and the odd output's second call) that dominate small planes. Reads stay inside the plane: a sweep
 * ends at most one output past the last real one of a row <= oh - 2, i.e. with the pair at columns
 * (ow - 1, ow), whose loads cover columns ow - 1 .. ow + 2 = pitch (column 0 of the next plane row) of
 * rows <= oh: offset <= (oh + 1) * pitch < hp * pitch (hp = oh + 2). The sweep that ends with the
 * last output row must not pass its last output: when its count is odd, the pair (0, 1) is computed
 * first and the pairs after it start at output 1, the last one ending at the last output (output 1
 * computed twice; needs ow >= 2). Each sweep's outputs are requantised by one dw_store_rows. */
#define DW_FLAT_MAX_W 24
#define DW_FLAT_ACC 130

/* dw_store_based for nr rows of ow outputs, the rows `pitch` accumulators apart (the flat sweeps). */
static void dw_store_rows(const int32_t *fa, int pitch, int nr, int ow, const dw_out_t *o, int8_t *out, int C)
{
    const size_t orow = (size_t)ow * (size_t)C;
#if !defined(TE_DSP_EMULATE)
    if (o->rq.fast && o->lo == -128 && o->hi == 127 && o->rq.em1 <= 22) { /* as in dw_store */
        const int32_t em1 = o->rq.em1, mult = o->rq.mult;
        const int32_t hz = te_add_wrap(o->rq.hpos, (int32_t)((uint32_t)o->zp << em1));
        for (int r = 0; r < nr; r++) {
            dw_store_folded(fa, ow, 0, mult, hz, em1, out, C);
            fa += pitch;
            out += orow;
        }
        return;
    }
#endif
    for (int r = 0; r < nr; r++) {
        dw_store_based(fa, ow, o, out, C);
        fa += pitch;
        out += orow;
    }
}

static DW_NOINLINE void dw_flat_k3s1(const int8_t *plane, int pitch, int oh, int ow, const dw_wrow_t *wr,
                                     const dw_out_t *o, int8_t *out, int C)
{
    int32_t fa[DW_FLAT_ACC + 2];
    const int rows_per = DW_FLAT_ACC / pitch; /* pitch = ow + 2 <= 26: >= 5 rows */
    for (int oy = 0; oy < oh; oy += rows_per) {
        const int nr = oh - oy < rows_per ? oh - oy : rows_per;
        const int count = (nr - 1) * pitch + ow; /* through the last real output */
        const int8_t *p = plane + (size_t)oy * (size_t)pitch;
        if (oy + nr < oh || !(count & 1)) {
            dw_pairs_k3s1(p, pitch, wr, fa, (count + 1) / 2, o->base);
        } else { /* the last sweep, odd count: pair (0, 1), then the pairs ending at the last output */
            dw_pairs_k3s1(p, pitch, wr, fa, 1, o->base);
            dw_pairs_k3s1(p + 1, pitch, wr, fa + 1, count / 2, o->base);
        }
        dw_store_rows(fa, pitch, nr, ow, o, out + (size_t)oy * (size_t)ow * (size_t)C, C);
    }
}

static void dw_plane_k3(const int8_t *plane, int pitch, int s, int oh, int ow, const int32_t *wk,
                        const dw_wrow_t *wr, const dw_out_t *o, int8_t *out, int C)
{
    int32_t acc[DW_CHUNK];
    for (int oy = 0; oy < oh; oy++) {
        const int8_t *prow = plane + (size_t)oy * (size_t)s * (size_t)pitch;
        int8_t *orow = out + (size_t)oy * (size_t)ow * (size_t)C;
        for (int ox0 = 0; ox0 < ow; ox0 += DW_CHUNK) {
            const int n = ow - ox0 < DW_CHUNK ? ow - ox0 : DW_CHUNK;
            if (s == 1) {
                dw_pairs_k3s1(prow + ox0, pitch, wr, acc, n / 2, o->base);
            } else {
                dw_pairs_k3s2(prow + 2 * ox0, pitch, wr, acc, n / 2, o->base);
            }
            if (n & 1) { /* odd row length: the pair ending at the last output (its first recomputed) */
                const int last = ox0 + n - 1;
                if (last > 0) {
                    int32_t t[2];
                    if (s == 1) {
                        dw_pairs_k3s1(prow + last - 1, pitch, wr, t, 1, o->base);
                    } else {
                        dw_pairs_k3s2(prow + 2 * (last - 1), pitch, wr, t, 1, o->base);
                    }
                    acc[n - 1] = t[1];
                } else {
                    acc[n - 1] = te_add_wrap(dw_one(prow, pitch, 3, 3, wk), o->base);
                }
            }
            dw_store_based(acc, n, o, orow + (size_t)ox0 * (size_t)C, C);
        }
    }
}

#if !defined(TE_DW_ONE_FAST)
/* The second output of the pair at start (5x5 / 7x7): a row's odd last output without the scalar loop;
 * its reads end at that output's last tap. */
static DW_NOINLINE int32_t dw_second(const int8_t *start, int pitch, int sel, const dw_wrow_t *wr)
{
    const int end = 2, ox0 = 0, s = sel & 1 ? 1 : 2;
    const int32_t base = 0;
    int32_t acc[2];
    int ox = 0;
    const int8_t *prow = start;
    switch (sel) {
    case 11:
        DW_PAIR_LOOP(row_k5s1, 5)
        break;
    case 12:
        DW_PAIR_LOOP(row_k5s2, 5)
        break;
    case 15:
        DW_PAIR_LOOP(row_k7s1, 7)
        break;
    default:
        DW_PAIR_LOOP(row_k7s2, 7)
        break;
    }
    (void)ox;
    return acc[1];
}
#endif

/* One output channel, k in {3, 5, 7}, stride s in {1, 2} (both directions). */
static void dw_plane_dsp(const int8_t *plane, int pitch, int k, int s, int oh, int ow, const int32_t *wk,
                         const dw_out_t *o, int8_t *out, int C)
{
    dw_wrow_t wr[7];
    int32_t acc[DW_CHUNK];
    pack_rows(wk, k, wr);
    if (k == 3) {
        if (s == 1 && ow <= DW_FLAT_MAX_W && ow >= 2) { /* the whole plane in flat sweeps */
            dw_flat_k3s1(plane, pitch, oh, ow, wr, o, out, C);
            return;
        }
        dw_plane_k3(plane, pitch, s, oh, ow, wk, wr, o, out, C);
        return;
    }
    const int sel = k * 2 + s; /* 11, 12, 15, 16 */
    const int32_t base = o->base; /* the sums start from the channel's base: dw_store_based below */
    for (int oy = 0; oy < oh; oy++) {
        const int8_t *prow = plane + (size_t)oy * (size_t)s * (size_t)pitch;
        int8_t *orow = out + (size_t)oy * (size_t)ow * (size_t)C;
        for (int ox0 = 0; ox0 < ow; ox0 += DW_CHUNK) {
            const int end = ow - ox0 < DW_CHUNK ? ow : ox0 + DW_CHUNK;
            int ox = ox0;
            if (end - ox0 >= 4) { /* quads first, the pair loop below takes the rest */
                int nq = (end - ox0) / 4;
                const int8_t *p = prow + ox0 * s;
                int32_t *a = acc;
                if ((end - ox0) % 4 == 3) { /* three left: one more quad, the one ending at the last output
                                             * (its first output recomputed, the same sum): cheaper than
                                             * a pair and an odd one */
                    if (sel == 11) {
                        dw_quads_k5s1_fast(prow + (end - 4) * s, pitch, wr, acc + (end - 4 - ox0), 1, base);
                    } else if (sel == 12) {
                        dw_quads_k5s2_fast(prow + (end - 4) * s, pitch, wr, acc + (end - 4 - ox0), 1, base);
                    } else if (sel == 15) {
                        dw_quads_k7s1_fast(prow + (end - 4) * s, pitch, wr, acc + (end - 4 - ox0), 1, base);
                    } else {
                        dw_quads_k7s2_fast(prow + (end - 4) * s, pitch, wr, acc + (end - 4 - ox0), 1, base);
                    }
                }
                if (sel == 11) {
                    dw_quads_k5s1_fast(p, pitch, wr, a, nq, base);
                } else if (sel == 12) {
                    dw_quads_k5s2_fast(p, pitch, wr, a, nq, base);
                } else if (sel == 15) {
                    dw_quads_k7s1_fast(p, pitch, wr, a, nq, base);
                } else {
                    dw_quads_k7s2_fast(p, pitch, wr, a, nq, base);
                }
                ox = (end - ox0) % 4 == 3 ? end : ox0 + 4 * nq;
            }
            switch (sel) {
            case 11:
                DW_PAIR_LOOP(row_k5s1, 5)
                break;
            case 12:
                DW_PAIR_LOOP(row_k5s2, 5)
                break;
            case 15:
                DW_PAIR_LOOP(row_k7s1, 7)
                break;
            default:
                DW_PAIR_LOOP(row_k7s2, 7)
                break;
            }
            if (ox < end) {
#if defined(TE_DW_ONE_FAST) /* odd row length: the last output on its own (assembly, any stride) */
                acc[ox - ox0] = k == 5 ? dw_one_k5_fast(prow + ox * s, pitch, wr, base)
                                       : dw_one_k7_fast(prow + ox * s, pitch, wr, base);
#else /* odd row length: the pair ending at the last output (its first recomputed) */
                acc[ox - ox0] = te_add_wrap(ox > 0 ? dw_second(prow + (ox - 1) * s, pitch, sel, wr)
                                                   : dw_one(prow, pitch, k, k, wk), base);
#endif
            }
            dw_store_based(acc, end - ox0, o, orow + (size_t)ox0 * (size_t)C, C);
        }
    }
}

#endif /* TE_USE_DSP */

/* Portable: k x k kernel (k constant after inlining), stride s, two outputs per pass sharing the
 * loads of their overlapping taps; chunked like the DSP path. */
static inline void dw_plane_portable_k(const int8_t *plane, int pitch, int k, int sh, int sw, int oh, int ow,
                                       const int32_t *wk, const dw_out_t *o, int8_t *out, int C)
{
    int32_t acc[32];
    for (int oy = 0; oy < oh; oy++) {
        const int8_t *prow = plane + (size_t)oy * (size_t)sh * (size_t)pitch;
        int8_t *orow = out + (size_t)oy * (size_t)ow * (size_t)C;
        for (int ox0 = 0; ox0 < ow; ox0 += 32) {
            const int end = ow - ox0 < 32 ? ow : ox0 + 32;
            int ox = ox0;
            for (; ox + 2 <= end; ox += 2) {
                int32_t a0 = 0, a1 = 0;
                const int8_t *p = prow + ox * sw;
                const int32_t *w = wk;
                for (int r = 0; r < k; r++) {
                    TE_UNROLL
                    for (int j = 0; j < k; j++) {
                        a0 += w[j] * p[j];
                        a1 += w[j] * p[j + sw];
                    }
                    p += pitch;
                    w += k;
                }
                acc[ox - ox0] = a0;
                acc[ox - ox0 + 1] = a1;
            }
            if (ox < end) {
                acc[ox - ox0] = dw_one(prow + ox * sw, pitch, k, k, wk);
            }
            dw_store(acc, end - ox0, o, orow + (size_t)ox0 * (size_t)C, C);
        }
    }
}

/* Any kernel: one output at a time. */
static void dw_plane_generic(const int8_t *plane, int pitch, int kh, int kw, int sh, int sw, int oh, int ow,
                             const int32_t *wk, const dw_out_t *o, int8_t *out, int C)
{
    for (int oy = 0; oy < oh; oy++) {
        for (int ox = 0; ox < ow; ox++) {
            const int8_t *p = plane + (size_t)oy * (size_t)sh * (size_t)pitch + ox * sw;
            out[((size_t)oy * (size_t)ow + (size_t)ox) * (size_t)C] = dw_requant(o, dw_one(p, pitch, kh, kw, wk));
        }
    }
}

/* Largest kernel whose weights the plane path keeps on the stack (larger ones: te_depthwise_s8's
 * arithmetic through a strided weight pointer is not needed; dw_plane handles them in chunks). */
#define TE_DW_MAX_TAPS 49

/* Output channel c from its padded plane (row pitch `pitch`). Every read stays inside the plane:
 * a pass over the output pair (ox, ox + 1) reads bytes ox * s .. (ox + 1) * s + k - 1 of a row. */
static void dw_plane(const int8_t *plane, int pitch, const te_conv_geom_t *g, const int8_t *w, int c,
                     int C, const int32_t *bias, const te_quant_t *q, int8_t *out)
{
    const int kh = g->k_h, kw = g->k_w, sh = g->stride_h, sw = g->stride_w, oh = g->out_h, ow = g->out_w;
    const int taps = kh * kw;
    int32_t wk[TE_DW_MAX_TAPS];
    int32_t wsum = 0;
    for (int t = 0; t < taps; t++) {
        wk[t] = w[(size_t)t * (size_t)C + (size_t)c];
        wsum += wk[t];
    }
    const dw_out_t o = dw_out_make(bias, q, c, wsum);
    const int square = kh == kw && (kh == 3 || kh == 5 || kh == 7);
#if defined(TE_USE_DSP)
    if (square && sh == sw && (sh == 1 || sh == 2)) {
        dw_plane_dsp(plane, pitch, kh, sh, oh, ow, wk, &o, out, C);
        return;
    }
#endif
    if (square && kh == 3) {
        dw_plane_portable_k(plane, pitch, 3, sh, sw, oh, ow, wk, &o, out, C);
    } else if (square && kh == 5) {
        dw_plane_portable_k(plane, pitch, 5, sh, sw, oh, ow, wk, &o, out, C);
    } else if (square && kh == 7) {
        dw_plane_portable_k(plane, pitch, 7, sh, sw, oh, ow, wk, &o, out, C);
    } else {
        dw_plane_generic(plane, pitch, kh, kw, sh, sw, oh, ow, wk, &o, out, C);
    }
}

/* Kernels with more taps than TE_DW_MAX_TAPS: weights read with stride C. */
static void dw_plane_large(const int8_t *plane, int pitch, const te_conv_geom_t *g, const int8_t *w, int c, int C,
                           const int32_t *bias, const te_quant_t *q, int8_t *out)
{
    const int kh = g->k_h, kw = g->k_w;
    int32_t wsum = 0;
    for (int t = 0; t < kh * kw; t++) {
        wsum += w[(size_t)t * (size_t)C + (size_t)c];
    }
    const dw_out_t o = dw_out_make(bias, q, c, wsum);
    for (int oy = 0; oy < g->out_h; oy++) {
        for (int ox = 0; ox < g->out_w; ox++) {
            const int8_t *p = plane + (size_t)oy * (size_t)g->stride_h * (size_t)pitch + ox * g->stride_w;
            int32_t acc = 0;
            for (int ky = 0; ky < kh; ky++) {
                for (int kx = 0; kx < kw; kx++) {
                    acc += w[(size_t)(ky * kw + kx) * (size_t)C + (size_t)c] * p[kx];
                }
                p += pitch;
            }
            out[((size_t)oy * (size_t)g->out_w + (size_t)ox) * (size_t)C] = dw_requant(&o, acc);
        }
    }
}

void te_depthwise_inplace_s8(int8_t *inout, const te_conv_geom_t *g, const int8_t *w, const int32_t *bias,
                             const te_quant_t *q, int8_t *scratch)
{
    TE_SPEC_DEPTHWISE(g, q); /* a per-layer copy's constants (codegen/specialize.py) */
    const int C = g->in_c, in_h = g->in_h, in_w = g->in_w, kh = g->k_h, kw = g->k_w;
    const int pt = g->pad_top, pl = g->pad_left;
    /* the plane covers exactly the rows/columns some output tap reads (<= the planned size) */
    const int hp = (g->out_h - 1) * g->stride_h + kh;
    const int wp = (g->out_w - 1) * g->stride_w + kw;
    const int8_t pad = (int8_t)q->in_zp;
    /* plane columns [x0, x1) hold input columns [x0 - pl, x1 - pl); rows [y0, y1) input rows */
    const int x0 = pl < wp ? pl : wp;
    const int x1 = pl + in_w < wp ? pl + in_w : wp;
    const int y0 = pt < hp ? pt : hp;
    const int y1 = pt + in_h < hp ? pt + in_h : hp;

    /* The padding border is the same for every channel: write it once. */
    memset(scratch, pad, (size_t)y0 * (size_t)wp);
    memset(scratch + (size_t)y1 * (size_t)wp, pad, (size_t)(hp - y1) * (size_t)wp);
    for (int r = y0; r < y1; r++) {
        int8_t *row = scratch + (size_t)r * (size_t)wp;
        memset(row, pad, (size_t)x0);
        memset(row + x1, pad, (size_t)(wp - x1));
    }
    for (int c = 0; c < C; c++) {
        /* 1. channel c -> interior of the plane (a strided gather) */
        const int n = x1 - x0;
        for (int r = y0; r < y1; r++) {
            int8_t *restrict dst = scratch + (size_t)r * (size_t)wp + x0;
            const int8_t *restrict src =
                inout + ((size_t)(r - pt) * (size_t)in_w + (size_t)(x0 - pl)) * (size_t)C + (size_t)c;
            int x = 0;
            for (; x + 4 <= n; x += 4) {
                dst[x] = src[0];
                dst[x + 1] = src[C];
                dst[x + 2] = src[2 * C];
                dst[x + 3] = src[3 * C];
                src += 4 * C;
            }
            for (; x < n; x++) {
                dst[x] = *src;
                src += C;
            }
        }
        /* 2. output channel c -> compact NHWC slots of channel c */
        if (kh * kw <= TE_DW_MAX_TAPS) {
            dw_plane(scratch, wp, g, w, c, C, bias, q, inout + c);
        } else {
            dw_plane_large(scratch, wp, g, w, c, C, bias, q, inout + c);
        }
    }
}

/* ------------------------------------------------------------------------------------------------
 * Out of place (te_depthwise_s8): reads the NHWC input directly, no scratch, no padded copy.
 *
 * Channels are taken in groups of four (one 32-bit load of input bytes c..c+3 per tap). The group's
 * weights are widened once into a small stack table (DSP: per tap (w_c, w_c+2) and (w_c+1, w_c+3) as
 * int16 pairs, the order SXTAB16 / SXTAB16 ROR 8 give the inputs in). Per tap: 1 load, 2 SXTAB16
 * (x - in_zp in 16-bit lanes, |x - in_zp| <= 255) and 4 SMLAxy, one per channel. Windows entirely
 * inside the input (the interior, found once per row and per layer) run a loop whose kernel size is a
 * compile-time constant for 3x3, 5x5 and 7x7 (fully unrolled, weights at fixed stack offsets); border
 * windows accumulate only their taps inside the input (a padded tap would add w * 0). The raw sums of
 * up to DW_CHUNK pixels of a row are requantised per channel by dw_store (constants in registers).
 * Channels left over (C % 4) and, on the portable path, every group use the scalar loop.
 * --------------------------------------------------------------------------------------------- */
#define DW_OOP_TAPS 49

/* Window of output (oy, ox): taps [ky0, ky1) x [kx0, kx1) fall inside the input. */
typedef struct {
    int ky0, ky1, kx0, kx1, iy0, ix0;
} dw_win_t;

TE_INLINE void dw_clip(int o, int s, int pad, int k, int n, int *i0, int *k0, int *k1)
{
    *i0 = o * s - pad;
    *k0 = *i0 < 0 ? -*i0 : 0;
    *k1 = *i0 + k > n ? n - *i0 : k;
}

/* Scalar sums of n <= 4 channels (any window): wk[t * 4 + j] is tap t of channel c + j. */
static void dw_sums_scalar(const int8_t *in, const te_conv_geom_t *g, const int8_t *wk, int c, int n, int32_t zp,
                           const dw_win_t *v, int32_t *a)
{
    const int C = g->in_c, in_w = g->in_w, kw = g->k_w;
    for (int j = 0; j < n; j++) {
        int32_t s = 0;
        for (int ky = v->ky0; ky < v->ky1; ky++) {
            const int8_t *xp = in + ((size_t)(v->iy0 + ky) * (size_t)in_w + (size_t)(v->ix0 + v->kx0)) * (size_t)C +
                               (size_t)(c + j);
            const int8_t *wq = wk + (ky * kw + v->kx0) * 4 + j;
            for (int kx = v->kx0; kx < v->kx1; kx++) {
                s += *wq * (*xp - zp);
                xp += C;
                wq += 4;
            }
        }
        a[j] = s;
    }
}

#if defined(TE_USE_DSP)
/* Four channels, taps [0, ny) x [0, nx) from x (the first valid tap); wp the pairs of the first tap,
 * pitch 2 * kw words per kernel row. One tap: LDR, 2 SXTAB16, 2 LDR (weights), 4 SMLAxy. */
#define DW4_TAP(XP, WQ)                                                     \
    do {                                                                    \
        const uint32_t v_ = te_read_u32(XP);                                \
        const uint32_t x02_ = te_sxtab16(off, v_), x13_ = te_sxtab16_ror8(off, v_); \
        const uint32_t w02_ = (WQ)[0], w13_ = (WQ)[1];                      \
        a0 = te_smlabb(x02_, w02_, a0);                                     \
        a2 = te_smlatt(x02_, w02_, a2);                                     \
        a1 = te_smlabb(x13_, w13_, a1);                                     \
        a3 = te_smlatt(x13_, w13_, a3);                                     \
    } while (0)

static void dw4_sums(const int8_t *x, size_t rs, int C, const uint32_t *wp, int kw, int ny, int nx, uint32_t off,
                     int32_t *a)
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (int ky = 0; ky < ny; ky++) {
        const int8_t *xp = x + (size_t)ky * rs;
        const uint32_t *wq = wp + 2 * ky * kw;
        for (int kx = 0; kx < nx; kx++) {
            DW4_TAP(xp, wq);
            xp += C;
            wq += 2;
        }
    }
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    a[3] = a3;
}

/* Interior windows of one row, kernel K x K (a constant in each instance below: the taps of a kernel
 * row are unrolled, the weights read at fixed offsets): raw sums of outputs [0, n) starting at x, the
 * first tap of the first window, the windows `step` bytes apart; acc[j * 32 + i] is channel j of output i.
 * Two outputs and two channels per pass (channels c, c+2 from SXTAB16, then c+1, c+3 from SXTAB16
 * ROR 8): per tap 2 loads, 2 SXTAB16, 1 weight load and 4 SMLAxy, few enough live values for the
 * registers. Kept out of line so that the register allocator sees only this loop. */
#if defined(__GNUC__)
#define TE_NOINLINE __attribute__((noinline))
#else
#define TE_NOINLINE
#endif
#define DW4_HALF(K, EXT, H)                                                                            \
    do {                                                                                               \
        int32_t a0 = 0, a2 = 0, b0 = 0, b2 = 0;                                                        \
        const int8_t *xr = x;                                                                          \
        const uint32_t *wq = wp + (H);                                                                 \
        for (int ky = 0; ky < (K); ky++) {                                                             \
            const int8_t *xp = xr;                                                                     \
            TE_UNROLL                                                                                  \
            for (int kx = 0; kx < (K); kx++) {                                                         \
                const uint32_t wv = wq[2 * kx];                                                        \
                const uint32_t p_ = EXT(off, te_read_u32(xp)), q_ = EXT(off, te_read_u32(xp + step));  \
                a0 = te_smlabb(p_, wv, a0);                                                            \
                a2 = te_smlatt(p_, wv, a2);                                                            \
                b0 = te_smlabb(q_, wv, b0);                                                            \
                b2 = te_smlatt(q_, wv, b2);                                                            \
                xp += C;                                                                               \
            }                                                                                          \
            xr += rs;                                                                                  \
            wq += 2 * (K);                                                                             \
        }                                                                                              \
        acc[(H) * 32 + i] = a0;                                                                        \
        acc[(H) * 32 + i + 1] = b0;                                                                    \
        acc[(H + 2) * 32 + i] = a2;                                                                    \
        acc[(H + 2) * 32 + i + 1] = b2;                                                                \
    } while (0)

#define DW4_INTERIOR(NAME, K)                                                                          \
    static TE_NOINLINE void NAME(const int8_t *x, size_t rs, int C, int step, const uint32_t *wp, uint32_t off, \
                                 int n, int32_t *acc)                                                  \
    {                                                                                                  \
        int i = 0;                                                                                     \
        for (; i + 2 <= n; i += 2) {                                                                   \
            DW4_HALF(K, te_sxtab16, 0);                                                                \
            DW4_HALF(K, te_sxtab16_ror8, 1);                                                           \
            x += 2 * step;                                                                             \
        }                                                                                              \
        if (i < n) {                                                                                   \
            int32_t a[4];                                                                              \
            dw4_sums(x, rs, C, wp, K, K, K, off, a);                                                   \
            acc[i] = a[0];                                                                             \
            acc[32 + i] = a[1];                                                                        \
            acc[64 + i] = a[2];                                                                        \
            acc[96 + i] = a[3];                                                                        \
        }                                                                                              \
    }
DW4_INTERIOR(dw4_interior_k3, 3)
DW4_INTERIOR(dw4_interior_k5, 5)
DW4_INTERIOR(dw4_interior_k7, 7)
#endif /* TE_USE_DSP */

void te_depthwise_s8(const int8_t *in, const te_conv_geom_t *g, const int8_t *w, const int32_t *bias,
                     const te_quant_t *q, int8_t *out)
{
    TE_SPEC_DEPTHWISE(g, q); /* a per-layer copy's constants (codegen/specialize.py) */
    const int C = g->in_c, in_h = g->in_h, in_w = g->in_w, kh = g->k_h, kw = g->k_w;
    const int oh = g->out_h, ow = g->out_w, sh = g->stride_h, sw = g->stride_w;
    const int taps = kh * kw;
    const int32_t zp = q->in_zp;
    if (taps > DW_OOP_TAPS) { /* large kernels: one channel at a time, weights read in place */
        for (int c = 0; c < C; c++) {
            dw_out_t o = dw_out_make(bias, q, c, 0);
            for (int oy = 0; oy < oh; oy++) {
                for (int ox = 0; ox < ow; ox++) {
                    dw_win_t v;
                    dw_clip(oy, sh, g->pad_top, kh, in_h, &v.iy0, &v.ky0, &v.ky1);
                    dw_clip(ox, sw, g->pad_left, kw, in_w, &v.ix0, &v.kx0, &v.kx1);
                    int32_t s = 0;
                    for (int ky = v.ky0; ky < v.ky1; ky++) {
                        for (int kx = v.kx0; kx < v.kx1; kx++) {
                            s += w[(size_t)(ky * kw + kx) * (size_t)C + (size_t)c] *
                                 (in[((size_t)(v.iy0 + ky) * (size_t)in_w + (size_t)(v.ix0 + kx)) * (size_t)C +
                                     (size_t)c] - zp);
                        }
                    }
                    out[((size_t)oy * (size_t)ow + (size_t)ox) * (size_t)C + (size_t)c] = dw_requant(&o, s);
                }
            }
        }
        return;
    }
    /* interior columns: windows [ox_lo, ox_hi) lie inside the input horizontally */
    int ox_lo = (g->pad_left + sw - 1) / sw;
    int ox_hi = in_w + g->pad_left - kw < 0 ? 0 : (in_w + g->pad_left - kw) / sw + 1;
    ox_hi = ox_hi > ow ? ow : ox_hi;
    ox_lo = ox_lo > ox_hi ? ox_hi : ox_lo;
    int32_t acc[4][32];
    int8_t wk[DW_OOP_TAPS * 4]; /* the group's weights, tap-major (the stack stays near 1 KiB) */
#if defined(TE_USE_DSP)
    uint32_t wp[DW_OOP_TAPS * 2];
    const uint32_t off = te_dup16(-zp);
    const size_t rs = (size_t)in_w * (size_t)C;
    const int sq = kh == kw && (kh == 3 || kh == 5 || kh == 7);
#endif
    for (int c = 0; c < C; c += 4) {
        const int n = C - c < 4 ? C - c : 4;
        dw_out_t o[4];
        for (int j = 0; j < n; j++) {
            o[j] = dw_out_make(bias, q, c + j, 0);
        }
        for (int t = 0; t < taps; t++) {
            for (int j = 0; j < n; j++) {
                wk[t * 4 + j] = w[(size_t)t * (size_t)C + (size_t)(c + j)];
            }
        }
#if defined(TE_USE_DSP)
        if (n == 4) {
            for (int t = 0; t < taps; t++) {
                wp[2 * t] = te_pkhbt((uint32_t)(int32_t)wk[t * 4], (uint32_t)(int32_t)wk[t * 4 + 2]);
                wp[2 * t + 1] = te_pkhbt((uint32_t)(int32_t)wk[t * 4 + 1], (uint32_t)(int32_t)wk[t * 4 + 3]);
            }
        }
#endif
        for (int oy = 0; oy < oh; oy++) {
            dw_win_t v;
            dw_clip(oy, sh, g->pad_top, kh, in_h, &v.iy0, &v.ky0, &v.ky1);
#if defined(TE_USE_DSP)
            const int row_in = v.ky0 == 0 && v.ky1 == kh;
#endif
            int8_t *orow = out + (size_t)oy * (size_t)ow * (size_t)C + (size_t)c;
            for (int ox0 = 0; ox0 < ow; ox0 += 32) {
                const int end = ow - ox0 < 32 ? ow : ox0 + 32;
                int ox = ox0;
                while (ox < end) {
#if defined(TE_USE_DSP)
                    if (n == 4 && row_in && sq && ox >= ox_lo && ox < ox_hi) {
                        const int e = ox_hi < end ? ox_hi : end;
                        const int8_t *x = in + (size_t)v.iy0 * rs + (size_t)(ox * sw - g->pad_left) * (size_t)C +
                                          (size_t)c;
                        const int step = sw * C;
                        if (kh == 3) {
                            dw4_interior_k3(x, rs, C, step, wp, off, e - ox, &acc[0][ox - ox0]);
                        } else if (kh == 5) {
                            dw4_interior_k5(x, rs, C, step, wp, off, e - ox, &acc[0][ox - ox0]);
                        } else {
                            dw4_interior_k7(x, rs, C, step, wp, off, e - ox, &acc[0][ox - ox0]);
                        }
                        ox = e;
                        continue;
                    }
#endif
                    dw_clip(ox, sw, g->pad_left, kw, in_w, &v.ix0, &v.kx0, &v.kx1);
                    int32_t a[4] = {0, 0, 0, 0};
                    if (v.ky0 < v.ky1 && v.kx0 < v.kx1) {
#if defined(TE_USE_DSP)
                        if (n == 4) {
                            const int8_t *x = in + ((size_t)(v.iy0 + v.ky0) * (size_t)in_w +
                                                    (size_t)(v.ix0 + v.kx0)) * (size_t)C + (size_t)c;
                            dw4_sums(x, rs, C, wp + 2 * (v.ky0 * kw + v.kx0), kw, v.ky1 - v.ky0, v.kx1 - v.kx0, off,
                                     a);
                        } else
#endif
                        {
                            dw_sums_scalar(in, g, wk, c, n, zp, &v, a);
                        }
                    }
                    for (int j = 0; j < n; j++) {
                        acc[j][ox - ox0] = a[j];
                    }
                    ox++;
                }
                for (int j = 0; j < n; j++) {
                    dw_store(acc[j], end - ox0, &o[j], orow + (size_t)ox0 * (size_t)C + (size_t)j, C);
                }
            }
        }
    }
}
