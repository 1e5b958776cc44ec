/*
 * TinyEngine int8 kernel library: the C side of tinyengine's graph IR.
 *
 * Numerics: bit-exact with the NumPy reference (tinyengine/numerics/kernels_ref.py, tinyengine/numerics/requant.py),
 * i.e. TFLite Micro's reference kernels with double-rounding requantisation:
 *   acc  = bias[c] + sum(w * (x - in_zp))            (padded taps contribute 0)
 *   out  = RDBPOT(SRDHM(acc << max(shift,0), mult[c]), max(-shift,0)) + out_zp, clamped to
 *          [act_min, act_max].
 * Layouts: activations NHWC (batch 1: H x W x C, C fastest); conv weights OHWI; depthwise weights
 * (kH, kW, C); fully-connected weights (out, in). Padding is (top, left) explicit; the kernels treat
 * any tap outside the input as padding, so bottom/right follow from out_h/out_w.
 * No malloc, no float. Every kernel that needs working memory takes a scratch pointer whose size is
 * given by the te_*_scratch_bytes() function next to it (the memory planner uses the same formulas:
 * tinyengine/kernels/registry.py, one KernelSpec per kernel).
 * With -DTE_USE_DSP (set automatically for __ARM_FEATURE_DSP) the Cortex-M SIMD paths are used
 * (SXTB16/SMLAD); the results are identical. -DTE_NO_DSP forces the portable path on a DSP core;
 * -DTE_USE_DSP -DTE_DSP_EMULATE runs the SIMD path on a host with C models of the instructions.
 * Requantisation parameters: mult in [0, INT32_MAX], shift in [-31, 30] (QuantizeMultiplier's range);
 * a NULL bias means zeros. Implementation: firmware/src (see firmware/README.md).
 */
#ifndef TINYENGINE_H
#define TINYENGINE_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Requantisation parameters of one op: per-output-channel int32 multiplier and shift. */
typedef struct {
    const int32_t *mult;
    const int32_t *shift;
    int32_t in_zp;     /* zero point of the (first) input */
    int32_t out_zp;
    int32_t act_min;   /* fused ReLU/ReLU6 clamp, in the output's int8 domain */
    int32_t act_max;
} te_quant_t;

/* Geometry of a convolution on an H x W x C NHWC input. */
typedef struct {
    int16_t in_h, in_w, in_c;
    int16_t out_h, out_w, out_c;
    int8_t k_h, k_w, stride_h, stride_w, pad_top, pad_left;
} te_conv_geom_t;

/* Single requantisation step (exposed for tests). */
int32_t te_requantize(int32_t acc, int32_t mult, int32_t shift);

/* 1x1 convolution, stride 1, no padding: n_pixels x in_c -> n_pixels x out_c.
 * Scratch: te_pointwise_scratch_bytes(in_c) = 2 * in_c * sizeof(int16_t). */
size_t te_pointwise_scratch_bytes(int in_c);
void te_conv_pointwise_s8(const int8_t *in, int n_pixels, int in_c, const int8_t *w, const int32_t *bias,
                          int out_c, const te_quant_t *q, int8_t *out, int16_t *scratch);

/* te_conv_pointwise_s8 with int16 weights pre-widened in flash (te_pointwise_w16.c; `tinyengine gen
 * --pw-weights`): in_c a multiple of 4; per pair of output channels (2c, 2c+1) and group of four input
 * channels k = 4g..4g+3 the words (a0 | a2 << 16), (a1 | a3 << 16), (b0 | b2 << 16), (b1 | b3 << 16)
 * (lanes as int16), an odd last channel 2 words a group. Same scratch as te_conv_pointwise_s8.
 * Returns 0, or -1 (nothing written) when in_c is not a positive multiple of 4. */
int te_conv_pointwise_w16_s8(const int8_t *in, int n_pixels, int in_c, const int32_t *w, const int32_t *bias,
                             int out_c, const te_quant_t *q, int8_t *out, int16_t *scratch);

/* General k_h x k_w convolution (stem, k>1 regular convs, strided 1x1) via im2col + GEMM.
 * Scratch: te_im2col_scratch_bytes(k_h, k_w, in_c) = 2 * k_h * k_w * in_c * sizeof(int16_t). */
size_t te_im2col_scratch_bytes(int k_h, int k_w, int in_c);
void te_conv_im2col_s8(const int8_t *in, const te_conv_geom_t *g, const int8_t *w, const int32_t *bias,
                       const te_quant_t *q, int8_t *out, int16_t *scratch);

/* The stem (te_stem.c): a k_h x k_w convolution of an input with 1..TE_STEM_MAX_IN_C channels, any
 * stride and padding, as im2col + 2 x 2 tiles with the reduction padded to Kp = te_stem_k(k_h, k_w, in_c)
 * (K = k_h * k_w * in_c rounded up to a multiple of 4; Kp <= TE_STEM_MAX_K). Weights: per output
 * channel Kp / 2 words, OHWI order zero-padded to Kp and widened to int16, each group of four k as the
 * words (w0 | w2 << 16) and (w1 | w3 << 16) (codegen/stem.py). Scratch: te_stem_scratch_bytes(k_h, k_w,
 * in_c) = 2 * Kp * sizeof(int16_t), int32-aligned. Returns 0, or -1 (nothing written) for in_c or Kp
 * over the limits. Bit-exact with te_conv_im2col_s8. */
#define TE_STEM_MAX_IN_C 4
#define TE_STEM_MAX_K 196
int te_stem_k(int k_h, int k_w, int in_c);
size_t te_stem_scratch_bytes(int k_h, int k_w, int in_c);
int te_conv_stem_s8(const int8_t *in, const te_conv_geom_t *g, const int32_t *w, const int32_t *bias,
                    const te_quant_t *q, int8_t *out, int16_t *scratch);

/* Winograd F(2x2, 3x3) for 3x3 stride-1 regular convs, computed in int32 and requantised once:
 * bit-exact with te_conv_im2col_s8. Weights are pre-transformed by codegen (see
 * codegen/winograd.py, or te_winograd3x3_weights below) into int32 U = G g G^T scaled by 4 (kept
 * integer): layout (out_c, 4, 4, in_c). U must come from int8 weights (|U| <= 1152: the DSP path
 * multiplies the low halfword of each U word).
 * Scratch: te_winograd_scratch_bytes(in_c) = 16 * in_c * sizeof(int16_t) (the transformed input tile,
 * stored as int16 in the int32-aligned scratch; fits in the planner's 3x3 im2col reservation).
 * Returns 0, or -1 (nothing written) unless k = 3x3, stride 1 and 1 <= in_c <= TE_WINOGRAD_MAX_IN_C,
 * the largest in_c for which the int32 arithmetic cannot overflow (derivation in te_winograd.c). */
#define TE_WINOGRAD_MAX_IN_C 1827
size_t te_winograd_scratch_bytes(int in_c);
int te_conv_winograd3x3_s8(const int8_t *in, const te_conv_geom_t *g, const int32_t *u, const int32_t *bias,
                           const te_quant_t *q, int8_t *out, int32_t *scratch);
/* Weight pre-transform: w OHWI (out_c, 3, 3, in_c) int8 -> u (out_c, 4, 4, in_c) int32,
 * u[o][i][j][c] = sum_{y,x} G'[i][y] w[o][y][x][c] G'[j][x], G' = [[2,0,0],[1,1,1],[1,-1,1],[0,0,2]]. */
void te_winograd3x3_weights(const int8_t *w, int out_c, int in_c, int32_t *u);

/* Depthwise k_h x k_w convolution (depth multiplier 1).
 * In place: `inout` holds the H x W x C input and receives the out_h x out_w x C output (NHWC,
 * compact, from the start of the buffer); each channel is first copied into `scratch`, a padded
 * (in_h + pad_top + pad_bottom) x (in_w + pad_left + pad_right) int8 plane, so the scratch size is
 * te_depthwise_scratch_bytes(...). In place requires out_h * out_w <= in_h * in_w (the buffer keeps the
 * input's size). Out of place: te_depthwise_s8 reads `in`, writes `out`, no scratch. */
size_t te_depthwise_scratch_bytes(int in_h, int in_w, int pad_top, int pad_bottom, int pad_left, int pad_right);
void te_depthwise_inplace_s8(int8_t *inout, const te_conv_geom_t *g, const int8_t *w, const int32_t *bias,
                             const te_quant_t *q, int8_t *scratch);
void te_depthwise_s8(const int8_t *in, const te_conv_geom_t *g, const int8_t *w, const int32_t *bias,
                     const te_quant_t *q, int8_t *out);

/* Elementwise add with requantisation (TFLM int8 ADD: left shift 20, two input multipliers and one
 * output multiplier, each "smaller than one": shift <= 0). `out` may alias `a` or `b`. */
typedef struct {
    int32_t a_zp, b_zp, out_zp;
    int32_t a_mult, a_shift, b_mult, b_shift, out_mult, out_shift;
    int32_t left_shift;
    int32_t act_min, act_max;
} te_add_params_t;
void te_add_s8(const int8_t *a, const int8_t *b, int n, const te_add_params_t *p, int8_t *out);

/* Pointwise convolution fused with the residual ADD after it (te_pointwise_add.c, te_pointwise.c):
 * out = te_add_s8(te_conv_pointwise_s8(in, ...), res) byte for byte, with the ADD's input a the
 * projection's output (p->a_zp its zero point, q->out_zp) and b the residual `res` (n_pixels x out_c);
 * the projection's output is never stored. `out` may be `res` exactly (each element read before it is
 * written); `in` must not overlap `out`. Scratch: te_pointwise_add_scratch_bytes(in_c, out_c) =
 * 2 * in_c * sizeof(int16_t) + 256 * sizeof(int32_t) + 2 * out_c, int32-aligned. */
size_t te_pointwise_add_scratch_bytes(int in_c, int out_c);
void te_conv_pointwise_add_s8(const int8_t *in, int n_pixels, int in_c, const int8_t *w, const int32_t *bias,
                              int out_c, const te_quant_t *q, const int8_t *res, const te_add_params_t *p,
                              int8_t *out, int16_t *scratch);

/* Average pooling (TFLM AVERAGE_POOL_2D: sum of valid taps / count, rounded half away from zero;
 * input and output share scale and zero point). Global pooling = kernel H x W, stride 1, no pad. */
void te_avg_pool_s8(const int8_t *in, int in_h, int in_w, int c, int k_h, int k_w, int stride_h,
                    int stride_w, int pad_top, int pad_left, int out_h, int out_w, int32_t act_min,
                    int32_t act_max, int8_t *out);

/* Fully connected: in (in_n) -> out (out_n), weights (out_n, in_n), per-channel requant. */
void te_fully_connected_s8(const int8_t *in, int in_n, const int8_t *w, const int32_t *bias, int out_n,
                           const te_quant_t *q, int8_t *out);

/* Ops of imported .tflite models (te_pool_softmax.c; TFLite Micro's int8 arithmetic).
 * Max pooling (MAX_POOL_2D): the largest tap inside the input (padding ignored), clamped to
 * [act_min, act_max]; input and output share scale and zero point. */
void te_max_pool_s8(const int8_t *in, int in_h, int in_w, int c, int k_h, int k_w, int stride_h,
                    int stride_w, int pad_top, int pad_left, int out_h, int out_w, int32_t act_min,
                    int32_t act_max, int8_t *out);
/* MEAN over H and W (QuantizedMeanOrSum): n_pixels x c -> c; mult/shift carry s_in / s_out and 1/n. */
void te_mean_hw_s8(const int8_t *in, int n_pixels, int c, int32_t in_zp, int32_t mult, int32_t shift,
                   int32_t out_zp, int8_t *out);
/* SOFTMAX over each row of `depth` values (gemmlowp fixed point; output scale 1/256, zero point -128).
 * input_mult/input_left_shift: beta * s_in in Q5.26; diff_min: differences below it give -128. */
void te_softmax_s8(const int8_t *in, int rows, int depth, int32_t input_mult, int32_t input_left_shift,
                   int32_t diff_min, int8_t *out);
/* PAD of H and W: in (in_h, in_w, c) -> out (in_h + pad_top + pad_bottom, in_w + pad_left + pad_right, c),
 * the border filled with `value` (the zero point). `out` must not overlap `in`. */
void te_pad_s8(const int8_t *in, int in_h, int in_w, int c, int pad_top, int pad_bottom, int pad_left,
               int pad_right, int32_t value, int8_t *out);

#ifdef __cplusplus
}
#endif
#endif /* TINYENGINE_H */
