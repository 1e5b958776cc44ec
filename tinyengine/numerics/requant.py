"""Int8 fixed-point arithmetic of the engine: the ground truth every kernel (NumPy and C) follows.

The semantics are those of TFLite Micro's reference kernels and CMSIS-NN's default build
("double rounding" requantisation). This docstring is the documentation of record; the C
runtime in ``firmware/`` must implement exactly these steps.

Notation: ``int32`` means C ``int32_t`` two's-complement arithmetic. Internally everything is
computed in NumPy ``int64`` (exact) and reduced to int32 where the C code holds an int32.

1. Effective scale (per output channel ``c``), in double from float32-stored scales::

       eff[c] = (double)s_in * (double)s_w[c] / (double)s_out          # left to right

2. QuantizeMultiplier(eff) -> (M, shift), ``eff == M * 2**(shift - 31)`` approximately::

       q, shift = frexp(eff)                 # eff = q * 2**shift, q in [0.5, 1)
       M = round_half_away_from_zero(q * 2**31)
       if M == 2**31:  M = 2**30; shift += 1 # q rounded up to 1.0
       if shift < -31: M = 0; shift = 0      # eff < 2**-32: the product is 0 anyway
       eff == 0 -> (0, 0); eff < 0 is rejected (ValueError).

   ``M`` is in [2**30, 2**31 - 1] (or 0). Kernels accept shift in [-31, 30]: -31 is the
   smallest RDBPOT exponent, 30 the largest ``1 << shift`` that fits an int32.

3. Accumulator (conv/depthwise/FC): ``acc = sum(w * (x - zp_in)) + bias`` with symmetric
   weights (zero point 0); padded taps contribute 0. In C the sum is an int32; we sum in
   int64 and wrap to int32 (identical whenever C does not overflow, which real layers never
   do: |w * (x - zp)| <= 128 * 255).

4. Requantisation, double rounding (default; TFLite ``MultiplyByQuantizedMultiplier``)::

       L = max(shift, 0); R = max(-shift, 0)
       y = wrap_int32(acc * 2**L)            # C: x * (1 << L) in int32
       y = SRDHM(y, M)
       y = RDBPOT(y, R)

   * ``SRDHM(a, b)`` saturating rounding doubling high multiply (gemmlowp)::

         if a == b == INT32_MIN: return INT32_MAX      # the only overflow
         ab = (int64)a * b
         nudge = 2**30 if ab >= 0 else 1 - 2**30
         return (int32)((ab + nudge) / 2**31)           # C division: truncates toward 0

     Equivalently ``floor((ab + 2**30) / 2**31)``: round(ab / 2**31) with ties toward +inf
     (this is how CMSIS-NN writes it; the two forms agree on every input).
   * ``RDBPOT(x, e)`` rounding divide by 2**e, ties away from zero, e in 0..31::

         mask = 2**e - 1
         remainder = x & mask
         threshold = (mask >> 1) + (1 if x < 0 else 0)
         return (x >> e) + (1 if remainder > threshold else 0)   # >> is arithmetic

   * ``acc * 2**L`` overflow: TFLite relies on it not happening (C signed overflow is
     undefined). We wrap to int32 (what Cortex-M code compiled with GCC does in practice),
     so the NumPy result and the C result agree even on such degenerate inputs.

5. Single rounding (optional, upstream build flag ``TFLITE_SINGLE_ROUNDING``)::

       total = 31 - shift                            # shift in [-31, 30]
       y = ((int64)acc * M + 2**(total - 1)) >> total   # ties toward +inf
       y = wrap_int32(y)                             # C: static_cast<int32_t>

   It differs from double rounding by at most 1 (in ~0.1% of outputs).

6. Output: ``y = wrap_int32(y + zp_out)``, then clamp to ``[act_min, act_max]``, cast to int8.

7. Activation range (TFLite ``CalculateActivationRangeQuantized``), ``q(v) = zp_out +
   round_half_away(float32(v) / float32(s_out))`` with the division done in float32:
   none -> [-128, 127]; relu -> [max(-128, q(0)), 127]; relu6 -> [max(-128, q(0)),
   min(127, q(6))]; relu_n1_to_1 -> [max(-128, q(-1)), min(127, q(1))].

8. Float <-> int8 (TFLite QUANTIZE / DEQUANTIZE)::

       quantize:   clamp(round_half_away(float32(x) / float32(scale)) + zp, -128, 127)
       dequantize: float32((double)float32(scale) * (q - zp))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "INT32_MIN",
    "INT32_MAX",
    "INT8_MIN",
    "INT8_MAX",
    "quantize_multiplier",
    "quantize_multipliers",
    "effective_scales",
    "srdhm",
    "rdbpot",
    "wrap_int32",
    "multiply_by_quantized_multiplier",
    "multiply_by_quantized_multiplier_single_rounding",
    "requantize",
    "activation_range",
    "quantize",
    "dequantize",
    "choose_qparams",
    "choose_weight_scales",
    "quantize_weights",
    "quantize_bias",
]

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
INT8_MIN = -128
INT8_MAX = 127
SHIFT_MIN = -31
SHIFT_MAX = 30

_TWO31 = 1 << 31
_F32_TINY = np.float32(np.finfo(np.float32).tiny)  # smallest normal float32


# --------------------------------------------------------------------------- helpers


def _round_half_away_scalar(v: float) -> int:
    """round-half-away-from-zero of a finite float, exactly (like C ``round``)."""
    a = abs(v)
    r = math.floor(a)
    if a - r >= 0.5:  # a - r is exact: the fractional part of a float is representable
        r += 1
    return int(-r if v < 0 else r)


def _round_half_away(v: np.ndarray) -> np.ndarray:
    """Vectorised round-half-away-from-zero, keeping the float dtype (exact)."""
    a = np.abs(v)
    r = np.floor(a)
    r = r + (a - r >= 0.5)
    return np.where(v < 0, -r, r)


def _as_int64(name: str, value: Any, lo: int = INT32_MIN, hi: int = INT32_MAX) -> np.ndarray:
    """``value`` as an int64 array, checking it is integral and within [lo, hi]."""
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise ValueError(f"{name} must be integer-valued (got dtype {arr.dtype})")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > hi:
        raise ValueError(f"{name} must lie in [{lo}, {hi}] (got max {int(arr.max())})")
    arr = arr.astype(np.int64)
    if arr.size:
        amin, amax = int(arr.min()), int(arr.max())
        if amin < lo or amax > hi:
            raise ValueError(f"{name} must lie in [{lo}, {hi}] (got range [{amin}, {amax}])")
    return arr


def _out(arr: np.ndarray, dtype=np.int32):
    """Return a 0-d result as a NumPy scalar, otherwise the array, in ``dtype``."""
    arr = np.asarray(arr).astype(dtype)
    return arr[()] if arr.ndim == 0 else arr


def wrap_int32(x: Any) -> np.ndarray:
    """Reduce int64 values modulo 2**32 into int32 range (C two's-complement wrap), as int64."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + _TWO31) & 0xFFFFFFFF) - _TWO31


# --------------------------------------------------------------------------- multipliers


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: ``real ~= mult * 2**(shift - 31)``, mult in [2**30, 2**31).

    Returns ``(0, 0)`` for ``real == 0`` and when ``shift < -31``; raises ValueError for a
    negative or non-finite ``real``.
    """
    real = float(real)
    if not math.isfinite(real):
        raise ValueError(f"real multiplier must be finite (got {real})")
    if real < 0:
        raise ValueError(f"real multiplier must be non-negative (got {real})")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = _round_half_away_scalar(q * float(_TWO31))  # q * 2**31 is exact
    if q_fixed == _TWO31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def quantize_multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`quantize_multiplier`: (mult int32 array, shift int32 array)."""
    r = np.asarray(reals, dtype=np.float64)
    if not np.all(np.isfinite(r)):
        raise ValueError("reals must all be finite")
    if np.any(r < 0):
        raise ValueError(f"reals must be non-negative (got min {float(r.min())})")
    q, shift = np.frexp(r)  # 0 -> (0.0, 0)
    q_fixed = _round_half_away(q * float(_TWO31)).astype(np.int64)
    top = q_fixed == _TWO31
    q_fixed = np.where(top, q_fixed // 2, q_fixed)
    shift = shift.astype(np.int64) + top
    tiny = shift < -31
    q_fixed = np.where(tiny, 0, q_fixed)
    shift = np.where(tiny | (q_fixed == 0), 0, shift)
    return q_fixed.astype(np.int32), shift.astype(np.int32)


def effective_scales(s_in: float, s_w: np.ndarray, s_out: float) -> np.ndarray:
    """Per-channel ``(double)s_in * (double)s_w[c] / (double)s_out`` from float32-stored scales."""
    si = np.float64(np.float32(s_in))
    so = np.float64(np.float32(s_out))
    sw = np.asarray(s_w, dtype=np.float32).astype(np.float64)
    if not (si > 0 and so > 0 and np.all(sw > 0)):
        raise ValueError("scales must be positive (s_in, s_w, s_out)")
    return (si * sw) / so


# --------------------------------------------------------------------------- fixed-point primitives


def srdhm(a: Any, b: Any):
    """Saturating rounding doubling high multiply (gemmlowp), int32 in, int32 out, vectorised."""
    a64 = _as_int64("a", a)
    b64 = _as_int64("b", b)
    ab = a64 * b64  # |ab| <= 2**62: exact in int64
    n = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    # C integer division truncates toward zero; >> floors, so divide the magnitude.
    q = np.where(n >= 0, n >> 31, -((-n) >> 31))
    q = np.where((a64 == INT32_MIN) & (b64 == INT32_MIN), INT32_MAX, q)
    return _out(q)


def rdbpot(x: Any, exponent: Any):
    """Rounding divide by 2**exponent, ties away from zero (gemmlowp RoundingDivideByPOT).

    ``exponent`` (0..31) may be a scalar or an array broadcasting against ``x``.
    """
    x64 = _as_int64("x", x)
    e = _as_int64("exponent", exponent, 0, 31)
    mask = (np.int64(1) << e) - 1
    remainder = x64 & mask
    threshold = (mask >> 1) + (x64 < 0)
    return _out((x64 >> e) + (remainder > threshold))


def _check_mult_shift(mult: Any, shift: Any) -> tuple[np.ndarray, np.ndarray]:
    m = _as_int64("mult", mult, 0, INT32_MAX)
    s = _as_int64("shift", shift, SHIFT_MIN, SHIFT_MAX)
    return m, s


def multiply_by_quantized_multiplier(acc: Any, mult: Any, shift: Any):
    """Double-rounding requantisation ``RDBPOT(SRDHM(acc << L, M), R)`` (TFLite default).

    ``acc`` int32 values; ``mult`` in [0, 2**31 - 1]; ``shift`` in [-31, 30]; all broadcast.
    ``acc * 2**L`` wraps to int32 like the C code (see module docstring, step 4).
    """
    a = _as_int64("acc", acc)
    m, s = _check_mult_shift(mult, shift)
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    shifted = wrap_int32(a << left)  # |a| < 2**31, left <= 30: exact before the wrap
    return rdbpot(srdhm(shifted, m), right)


def multiply_by_quantized_multiplier_single_rounding(acc: Any, mult: Any, shift: Any):
    """Single-rounding variant (``TFLITE_SINGLE_ROUNDING``): ``(acc*M + 2**(30-shift)) >> (31-shift)``."""
    a = _as_int64("acc", acc)
    m, s = _check_mult_shift(mult, shift)
    total = 31 - s  # 1..62
    rounding = np.int64(1) << (total - 1)
    # |a*m| < 2**62 and rounding <= 2**61: no int64 overflow.
    return _out(wrap_int32((a * m + rounding) >> total))


# --------------------------------------------------------------------------- requantize


def _check_int8_scalar(name: str, v: Any) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{name} must be an integer (got {v!r})")
    v = int(v)
    if not INT8_MIN <= v <= INT8_MAX:
        raise ValueError(f"{name} must lie in [-128, 127] (got {v})")
    return v


def _check_act_range(act_min: Any, act_max: Any) -> tuple[int, int]:
    lo = _check_int8_scalar("act_min", act_min)
    hi = _check_int8_scalar("act_max", act_max)
    if lo > hi:
        raise ValueError(f"act_min ({lo}) must not exceed act_max ({hi})")
    return lo, hi


def _per_channel(name: str, v: Any, n: int, axis: int, ndim: int) -> np.ndarray:
    """Scalar or length-n vector -> array broadcasting along ``axis`` of an ndim array."""
    arr = np.asarray(v)
    if arr.ndim == 0:
        return arr
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must be a scalar or have length {n} (got shape {arr.shape})")
    shape = [1] * ndim
    shape[axis] = n
    return arr.reshape(shape)


def requantize(
    acc: Any,
    mult: Any,
    shift: Any,
    out_zp: int,
    act_min: int = INT8_MIN,
    act_max: int = INT8_MAX,
    *,
    channel_axis: int = -1,
    single_rounding: bool = False,
) -> np.ndarray:
    """int32 accumulators -> int8: scale by (mult, shift), add ``out_zp``, clamp.

    ``mult``/``shift`` are scalars (per tensor) or vectors of length
    ``acc.shape[channel_axis]`` (per channel).
    """
    a = np.asarray(acc)
    zp = _check_int8_scalar("out_zp", out_zp)
    lo, hi = _check_act_range(act_min, act_max)
    if a.ndim:
        if not -a.ndim <= channel_axis < a.ndim:
            raise ValueError(f"channel_axis {channel_axis} out of range for acc of shape {a.shape}")
        n = a.shape[channel_axis]
        m = _per_channel("mult", mult, n, channel_axis, a.ndim)
        s = _per_channel("shift", shift, n, channel_axis, a.ndim)
    else:
        m, s = np.asarray(mult), np.asarray(shift)
        if m.ndim or s.ndim:
            raise ValueError("mult and shift must be scalars when acc is a scalar")
    fn = multiply_by_quantized_multiplier_single_rounding if single_rounding else multiply_by_quantized_multiplier
    y = np.asarray(fn(a, m, s), dtype=np.int64)
    y = wrap_int32(y + zp)
    return np.clip(y, lo, hi).astype(np.int8)


# --------------------------------------------------------------------------- activation range


def activation_range(kind: str | None, out_scale: float, out_zp: int) -> tuple[int, int]:
    """(act_min, act_max) for a fused activation, the TFLite way (float32 division, round half away)."""
    zp = _check_int8_scalar("out_zp", out_zp)
    s = np.float32(out_scale)
    if not (np.isfinite(s) and s > 0):
        raise ValueError(f"out_scale must be a positive finite float32 (got {out_scale})")

    def q(v: float) -> int:
        with np.errstate(over="ignore"):
            ratio = np.float32(v) / s  # float32 division, as in TFLite
        if not np.isfinite(ratio):
            return zp + (INT32_MAX if ratio > 0 else INT32_MIN)
        return zp + _round_half_away_scalar(float(ratio))

    k = None if kind is None else str(kind).lower()
    if k in (None, "none", "linear", "identity"):
        return INT8_MIN, INT8_MAX
    if k == "relu":
        return max(INT8_MIN, q(0.0)), INT8_MAX
    if k == "relu6":
        return max(INT8_MIN, q(0.0)), min(INT8_MAX, q(6.0))
    if k in ("relu_n1_to_1", "relun1to1"):
        return max(INT8_MIN, q(-1.0)), min(INT8_MAX, q(1.0))
    raise ValueError(f"activation kind must be None, 'relu', 'relu6' or 'relu_n1_to_1' (got {kind!r})")


# --------------------------------------------------------------------------- float <-> int8


def quantize(x: Any, scale: float, zp: int) -> np.ndarray:
    """float -> int8: ``clamp(round_half_away(float32(x) / float32(scale)) + zp, -128, 127)``."""
    zp = _check_int8_scalar("zp", zp)
    s = np.float32(scale)
    if not (np.isfinite(s) and s > 0):
        raise ValueError(f"scale must be a positive finite float32 (got {scale})")
    xf = np.asarray(x, dtype=np.float32)
    if np.any(np.isnan(xf)):
        raise ValueError("x contains NaN")
    with np.errstate(over="ignore"):
        v = xf / s
    v = np.clip(_round_half_away(v).astype(np.float64), -1e6, 1e6)
    return np.clip(v.astype(np.int64) + zp, INT8_MIN, INT8_MAX).astype(np.int8)


def dequantize(q: Any, scale: float, zp: int) -> np.ndarray:
    """int8 -> float32: ``float32((double)float32(scale) * (q - zp))``."""
    zp = int(zp)
    qa = np.asarray(q).astype(np.int64)
    return (np.float64(np.float32(scale)) * (qa - zp)).astype(np.float32)


def choose_qparams(
    min_val: float, max_val: float, *, symmetric: bool = False, narrow_range: bool = False
) -> tuple[np.float32, int]:
    """(scale, zero point) for an int8 tensor observed in [min_val, max_val].

    The range is first widened to include 0 (so 0.0 is exact). Asymmetric: TFLite's
    ChooseQuantizationParams (scale = range / (qmax - qmin); the zero point, from whichever
    end gives the smaller error, is nudged to an integer in [qmin, qmax]). Symmetric:
    zp = 0, scale = max(|min|, |max|) / 127. qmin = -127 with ``narrow_range`` else -128.
    The scale is rounded to float32 first and the zero point derived from that float32
    scale. A degenerate range (both ends 0) gives scale 1.0 and zp 0 (TFLite would give
    scale 0, which no kernel can use). Scales are at least the smallest normal float32
    (a range so tiny that its scale would be subnormal gets that scale instead).
    """
    lo, hi = float(min_val), float(max_val)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"min_val and max_val must be finite (got {lo}, {hi})")
    if lo > hi:
        raise ValueError(f"min_val ({lo}) must not exceed max_val ({hi})")
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    qmin = -127 if narrow_range else INT8_MIN
    qmax = INT8_MAX
    if lo == hi:
        return np.float32(1.0), 0
    if symmetric:
        return max(np.float32(max(-lo, hi) / 127.0), _F32_TINY), 0
    scale = max(np.float32((hi - lo) / (qmax - qmin)), _F32_TINY)
    s = float(scale)
    zp_from_min = qmin - lo / s
    zp_from_max = qmax - hi / s
    err_min = abs(qmin) + abs(lo / s)
    err_max = abs(qmax) + abs(hi / s)
    zp_real = zp_from_min if err_min < err_max else zp_from_max
    if zp_real < qmin:
        zp = qmin
    elif zp_real > qmax:
        zp = qmax
    else:
        zp = _round_half_away_scalar(zp_real)
    return scale, int(zp)


def choose_weight_scales(w: Any, axis: int = 0) -> np.ndarray:
    """Per-channel symmetric int8 weight scales along ``axis``: ``float32(max|w| / 127)``.

    A channel whose scale would be 0 (all-zero weights, or so tiny the float32 scale
    underflows) gets scale 1.0, as TFLite's SymmetricQuantizeFloats does for a zero range:
    its weights quantise to 0 and the effective scale stays finite and positive.
    """
    wa = np.asarray(w, dtype=np.float64)
    if wa.ndim == 0:
        raise ValueError("w must have at least one dimension")
    if not -wa.ndim <= axis < wa.ndim:
        raise ValueError(f"axis {axis} out of range for w of shape {wa.shape}")
    if not np.all(np.isfinite(wa)):
        raise ValueError("w must be finite")
    red = tuple(i for i in range(wa.ndim) if i != axis % wa.ndim)
    amax = np.max(np.abs(wa), axis=red) if red else np.abs(wa)
    scales = (amax / 127.0).astype(np.float32)
    return np.where(scales > 0, scales, np.float32(1.0)).astype(np.float32)


def quantize_weights(w: Any, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel symmetric int8 weights: (q in [-127, 127], float32 scales along ``axis``)."""
    wa = np.asarray(w, dtype=np.float32)
    scales = choose_weight_scales(wa, axis)
    shape = [1] * wa.ndim
    shape[axis] = -1
    v = _round_half_away(wa / scales.reshape(shape))
    return np.clip(v, -127, 127).astype(np.int8), scales


def quantize_bias(b: Any, s_in: float, s_w: Any) -> np.ndarray:
    """int32 bias with scale ``s_in * s_w[c]`` (computed in double from float32 scales)."""
    scale = np.float64(np.float32(s_in)) * np.asarray(s_w, dtype=np.float32).astype(np.float64)
    v = _round_half_away(np.asarray(b, dtype=np.float64) / scale)
    return np.clip(v, INT32_MIN, INT32_MAX).astype(np.int32)
