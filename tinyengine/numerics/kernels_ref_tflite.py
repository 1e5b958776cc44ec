"""Bit-exact NumPy reference of the int8 ops imported .tflite models need beyond ``kernels_ref``:
MAX_POOL_2D, MEAN over H and W, and SOFTMAX, with TFLite Micro's reference arithmetic.

* ``max_pool2d``: the maximum of the valid (unpadded) taps, then the fused clamp; input and output
  share scale and zero point (TFLM requires it).
* ``mean_hw`` (MEAN over axes 1 and 2): TFLite's QuantizedMeanOrSum, also when the scale and zero
  point are the same in and out (checked against the tflite-micro interpreter):
  ``M, s = QuantizeMultiplier(s_in / s_out)``, folded with ``1 / count`` into ``M' = (M << k) / count``,
  ``s' = s - k`` (``k = min(floor(log2(count)), 32, 31 + s)``), then
  ``out = MBQM(sum - zp_in * count, M', s') + zp_out``, clamped to int8.
* ``softmax``: gemmlowp fixed point, as TFLM's int8 SOFTMAX (``reference_ops::Softmax``): the input
  difference to the row maximum is scaled by ``beta * s_in`` into Q5.26, exponentiated with
  ``exp_on_negative_values``, summed in Q12.19, and each exp is multiplied by the reciprocal of the sum
  (``one_over_one_plus_x_for_x_in_0_1``). The output scale is 1/256 and the zero point -128.

Every function works on int64 NumPy arrays holding int32 values, wrapping like the C code where the C
code wraps, so the C kernels (``firmware/src/te_pool_softmax.c``) can be compared byte for byte.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from tinyengine.numerics.requant import (
    INT8_MAX,
    INT8_MIN,
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rdbpot,
    srdhm,
    wrap_int32,
)

__all__ = ["run_tflite_op", "max_pool2d", "mean_hw", "mean_params", "softmax", "softmax_params", "SoftmaxParams",
           "MeanParams"]


# --------------------------------------------------------------------------- MAX_POOL_2D
def max_pool2d(x: np.ndarray, kernel, stride, padding, act_min: int = INT8_MIN,
               act_max: int = INT8_MAX) -> np.ndarray:
    """Int8 MAX_POOL_2D on (H, W, C): max over the taps inside the input, clamped to [act_min, act_max]."""
    if not isinstance(x, np.ndarray) or x.dtype != np.int8 or x.ndim != 3:
        raise ValueError("max_pool2d: x must be an int8 (H, W, C) array")
    kh, kw = (int(v) for v in kernel)
    sh, sw = (int(v) for v in stride)
    pt, pb, pl, pr = (int(v) for v in padding)
    h, w, c = x.shape
    ho, wo = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"max_pool2d: kernel {kh}x{kw} larger than the padded input {h}x{w}")
    xp = np.full((h + pt + pb, w + pl + pr, c), np.iinfo(np.int16).min, dtype=np.int16)
    xp[pt:pt + h, pl:pl + w] = x
    out = np.full((ho, wo, c), np.iinfo(np.int16).min, dtype=np.int16)
    for dy in range(kh):
        for dx in range(kw):
            out = np.maximum(out, xp[dy:dy + sh * (ho - 1) + 1:sh, dx:dx + sw * (wo - 1) + 1:sw])
    if np.any(out == np.iinfo(np.int16).min):
        raise ValueError(f"max_pool2d: padding {padding} leaves a window with no input pixel")
    return np.clip(out, max(act_min, INT8_MIN), min(act_max, INT8_MAX)).astype(np.int8)


# --------------------------------------------------------------------------- MEAN
class MeanParams(NamedTuple):
    """MEAN over ``count`` = H x W elements: the multiplier ``mult``/``shift`` with 1/count folded in."""

    count: int
    mult: int
    shift: int


def mean_params(in_scale: float, in_zp: int, out_scale: float, out_zp: int, count: int) -> MeanParams:
    """TFLM's choice and numbers for int8 MEAN over ``count`` elements (float32-stored scales)."""
    si, so = np.float32(in_scale), np.float32(out_scale)
    mult, shift = quantize_multiplier(float(si) / float(so))
    k = 0
    if count > 1:
        k = min(63 - _clz64(count), 32, 31 + shift)
        mult = int((mult << k) // count)
    return MeanParams(count, mult, shift - k)


def _clz64(v: int) -> int:
    return 64 - int(v).bit_length()


def mean_hw(x: np.ndarray, in_zp: int, out_zp: int, p: MeanParams) -> np.ndarray:
    """Int8 MEAN over H and W of (H, W, C) -> (C,)."""
    if not isinstance(x, np.ndarray) or x.dtype != np.int8 or x.ndim != 3:
        raise ValueError("mean_hw: x must be an int8 (H, W, C) array")
    s = x.astype(np.int64).reshape(-1, x.shape[2]).sum(axis=0)
    shifted = wrap_int32(s - int(in_zp) * p.count)
    y = np.asarray(multiply_by_quantized_multiplier(shifted, p.mult, p.shift), dtype=np.int64) + int(out_zp)
    return np.clip(y, INT8_MIN, INT8_MAX).astype(np.int8)


# --------------------------------------------------------------------------- SOFTMAX
SCALED_DIFF_INT_BITS = 5
ACCUM_INT_BITS = 12


class SoftmaxParams(NamedTuple):
    """TFLM's int8 SOFTMAX parameters (CalculateSoftmaxParams)."""

    input_multiplier: int
    input_left_shift: int
    diff_min: int


def softmax_params(beta: float, in_scale: float) -> SoftmaxParams:
    """PreprocessSoftmaxScaling + CalculateInputRadius for int8 input (5 integer bits, 31 total)."""
    real = min(float(beta) * float(np.float32(in_scale)) * (1 << (31 - SCALED_DIFF_INT_BITS)),
               float((1 << 31) - 1))
    mult, left = quantize_multiplier(real)
    if left < 0:
        raise ValueError(f"softmax: beta * input scale = {real / (1 << 26):g} gives a negative left "
                         "shift (TFLM requires a multiplier >= 1 in Q5.26)")
    radius = math.floor(1.0 * ((1 << SCALED_DIFF_INT_BITS) - 1) * (1 << (31 - SCALED_DIFF_INT_BITS))
                        / (1 << left))
    return SoftmaxParams(int(mult), int(left), -int(radius))


def _mul(a, b):
    return np.asarray(srdhm(a, b), dtype=np.int64)


def _rdbpot(x, e):
    return np.asarray(rdbpot(x, e), dtype=np.int64)


def _sat_shl(x, e: int):
    """gemmlowp SaturatingRoundingMultiplyByPOT with a positive exponent (saturating left shift)."""
    thr = (1 << (31 - e)) - 1
    return np.where(x > thr, INT32_MAX, np.where(x < -thr, INT32_MIN, x << e))


def _exp_quarter(a):
    """exp on [-1/4, 0) for Q0.31 raw values (gemmlowp's Taylor series around -1/8)."""
    const_term, one_third = 1895147668, 715827883
    x = wrap_int32(a + (1 << 28))
    x2 = _mul(x, x)
    x3 = _mul(x2, x)
    x4 = _mul(x2, x2)
    x4_4 = _rdbpot(x4, 2)
    poly = _rdbpot(wrap_int32(_mul(wrap_int32(x4_4 + x3), one_third) + x2), 1)
    return wrap_int32(const_term + _mul(const_term, wrap_int32(x + poly)))


_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
           (3, 720401), (4, 242))


def exp_on_negative_values(a):
    """gemmlowp exp_on_negative_values for Q5.26 raw inputs (<= 0) -> Q0.31 raw."""
    a = np.asarray(a, dtype=np.int64)
    frac = 31 - SCALED_DIFF_INT_BITS
    quarter = 1 << (frac - 2)
    a_mod = wrap_int32((a & (quarter - 1)) - quarter)
    result = _exp_quarter(_sat_shl(a_mod, SCALED_DIFF_INT_BITS))
    remainder = wrap_int32(a_mod - a)
    for exponent, m in _BARREL:
        if SCALED_DIFF_INT_BITS > exponent:
            bit = 1 << (frac + exponent)
            result = np.where((remainder & bit) != 0, _mul(result, m), result)
    return np.where(a == 0, INT32_MAX, result)


def _one_over_one_plus_x(a):
    """gemmlowp one_over_one_plus_x_for_x_in_0_1, Q0.31 raw in and out (Newton-Raphson)."""
    s = a + INT32_MAX
    half_den = np.where(s >= 0, (s + 1) // 2, -((-(s - 1)) // 2))  # RoundingHalfSum, truncating
    x = wrap_int32(1515870810 + _mul(half_den, -1010580540))
    for _ in range(3):
        one_minus = wrap_int32((1 << 29) - _mul(half_den, x))
        x = wrap_int32(x + _sat_shl(_mul(x, one_minus), 2))
    return _sat_shl(x, 1)


def softmax(x: np.ndarray, p: SoftmaxParams) -> np.ndarray:
    """Int8 SOFTMAX over the last axis (output scale 1/256, zero point -128)."""
    if not isinstance(x, np.ndarray) or x.dtype != np.int8 or x.size == 0:
        raise ValueError("softmax: x must be a non-empty int8 array")
    rows = x.astype(np.int64).reshape(-1, x.shape[-1])
    diff = rows - rows.max(axis=1, keepdims=True)
    ok = diff >= p.diff_min
    scaled = _mul(np.where(ok, diff, 0) * (1 << p.input_left_shift), p.input_multiplier)  # only where used
    exps = exp_on_negative_values(np.where(ok, scaled, 0))
    terms = np.where(ok, _rdbpot(exps, ACCUM_INT_BITS), 0)  # Rescale<12>: Q0.31 -> Q12.19
    total = wrap_int32(terms.sum(axis=1, keepdims=True))
    headroom = np.array([32 - int(v).bit_length() for v in total.reshape(-1)], dtype=np.int64).reshape(total.shape)
    bits_over = ACCUM_INT_BITS - headroom
    shifted = wrap_int32(((total << headroom) & 0xFFFFFFFF) - (1 << 31))
    recip = _one_over_one_plus_x(shifted)
    if int(bits_over.max()) + 23 > 31:
        raise ValueError(f"softmax: a row of {x.shape[-1]} values sums past what TFLM's int8 arithmetic "
                         "handles (at most 512 classes)")
    out = _rdbpot(_mul(recip, exps), bits_over + 31 - 8) + INT8_MIN
    out = np.where(ok, np.clip(out, INT8_MIN, INT8_MAX), INT8_MIN)
    return out.reshape(x.shape).astype(np.int8)


def run_tflite_op(graph, op, x: np.ndarray) -> np.ndarray:
    """The reference executor's entry for ``max_pool2d``, ``mean`` and ``softmax`` ops of a graph."""
    t_in, t_out = graph.tensors[op.inputs[0]], graph.tensors[op.output]
    if op.kind == "max_pool2d":
        return max_pool2d(x, op.attrs["kernel"], op.attrs["stride"], op.attrs["padding"],
                          op.attrs.get("act_min", INT8_MIN), op.attrs.get("act_max", INT8_MAX))
    if op.kind == "mean":
        h, w = x.shape[:2]
        p = mean_params(t_in.scale, t_in.zero_point, t_out.scale, t_out.zero_point, h * w)
        return mean_hw(x, t_in.zero_point, t_out.zero_point, p).reshape(t_out.shape)
    if op.kind == "softmax":
        return softmax(x, softmax_params(op.attrs.get("beta", 1.0), t_in.scale))
    raise ValueError(f"run_tflite_op: op '{op.name}' of kind '{op.kind}' is not a .tflite-only op")
