"""Bit-exact NumPy reference kernels of the int8 engine (TFLite Micro reference semantics).

Conventions
-----------
* Activations are NHWC with the batch dimension dropped: ``x.shape == (H, W, C)``, int8.
  A leading batch of 1 (``(1, H, W, C)``) is also accepted; the output then keeps it.
* ``padding = (top, bottom, left, right)`` in pixels; output size per axis is
  ``(H + top + bottom - k) // stride + 1``. TFLite's SAME padding for an input H, kernel k,
  stride s is ``total = max((ceil(H / s) - 1) * s + k - H, 0)``, ``top = total // 2``,
  ``bottom = total - top`` (:func:`same_padding`).
* Conv weights are OHWI ``(C_out, kH, kW, C_in)``; depthwise weights are ``(kH, kW, C)``
  (TFLite's 1HWC without the 1; depth multiplier 1); fully-connected weights are
  ``(out, in)``. Weights are int8 with zero point 0; bias is int32 (or None for zeros).
* ``mult``/``shift`` come from :func:`tinyengine.numerics.requant.quantize_multiplier(s)`: scalars
  (per tensor) or one per output channel.
* Every kernel returns int8. Requantisation is double rounding unless
  ``single_rounding=True`` (see :mod:`tinyengine.numerics.requant` for the arithmetic of record).

All arithmetic on the int8 path is integer (int64 in NumPy, wrapped to int32 where the C
code holds an int32); the only floats are the scales ADD turns into multipliers.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from tinyengine.numerics.requant import (
    INT8_MAX,
    INT8_MIN,
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_single_rounding,
    quantize_multiplier,
    requantize,
    wrap_int32,
)

__all__ = [
    "AddParams",
    "add",
    "add_params",
    "avg_pool2d",
    "conv2d",
    "conv_output_size",
    "depthwise_conv2d",
    "fully_connected",
    "global_avg_pool",
    "pad",
    "same_padding",
]


# --------------------------------------------------------------------------- validation


def _int_scalar(name: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{name} must be an integer (got {v!r})")
    v = int(v)
    if not lo <= v <= hi:
        raise ValueError(f"{name} must lie in [{lo}, {hi}] (got {v})")
    return v


def _zp(name: str, v: Any) -> int:
    return _int_scalar(name, v, INT8_MIN, INT8_MAX)


def _act(act_min: Any, act_max: Any) -> tuple[int, int]:
    lo = _int_scalar("act_min", act_min, INT8_MIN, INT8_MAX)
    hi = _int_scalar("act_max", act_max, INT8_MIN, INT8_MAX)
    if lo > hi:
        raise ValueError(f"act_min ({lo}) must not exceed act_max ({hi})")
    return lo, hi


def _int8_array(name: str, a: Any, ndim: int, layout: str) -> np.ndarray:
    if not isinstance(a, np.ndarray) or a.dtype != np.int8:
        dt = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
        raise ValueError(f"{name} must be an int8 numpy array {layout} (got {dt})")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have shape {layout} (got shape {a.shape})")
    if 0 in a.shape:
        raise ValueError(f"{name} must not be empty (got shape {a.shape})")
    return a


def _activation(name: str, x: Any) -> tuple[np.ndarray, bool]:
    """Accept (H, W, C) or (1, H, W, C) int8; return the 3-D view and whether a batch was given."""
    if isinstance(x, np.ndarray) and x.ndim == 4:
        if x.shape[0] != 1:
            raise ValueError(f"{name} must have batch 1 when 4-D (got shape {x.shape})")
        return _int8_array(name, x[0], 3, "(H, W, C)"), True
    return _int8_array(name, x, 3, "(H, W, C)"), False


def _pair(name: str, v: Any, lo: int = 1) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        v = (v, v)
    try:
        items = tuple(v)
    except TypeError:
        raise ValueError(f"{name} must be an int or a pair of ints (got {v!r})") from None
    if len(items) != 2:
        raise ValueError(f"{name} must be a pair (h, w) (got {v!r})")
    return tuple(_int_scalar(name, i, lo, 1 << 30) for i in items)  # type: ignore[return-value]


def _padding(v: Any) -> tuple[int, int, int, int]:
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        v = (v, v, v, v)
    try:
        items = tuple(v)
    except TypeError:
        raise ValueError(f"padding must be (top, bottom, left, right) (got {v!r})") from None
    if len(items) != 4:
        raise ValueError(f"padding must be (top, bottom, left, right) (got {v!r})")
    return tuple(_int_scalar("padding", i, 0, 1 << 30) for i in items)  # type: ignore[return-value]


def _bias(bias: Any, n: int) -> np.ndarray:
    if bias is None:
        return np.zeros(n, dtype=np.int64)
    b = np.asarray(bias)
    if not np.issubdtype(b.dtype, np.integer):
        raise ValueError(f"bias must be an int32 array (got dtype {b.dtype})")
    if b.shape != (n,):
        raise ValueError(f"bias must have shape ({n},) (got shape {b.shape})")
    b = b.astype(np.int64)
    if b.size and (b.min() < INT32_MIN or b.max() > INT32_MAX):
        raise ValueError("bias values must fit in int32")
    return b


def _mult_shift(mult: Any, shift: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    m, s = np.asarray(mult), np.asarray(shift)
    for name, a in (("mult", m), ("shift", s)):
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} must be integer (got dtype {a.dtype})")
        if a.ndim > 1 or (a.ndim == 1 and a.shape[0] != n):
            raise ValueError(f"{name} must be a scalar or have length {n} (got shape {a.shape})")
    return m, s


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int) -> int:
    """Output extent of a window op along one axis (valid windows over the padded input)."""
    return (size + pad_before + pad_after - kernel) // stride + 1


def same_padding(in_hw: Sequence[int], kernel: Sequence[int], stride: Sequence[int]) -> tuple[int, int, int, int]:
    """TFLite/TensorFlow SAME padding as (top, bottom, left, right); the extra pixel goes last."""
    out = []
    for size, k, s in zip(in_hw, kernel, stride):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        out.extend((total // 2, total - total // 2))
    return out[0], out[1], out[2], out[3]


def _out_hw(x_hw: tuple[int, int], k: tuple[int, int], stride: tuple[int, int], p: tuple[int, int, int, int]):
    ho = conv_output_size(x_hw[0], k[0], stride[0], p[0], p[1])
    wo = conv_output_size(x_hw[1], k[1], stride[1], p[2], p[3])
    if ho < 1 or wo < 1:
        raise ValueError(
            f"kernel {k} does not fit the padded input (input {x_hw}, padding {p}): output would be {ho}x{wo}"
        )
    return ho, wo


def _taps(xp: np.ndarray, k: tuple[int, int], stride: tuple[int, int], out_hw: tuple[int, int]):
    """Yield (ky, kx, view) where view[oy, ox] = xp[oy*sh + ky, ox*sw + kx] (strided views, no copy)."""
    (kh, kw), (sh, sw), (ho, wo) = k, stride, out_hw
    for ky in range(kh):
        for kx in range(kw):
            yield ky, kx, xp[ky : ky + sh * (ho - 1) + 1 : sh, kx : kx + sw * (wo - 1) + 1 : sw]


def _finish(acc: np.ndarray, bias: np.ndarray, mult, shift, out_zp: int, lo: int, hi: int, single: bool):
    acc = wrap_int32(acc + bias)  # the C accumulator is int32
    return requantize(acc, mult, shift, out_zp, lo, hi, channel_axis=-1, single_rounding=single)


def _output_stage(n: int, bias, mult, shift, out_zp, act_min, act_max):
    """Checked (bias, mult, shift, out_zp, act_min, act_max) of an op with ``n`` output channels."""
    b = _bias(bias, n)
    m, s = _mult_shift(mult, shift, n)
    return (b, m, s, _zp("out_zp", out_zp), *_act(act_min, act_max))


# --------------------------------------------------------------------------- kernels


def pad(x: np.ndarray, padding: Any, value: int) -> np.ndarray:
    """Constant-pad an (H, W, C) int8 tensor spatially; padding = (top, bottom, left, right)."""
    x3, batched = _activation("x", x)
    t, b, l, r = _padding(padding)
    v = _int_scalar("value", value, INT8_MIN, INT8_MAX)
    out = np.pad(x3, ((t, b), (l, r), (0, 0)), mode="constant", constant_values=np.int8(v))
    return out[None] if batched else out


def conv2d(
    x: np.ndarray,
    x_zp: int,
    w: np.ndarray,
    bias: np.ndarray | None,
    out_zp: int,
    mult: Any,
    shift: Any,
    stride: Any = (1, 1),
    padding: Any = (0, 0, 0, 0),
    act_min: int = INT8_MIN,
    act_max: int = INT8_MAX,
    *,
    single_rounding: bool = False,
) -> np.ndarray:
    """Int8 2-D convolution (TFLM CONV_2D per-channel): x (H, W, C_in), w OHWI -> (Ho, Wo, C_out).

    ``acc[o] = bias[o] + sum w[o, ky, kx, c] * (x[iy, ix, c] - x_zp)``; padded taps add 0.
    """
    x3, batched = _activation("x", x)
    zp = _zp("x_zp", x_zp)
    w = _int8_array("w", w, 4, "(C_out, kH, kW, C_in)")
    cout, kh, kw, cin = w.shape
    if cin != x3.shape[2]:
        raise ValueError(f"w has {cin} input channels but x has {x3.shape[2]}")
    b, m, s, ozp, lo, hi = _output_stage(cout, bias, mult, shift, out_zp, act_min, act_max)
    st = _pair("stride", stride)
    p = _padding(padding)
    ho, wo = _out_hw(x3.shape[:2], (kh, kw), st, p)

    xs = x3.astype(np.int64) - zp
    xp = np.pad(xs, ((p[0], p[1]), (p[2], p[3]), (0, 0)))  # zeros == x_zp before the subtraction
    w64 = w.astype(np.int64)
    acc = np.zeros((ho * wo, cout), dtype=np.int64)
    for ky, kx, view in _taps(xp, (kh, kw), st, (ho, wo)):
        acc += view.reshape(ho * wo, cin) @ w64[:, ky, kx, :].T
    out = _finish(acc, b, m, s, ozp, lo, hi, single_rounding).reshape(ho, wo, cout)
    return out[None] if batched else out


def depthwise_conv2d(
    x: np.ndarray,
    x_zp: int,
    w: np.ndarray,
    bias: np.ndarray | None,
    out_zp: int,
    mult: Any,
    shift: Any,
    stride: Any = (1, 1),
    padding: Any = (0, 0, 0, 0),
    act_min: int = INT8_MIN,
    act_max: int = INT8_MAX,
    *,
    single_rounding: bool = False,
) -> np.ndarray:
    """Int8 depthwise convolution, depth multiplier 1: x (H, W, C), w (kH, kW, C) -> (Ho, Wo, C)."""
    x3, batched = _activation("x", x)
    zp = _zp("x_zp", x_zp)
    w = _int8_array("w", w, 3, "(kH, kW, C)")
    kh, kw, c = w.shape
    if c != x3.shape[2]:
        raise ValueError(f"w has {c} channels but x has {x3.shape[2]} (depth multiplier must be 1)")
    b, m, s, ozp, lo, hi = _output_stage(c, bias, mult, shift, out_zp, act_min, act_max)
    st = _pair("stride", stride)
    p = _padding(padding)
    ho, wo = _out_hw(x3.shape[:2], (kh, kw), st, p)

    xs = x3.astype(np.int64) - zp
    xp = np.pad(xs, ((p[0], p[1]), (p[2], p[3]), (0, 0)))
    w64 = w.astype(np.int64)
    acc = np.zeros((ho, wo, c), dtype=np.int64)
    for ky, kx, view in _taps(xp, (kh, kw), st, (ho, wo)):
        acc += view * w64[ky, kx]
    out = _finish(acc, b, m, s, ozp, lo, hi, single_rounding)
    return out[None] if batched else out


def fully_connected(
    x: np.ndarray,
    x_zp: int,
    w: np.ndarray,
    bias: np.ndarray | None,
    out_zp: int,
    mult: Any,
    shift: Any,
    act_min: int = INT8_MIN,
    act_max: int = INT8_MAX,
    *,
    single_rounding: bool = False,
) -> np.ndarray:
    """Int8 FULLY_CONNECTED: x (N,) or (B, N), w (out, N) -> (out,) or (B, out).

    ``mult``/``shift`` are scalars (TFLite per-tensor) or length ``out`` (per channel).
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.int8 or x.ndim not in (1, 2) or x.size == 0:
        desc = f"shape {x.shape} dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"x must be a non-empty int8 array of shape (N,) or (B, N) (got {desc})")
    zp = _zp("x_zp", x_zp)
    w = _int8_array("w", w, 2, "(out, in)")
    if w.shape[1] != x.shape[-1]:
        raise ValueError(f"w has {w.shape[1]} inputs but x has {x.shape[-1]}")
    nout = w.shape[0]
    b, m, s, ozp, lo, hi = _output_stage(nout, bias, mult, shift, out_zp, act_min, act_max)

    x2 = x.reshape(-1, x.shape[-1]).astype(np.int64) - zp
    acc = x2 @ w.astype(np.int64).T
    out = _finish(acc, b, m, s, ozp, lo, hi, single_rounding)
    return out.reshape(nout) if x.ndim == 1 else out


class AddParams(NamedTuple):
    """Fixed-point parameters of int8 ADD, as TFLM's CalculateOpDataAdd computes them."""

    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int


def _smaller_than_one(name: str, real: float) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp: requires 0 < real < 1 (shift <= 0)."""
    if not 0.0 < real < 1.0:
        raise ValueError(f"{name} real multiplier must be in (0, 1) (got {real!r})")
    return quantize_multiplier(real)


def add_params(a_scale: float, b_scale: float, out_scale: float) -> AddParams:
    """TFLM int8 ADD parameters from float32 scales (left_shift 20, inputs rescaled to 2*max scale)."""
    sa, sb, so = (np.float32(v) for v in (a_scale, b_scale, out_scale))
    for name, v in (("a_scale", sa), ("b_scale", sb), ("out_scale", so)):
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive finite float32 (got {v})")
    left_shift = 20
    twice_max = 2.0 * float(max(sa, sb))  # std::max on floats, then to double
    m1, s1 = _smaller_than_one("a_scale", float(sa) / twice_max)
    m2, s2 = _smaller_than_one("b_scale", float(sb) / twice_max)
    mo, so_ = _smaller_than_one("output (2*max(a_scale, b_scale) / (2**20 * out_scale))",
                                twice_max / ((1 << left_shift) * float(so)))
    return AddParams(left_shift, m1, s1, m2, s2, mo, so_)


def add(
    a: np.ndarray,
    a_zp: int,
    a_scale: float,
    b: np.ndarray,
    b_zp: int,
    b_scale: float,
    out_zp: int,
    out_scale: float,
    act_min: int = INT8_MIN,
    act_max: int = INT8_MAX,
    *,
    single_rounding: bool = False,
) -> np.ndarray:
    """Int8 elementwise ADD exactly as TFLM's reference (integer_ops/add.h AddFunc).

    With P = :func:`add_params`: ``va = (a - a_zp) << 20``, ``vb`` likewise;
    ``sa = MBQM(va, m1, s1)``, ``sb = MBQM(vb, m2, s2)`` (shifts <= 0, i.e.
    MultiplyByQuantizedMultiplierSmallerThanOneExp = RDBPOT(SRDHM(v, m), -s));
    ``out = clamp(MBQM(sa + sb, mo, so) + out_zp, act_min, act_max)``.
    ``a`` and ``b`` must have the same shape or broadcast (NumPy rules).
    """
    if not isinstance(a, np.ndarray) or a.dtype != np.int8:
        raise ValueError("a must be an int8 numpy array")
    if not isinstance(b, np.ndarray) or b.dtype != np.int8:
        raise ValueError("b must be an int8 numpy array")
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"a and b shapes do not broadcast: {a.shape} vs {b.shape}") from None
    za, zb, zo = _zp("a_zp", a_zp), _zp("b_zp", b_zp), _zp("out_zp", out_zp)
    lo, hi = _act(act_min, act_max)
    p = add_params(a_scale, b_scale, out_scale)
    mbqm = multiply_by_quantized_multiplier_single_rounding if single_rounding else multiply_by_quantized_multiplier
    va = (a.astype(np.int64) - za) << p.left_shift  # |v| <= 255 * 2**20: no int32 overflow
    vb = (b.astype(np.int64) - zb) << p.left_shift
    sa = np.asarray(mbqm(va, p.input1_multiplier, p.input1_shift), dtype=np.int64)
    sb = np.asarray(mbqm(vb, p.input2_multiplier, p.input2_shift), dtype=np.int64)
    raw = np.asarray(mbqm(wrap_int32(sa + sb), p.output_multiplier, p.output_shift), dtype=np.int64)
    return np.clip(wrap_int32(raw + zo), lo, hi).astype(np.int8)


def avg_pool2d(
    x: np.ndarray,
    kernel: Any,
    stride: Any = (1, 1),
    padding: Any = (0, 0, 0, 0),
    act_min: int = INT8_MIN,
    act_max: int = INT8_MAX,
) -> np.ndarray:
    """Int8 AVERAGE_POOL_2D (TFLM reference): input and output share scale and zero point.

    Each output is the sum of the valid (unpadded) taps divided by their count, rounded half
    away from zero in C integer arithmetic: ``(sum + count/2) / count`` for sum > 0, else
    ``(sum - count/2) / count`` (truncating division); then clamped.
    """
    x3, batched = _activation("x", x)
    k = _pair("kernel", kernel)
    st = _pair("stride", stride)
    p = _padding(padding)
    lo, hi = _act(act_min, act_max)
    ho, wo = _out_hw(x3.shape[:2], k, st, p)

    xp = np.pad(x3.astype(np.int64), ((p[0], p[1]), (p[2], p[3]), (0, 0)))
    valid = np.pad(np.ones(x3.shape[:2], dtype=np.int64), ((p[0], p[1]), (p[2], p[3])))
    total = np.zeros((ho, wo, x3.shape[2]), dtype=np.int64)
    count = np.zeros((ho, wo), dtype=np.int64)
    for _, _, view in _taps(xp, k, st, (ho, wo)):
        total += view
    for _, _, view in _taps(valid, k, st, (ho, wo)):
        count += view
    if np.any(count == 0):
        raise ValueError(f"padding {p} leaves a pooling window of kernel {k} with no input pixel")
    cnt = count[:, :, None]
    half = cnt // 2
    mag = (np.abs(total) + half) // cnt  # both non-negative: floor == C truncation
    avg = np.where(total > 0, mag, -mag)
    out = np.clip(avg, lo, hi).astype(np.int8)
    return out[None] if batched else out


def global_avg_pool(x: np.ndarray, act_min: int = INT8_MIN, act_max: int = INT8_MAX) -> np.ndarray:
    """Global average pool as AVERAGE_POOL_2D with kernel = (H, W): (H, W, C) -> (1, 1, C).

    Input and output share scale and zero point. (TFLM's MEAN op would requantise with its
    own multiplier; the engine deliberately lowers global pooling to AVERAGE_POOL_2D.)
    """
    x3, _ = _activation("x", x)
    h, w = x3.shape[:2]
    return avg_pool2d(x, (h, w), (1, 1), (0, 0, 0, 0), act_min, act_max)
