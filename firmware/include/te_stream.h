/*
 * Row kernels of fused streaming execution (tinyengine/passes/stream.py; the generated segment loops
 * come from codegen/stream_lower.py). A segment computes each tensor one output row at a time; rows of
 * an intermediate tensor live in a ring of rows, so a kernel reads its input rows through pointers.
 * Same arithmetic as the whole-tensor kernels (tinyengine.h), hence the same bytes.
 */
#ifndef TE_STREAM_H
#define TE_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "tinyengine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One output row of a depthwise k_h x k_w convolution (depth multiplier 1), NHWC rows of in_w x c.
 * rows[ky] (ky < k_h) is the input row under kernel row ky, or NULL where that row is zero padding
 * (above the top or below the bottom); columns outside [0, in_w) are zero padding too (pad_left on the
 * left, the rest follows from out_w). acc = bias + sum w * (x - in_zp), requantised per channel.
 * k_h <= 16 (a taller kernel writes nothing; codegen never asks for one).
 * Scratch: te_depthwise_row_scratch_bytes(c) = 2 * c * sizeof(int32_t) (a per-channel constant and an
 * accumulator per channel). */
size_t te_depthwise_row_scratch_bytes(int c);
void te_depthwise_row_s8(const int8_t *const *rows, int k_h, int k_w, int in_w, int c, int stride_w,
                         int pad_left, int out_w, const int8_t *w, const int32_t *bias, const te_quant_t *q,
                         int8_t *out, int32_t *scratch);

#ifdef __cplusplus
}
#endif
#endif /* TE_STREAM_H */
