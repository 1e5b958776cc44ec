"""The C kernel conformance harness: random cases for every C kernel (seeded numpy, with the NumPy
reference's expected bytes), packed into records (firmware/test/te_case.h), host and Cortex-M driver
builds, and QEMU runs. Used by tests/test_kernels_c.py (the conformance tests) and by
benchmarks/kernel_instructions.py (instructions per kernel call): one helpers module, imported, never
loaded from a test file by path.
"""
from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tinyengine.ir.graph import Graph, Op, Tensor
from tinyengine.kernels.registry import (
    WINOGRAD_MAX_IN_C,  # = TE_WINOGRAD_MAX_IN_C in tinyengine.h
    planned_scratch_bytes,
    pointwise_add_scratch_bytes,
)
from tinyengine.numerics import kernels_ref as K
from tinyengine.numerics import kernels_ref_tflite as KT
from tinyengine.numerics.requant import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    quantize_multipliers,
    rdbpot,
    srdhm,
    wrap_int32,
)

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
KERNEL_SOURCES = sorted((FW / "src").glob("*.c"))
QEMU_RUNTIME = [FW / "qemu" / n for n in ("startup.c", "uart.c", "semihost.c", "timer.c")]

# ----------------------------------------------------------------------------------------------- records
# Mirror of firmware/test/te_case.h.
MAGIC = 0x31434554
HDR_WORDS = 48
FIELDS = [
    "magic", "op", "variant", "id",
    "in_h", "in_w", "in_c", "out_h", "out_w", "out_c",
    "k_h", "k_w", "stride_h", "stride_w", "pad_top", "pad_left", "pad_bottom", "pad_right",
    "in_zp", "out_zp", "act_min", "act_max",
    "n",
    "n_ch", "has_bias", "w_len", "u_len", "in_len", "in2_len", "out_len", "scratch_len", "buf_len",
    "b_zp", "a_mult", "a_shift", "b_mult", "b_shift", "out_mult", "out_shift", "left_shift",
    "expect_crc", "expect_rc",
    "add_out_zp", "add_act_min", "add_act_max",
]
FIELD_INDEX = {name: i for i, name in enumerate(FIELDS)}
OPS = {"requant": 0, "pointwise": 1, "im2col": 2, "winograd": 3, "dw_inplace": 4, "dw": 5, "add": 6,
       "avgpool": 7, "fc": 8, "maxpool": 9, "mean": 10, "softmax": 11, "pad": 12, "pointwise_w16": 13,
       "pw_add": 14}
OUT_SENTINEL = 0xA5  # bytes of an output buffer the kernel must leave alone


@dataclass
class Case:
    """One kernel call: header fields, arrays, and the reference output."""

    op: str
    desc: str
    hdr: dict = field(default_factory=dict)
    mult: np.ndarray | None = None
    shift: np.ndarray | None = None
    bias: np.ndarray | None = None
    w: bytes = b""
    u: np.ndarray | None = None
    inp: bytes = b""
    inp2: bytes = b""
    expected: bytes = b""
    expect_rc: int = 0
    macs: int = 0  # multiply-accumulates of the call (benchmarks)


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def pack(case: Case, case_id: int) -> bytes:
    """The binary record of ``case`` (expected CRC and return code included)."""
    h = [0] * HDR_WORDS
    vals = dict(case.hdr)
    n_ch = 0 if case.mult is None else len(case.mult)
    vals.update(
        magic=MAGIC, op=OPS[case.op], id=case_id, n_ch=n_ch, has_bias=int(case.bias is not None),
        w_len=len(case.w), u_len=0 if case.u is None else int(case.u.size), in_len=len(case.inp),
        in2_len=len(case.inp2), out_len=len(case.expected), expect_crc=zlib.crc32(case.expected),
        expect_rc=case.expect_rc,
    )
    for k, v in vals.items():
        h[FIELD_INDEX[k]] = int(v)
    out = struct.pack("<%dI" % HDR_WORDS, *[v & 0xFFFFFFFF for v in h])
    if n_ch:
        out += np.asarray(case.mult, dtype="<i4").tobytes() + np.asarray(case.shift, dtype="<i4").tobytes()
        if case.bias is not None:
            out += np.asarray(case.bias, dtype="<i4").tobytes()
    out += _pad4(case.w)
    if case.u is not None:
        out += np.asarray(case.u, dtype="<i4").tobytes()
    out += _pad4(case.inp) + _pad4(case.inp2)
    return out


def pack_all(cases: list[Case]) -> bytes:
    return b"".join(pack(c, i) for i, c in enumerate(cases))


def parse_outputs(blob: bytes) -> dict[int, tuple[int, bytes]]:
    """host_driver's output file -> {case id: (rc, output bytes)}."""
    res, off = {}, 0
    while off < len(blob):
        cid, rc, n = struct.unpack_from("<iiI", blob, off)
        off += 12
        res[cid] = (rc, blob[off:off + n])
        off += n
    return res


# ----------------------------------------------------------------------------------------------- planner
def planned_scratch(kind: str, in_shape, kernel, stride, padding, inplace: bool = False) -> int:
    """Scratch bytes the memory planner reserves for this op (the kernel registry's planned_scratch_bytes)."""
    x = Tensor("x", tuple(in_shape))
    y = Tensor("y", (1, 1, 1))
    op = Op("op", kind, ("x",), "y", attrs={"kernel": tuple(kernel), "stride": tuple(stride),
                                             "padding": tuple(padding)})
    g = Graph("g", {"x": x, "y": y}, [op], ["x"], ["y"])
    return planned_scratch_bytes(g, op, inplace)


# ----------------------------------------------------------------------------------------------- generators
def _i8(rng, shape, lo=-128, hi=127) -> np.ndarray:
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int64).astype(np.int8)


def _quant(rng, n: int, scale_range=(2.0**-20, 2.0**3)) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (mult, shift) from log-uniform effective scales: shifts from about -20 to +3."""
    lo, hi = np.log2(scale_range[0]), np.log2(scale_range[1])
    eff = 2.0 ** rng.uniform(lo, hi, size=n)
    m, s = quantize_multipliers(eff)
    return m.astype(np.int64), s.astype(np.int64)


def _bias(rng, n: int, wide: bool = False) -> np.ndarray | None:
    r = rng.random()
    if r < 0.1:
        return None
    if wide or r > 0.95:  # anything int32 (exercises the modulo-2^32 accumulator)
        return rng.integers(INT32_MIN, INT32_MAX + 1, size=n, dtype=np.int64)
    return rng.integers(-(1 << 18), 1 << 18, size=n, dtype=np.int64)


def _act(rng, out_zp: int) -> tuple[int, int]:
    r = rng.random()
    if r < 0.4:
        return -128, 127
    if r < 0.7:  # ReLU-like
        return max(-128, out_zp), 127
    lo = int(rng.integers(-128, 100))
    return lo, int(rng.integers(lo, 128))


def _zps(rng) -> tuple[int, int]:
    return int(rng.integers(-128, 128)), int(rng.integers(-128, 128))


def _common(rng, n_ch: int):
    in_zp, out_zp = _zps(rng)
    lo, hi = _act(rng, out_zp)
    mult, shift = _quant(rng, n_ch)
    return in_zp, out_zp, lo, hi, mult, shift


def requant_cases(rng, n: int) -> list[Case]:
    """te_requantize on random accumulators, multipliers and shifts over the full legal range."""
    acc = rng.integers(INT32_MIN, INT32_MAX + 1, size=n, dtype=np.int64)
    small = rng.random(n) < 0.5
    acc[small] = rng.integers(-(1 << 16), 1 << 16, size=int(small.sum()))
    mult = rng.integers(0, INT32_MAX + 1, size=n, dtype=np.int64)
    mult[: n // 4] = rng.integers(1 << 30, INT32_MAX + 1, size=n // 4)
    shift = rng.integers(-31, 31, size=n, dtype=np.int64)
    edges = [(INT32_MIN, INT32_MAX, 0), (INT32_MAX, INT32_MAX, 0), (INT32_MIN, 1 << 30, -31),
             (INT32_MAX, INT32_MAX, 30), (INT32_MIN, INT32_MAX, 30), (-1, 1 << 30, -1), (1, 1 << 30, -1),
             (-3, 1 << 30, -1), (3, 1 << 30, -1), (0, 0, 0), (-(1 << 20), INT32_MAX, -20),
             # the only SRDHM overflow: INT32_MIN * INT32_MIN saturates to INT32_MAX
             (INT32_MIN, INT32_MIN, 0), (INT32_MIN, INT32_MIN, -5), (INT32_MIN, INT32_MIN, 3)]
    for a, m, s in edges:
        acc = np.append(acc, a)
        mult = np.append(mult, m)
        shift = np.append(shift, s)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    exp = np.asarray(rdbpot(srdhm(wrap_int32(acc << left), mult), right), dtype="<i4")
    return [Case("requant", f"requant x{len(acc)}", hdr={"n": len(acc)}, mult=mult, shift=shift,
                 inp=acc.astype("<i4").tobytes(), expected=exp.tobytes())]


def pointwise_case(rng, n_pixels: int, in_c: int, out_c: int) -> Case:
    in_zp, out_zp, lo, hi, mult, shift = _common(rng, out_c)
    x = _i8(rng, (n_pixels, 1, in_c))
    w = _i8(rng, (out_c, 1, 1, in_c))
    b = _bias(rng, out_c)
    y = K.conv2d(x, in_zp, w, b, out_zp, mult, shift, 1, 0, lo, hi)
    hdr = dict(in_c=in_c, out_c=out_c, n=n_pixels, in_h=n_pixels, in_w=1, out_h=n_pixels, out_w=1, k_h=1, k_w=1,
               stride_h=1, stride_w=1, in_zp=in_zp, out_zp=out_zp, act_min=lo, act_max=hi,
               scratch_len=planned_scratch("conv2d", (n_pixels, 1, in_c), (1, 1), (1, 1), (0, 0, 0, 0)))
    return Case("pointwise", f"pointwise {n_pixels}px {in_c}->{out_c} zp={in_zp},{out_zp}", hdr, mult, shift, b,
                w.tobytes(), None, x.tobytes(), b"", y.tobytes(), macs=n_pixels * in_c * out_c)


def _conv_hdr(x_shape, out_shape, k, s, p, in_zp, out_zp, lo, hi):
    return dict(in_h=x_shape[0], in_w=x_shape[1], in_c=x_shape[2], out_h=out_shape[0], out_w=out_shape[1],
                out_c=out_shape[2], k_h=k[0], k_w=k[1], stride_h=s[0], stride_w=s[1], pad_top=p[0],
                pad_bottom=p[1], pad_left=p[2], pad_right=p[3], in_zp=in_zp, out_zp=out_zp, act_min=lo, act_max=hi)


def im2col_case(rng, h: int, w_: int, in_c: int, out_c: int, k, s, p) -> Case:
    in_zp, out_zp, lo, hi, mult, shift = _common(rng, out_c)
    x = _i8(rng, (h, w_, in_c))
    w = _i8(rng, (out_c, k[0], k[1], in_c))
    b = _bias(rng, out_c)
    y = K.conv2d(x, in_zp, w, b, out_zp, mult, shift, s, p, lo, hi)
    hdr = _conv_hdr(x.shape, y.shape, k, s, p, in_zp, out_zp, lo, hi)
    hdr["scratch_len"] = planned_scratch("conv2d", x.shape, k, s, p)
    return Case("im2col", f"im2col {h}x{w_}x{in_c}->{out_c} k{k} s{s} p{p}", hdr, mult, shift, b, w.tobytes(),
                None, x.tobytes(), b"", y.tobytes(), macs=int(np.prod(y.shape)) * k[0] * k[1] * in_c)


# Winograd F(2x2, 3x3) weight transform (the layout te_conv_winograd3x3_s8 reads; codegen/winograd.py).
G2 = np.array([[2, 0, 0], [1, 1, 1], [1, -1, 1], [0, 0, 2]], dtype=np.int64)


def winograd_weights(w_ohwi: np.ndarray) -> np.ndarray:
    """OHWI int8 (out_c, 3, 3, in_c) -> int32 U = G' g G'^T, layout (out_c, 4, 4, in_c)."""
    return np.einsum("iy,oyxc,jx->oijc", G2, w_ohwi.astype(np.int64), G2).astype(np.int32)


def winograd_case(rng, h: int, w_: int, in_c: int, out_c: int, p, variant: int = 0, x=None, w=None,
                  expect_reject: bool = False, in_zp=None) -> Case:
    """variant 0: U packed by Python; 1: U computed on the target by te_winograd3x3_weights."""
    zin, out_zp, lo, hi, mult, shift = _common(rng, out_c)
    in_zp = zin if in_zp is None else in_zp
    x = _i8(rng, (h, w_, in_c)) if x is None else x
    w = _i8(rng, (out_c, 3, 3, in_c)) if w is None else w
    b = _bias(rng, out_c)
    y = K.conv2d(x, in_zp, w, b, out_zp, mult, shift, 1, p, lo, hi)
    hdr = _conv_hdr(x.shape, y.shape, (3, 3), (1, 1), p, in_zp, out_zp, lo, hi)
    hdr["variant"] = variant
    hdr["scratch_len"] = planned_scratch("conv2d", x.shape, (3, 3), (1, 1), p)
    expected = bytes([OUT_SENTINEL]) * y.size if expect_reject else y.tobytes()
    return Case("winograd", f"winograd v{variant} {h}x{w_}x{in_c}->{out_c} p{p}", hdr, mult, shift, b,
                w.tobytes() if variant == 1 else b"", winograd_weights(w) if variant == 0 else None, x.tobytes(),
                b"", expected, -1 if expect_reject else 0, macs=int(np.prod(y.shape)) * 9 * in_c)


def dw_case(rng, h: int, w_: int, c: int, k, s, p, inplace: bool) -> Case:
    in_zp, out_zp, lo, hi, mult, shift = _common(rng, c)
    x = _i8(rng, (h, w_, c))
    w = _i8(rng, (k[0], k[1], c))
    b = _bias(rng, c)
    y = K.depthwise_conv2d(x, in_zp, w, b, out_zp, mult, shift, s, p, lo, hi)
    hdr = _conv_hdr(x.shape, y.shape, k, s, p, in_zp, out_zp, lo, hi)
    op = "dw_inplace" if inplace else "dw"
    if inplace:
        assert y.size <= x.size, "in-place depthwise needs out_h * out_w <= in_h * in_w"
        hdr["buf_len"] = max(x.size, y.size)  # the planner's shared buffer
        hdr["scratch_len"] = planned_scratch("depthwise_conv2d", x.shape, k, s, p, inplace=True)
    return Case(op, f"{op} {h}x{w_}x{c} k{k} s{s} p{p}", hdr, mult, shift, b, w.tobytes(), None, x.tobytes(), b"",
                y.tobytes(), macs=int(np.prod(y.shape)) * k[0] * k[1])


def add_case(rng, n: int, variant: int) -> Case:
    a, bb = _i8(rng, (n,)), _i8(rng, (n,))
    a_zp, b_zp = _zps(rng)
    out_zp = int(rng.integers(-128, 128))
    sa, sb = (float(np.float32(2.0 ** rng.uniform(-8, 0))) for _ in range(2))
    so = float(np.float32(max(sa, sb) * 2.0 ** rng.uniform(-1, 2)))
    lo, hi = _act(rng, out_zp)
    y = K.add(a, a_zp, sa, bb, b_zp, sb, out_zp, so, lo, hi)
    p = K.add_params(sa, sb, so)
    hdr = dict(variant=variant, n=n, in_zp=a_zp, b_zp=b_zp, out_zp=out_zp, act_min=lo, act_max=hi,
               a_mult=p.input1_multiplier, a_shift=p.input1_shift, b_mult=p.input2_multiplier,
               b_shift=p.input2_shift, out_mult=p.output_multiplier, out_shift=p.output_shift,
               left_shift=p.left_shift)
    return Case("add", f"add n={n} v{variant}", hdr, inp=a.tobytes(), inp2=bb.tobytes(), expected=y.tobytes())


def add_case_raw(rng, n: int, a_mult: int, a_shift: int, b_mult: int, b_shift: int, out_mult: int, out_shift: int,
                 variant: int = 0) -> Case:
    """ADD with explicit fixed-point parameters (covers the kernel's general requantisation path)."""
    a, bb = _i8(rng, (n,)), _i8(rng, (n,))
    a_zp, b_zp = _zps(rng)
    out_zp = int(rng.integers(-128, 128))
    lo, hi = _act(rng, out_zp)
    va = (a.astype(np.int64) - a_zp) << 20
    vb = (bb.astype(np.int64) - b_zp) << 20
    sa = np.asarray(multiply_by_quantized_multiplier(va, a_mult, a_shift), dtype=np.int64)
    sb = np.asarray(multiply_by_quantized_multiplier(vb, b_mult, b_shift), dtype=np.int64)
    raw = np.asarray(multiply_by_quantized_multiplier(wrap_int32(sa + sb), out_mult, out_shift), dtype=np.int64)
    y = np.clip(wrap_int32(raw + out_zp), lo, hi).astype(np.int8)
    hdr = dict(variant=variant, n=n, in_zp=a_zp, b_zp=b_zp, out_zp=out_zp, act_min=lo, act_max=hi, a_mult=a_mult,
               a_shift=a_shift, b_mult=b_mult, b_shift=b_shift, out_mult=out_mult, out_shift=out_shift, left_shift=20)
    return Case("add", f"add raw n={n} shifts {a_shift},{b_shift},{out_shift}", hdr, inp=a.tobytes(),
                inp2=bb.tobytes(), expected=y.tobytes())


def pw_add_case(rng, n: int, in_c: int, out_c: int, variant: int = 0, *, full: bool = True, rq: bool = True,
                raw: tuple | None = None) -> Case:
    """te_conv_pointwise_add_s8: a pointwise projection (shifts in the folded form when ``rq``, any
    otherwise; full clamps when ``full``, random ones otherwise) summed with a residual by TFLM's ADD
    (parameters from float scales, or ``raw`` = (a_mult, a_shift, b_mult, b_shift, out_mult, out_shift)).
    variant 1 writes the output over the residual. Expected: the two reference kernels composed."""
    in_zp, mid_zp = _zps(rng)
    if rq:
        m, sh = (a.astype(np.int64) for a in quantize_multipliers(2.0 ** rng.uniform(-20, -3, size=out_c)))
    else:
        m, sh = _quant(rng, out_c)
    lo, hi = (-128, 127) if full else _act(rng, mid_zp)
    x = _i8(rng, (n, 1, in_c))
    w = _i8(rng, (out_c, 1, 1, in_c))
    b = rng.integers(-(1 << 16), 1 << 16, size=out_c, dtype=np.int64) if full else _bias(rng, out_c)
    mid = K.conv2d(x, in_zp, w, b, mid_zp, m, sh, 1, 0, lo, hi)
    res = _i8(rng, (n, 1, out_c))
    res_zp, out_zp = _zps(rng)
    alo, ahi = (-128, 127) if full else _act(rng, out_zp)
    if raw is None:
        s_mid, s_res = (float(np.float32(2.0 ** rng.uniform(-8, 0))) for _ in range(2))
        s_out = float(np.float32(max(s_mid, s_res) * 2.0 ** rng.uniform(-1, 2)))
        y = K.add(mid, mid_zp, s_mid, res, res_zp, s_res, out_zp, s_out, alo, ahi)
        p = K.add_params(s_mid, s_res, s_out)
        raw = (p.input1_multiplier, p.input1_shift, p.input2_multiplier, p.input2_shift, p.output_multiplier,
               p.output_shift)
    else:
        va = (mid.astype(np.int64) - mid_zp) << 20
        vb = (res.astype(np.int64) - res_zp) << 20
        sa = np.asarray(multiply_by_quantized_multiplier(va, raw[0], raw[1]), dtype=np.int64)
        sb = np.asarray(multiply_by_quantized_multiplier(vb, raw[2], raw[3]), dtype=np.int64)
        r = np.asarray(multiply_by_quantized_multiplier(wrap_int32(sa + sb), raw[4], raw[5]), dtype=np.int64)
        y = np.clip(wrap_int32(r + out_zp), alo, ahi).astype(np.int8)
    hdr = dict(variant=variant, in_c=in_c, out_c=out_c, n=n, in_h=n, in_w=1, out_h=n, out_w=1, k_h=1, k_w=1,
               stride_h=1, stride_w=1, in_zp=in_zp, out_zp=mid_zp, act_min=lo, act_max=hi, b_zp=res_zp,
               a_mult=raw[0], a_shift=raw[1], b_mult=raw[2], b_shift=raw[3], out_mult=raw[4], out_shift=raw[5],
               left_shift=20, add_out_zp=out_zp, add_act_min=alo, add_act_max=ahi,
               scratch_len=pointwise_add_scratch_bytes(in_c, out_c))
    return Case("pw_add", f"pw_add v{variant} {n}px {in_c}->{out_c} full={full} rq={rq} raw={raw}", hdr, m, sh, b,
                w.tobytes(), None, x.tobytes(), res.tobytes(), y.tobytes(), macs=n * in_c * out_c)


def pw_add_cases(rng) -> list[Case]:
    """The fused projection + add: the folded paths (asm and C loops, the projection as the ADD's half
    input or the other one, one and several channel chunks, odd pixels and channels), in place over the
    residual, clamps inside int8 and projections outside the folded form (the general pixel-pair path),
    and ADD parameters that do not fold (te_add_s8's arithmetic)."""
    cs = []
    shapes = ((6, 16, 8), (5, 24, 7), (4, 32, 33), (7, 8, 5), (3, 48, 16), (8, 96, 24), (2, 20, 70), (1, 40, 3),
              (9, 12, 40), (5, 6, 5), (4, 3, 2))
    for i, (n, ci, co) in enumerate(shapes):
        cs.append(pw_add_case(rng, n, ci, co, i % 2))
        cs.append(pw_add_case(rng, n, ci, co, (i + 1) % 2))
    for n, ci, co in ((5, 16, 8), (4, 24, 9), (3, 7, 6)):
        for v in (0, 1):
            cs.append(pw_add_case(rng, n, ci, co, v, full=False))
            cs.append(pw_add_case(rng, n, ci, co, v, rq=False))
    for raw in ((1 << 30, 0, 1518500250, -1, 1 << 30, -2), (2147483647, -19, 1 << 30, 0, 1 << 30, -23),
                (1300000000, -1, 1700000000, -3, 1500000000, -17), (1 << 30, 0, 1 << 30, -1, 1 << 30, -24),
                (1 << 30, 0, 1 << 30, -1, 1 << 30, -1)):
        for v in (0, 1):
            cs.append(pw_add_case(rng, 5, 16, 12, v, raw=raw))
    return cs


def pool_case(rng, h: int, w_: int, c: int, k, s, p) -> Case:
    x = _i8(rng, (h, w_, c))
    lo, hi = _act(rng, int(rng.integers(-128, 128)))
    y = K.avg_pool2d(x, k, s, p, lo, hi)
    hdr = _conv_hdr(x.shape, y.shape, k, s, p, 0, 0, lo, hi)
    return Case("avgpool", f"avgpool {h}x{w_}x{c} k{k} s{s} p{p}", hdr, inp=x.tobytes(), expected=y.tobytes())


def fc_case(rng, in_n: int, out_n: int) -> Case:
    in_zp, out_zp, lo, hi, mult, shift = _common(rng, out_n)
    x = _i8(rng, (in_n,))
    w = _i8(rng, (out_n, in_n))
    b = _bias(rng, out_n)
    y = K.fully_connected(x, in_zp, w, b, out_zp, mult, shift, lo, hi)
    hdr = dict(n=in_n, in_c=in_n, out_c=out_n, in_zp=in_zp, out_zp=out_zp, act_min=lo, act_max=hi)
    return Case("fc", f"fc {in_n}->{out_n}", hdr, mult, shift, b, w.tobytes(), None, x.tobytes(), b"",
                y.tobytes(), macs=in_n * out_n)


def _random_padding(rng, k, limit_total: bool) -> tuple[int, int, int, int]:
    """Explicit (top, bottom, left, right) padding; totals <= k - 1 when ``limit_total``."""
    out = []
    for kk in k:
        tot = int(rng.integers(0, kk)) if limit_total else int(rng.integers(0, kk + 1))
        a = int(rng.integers(0, tot + 1))
        out += [a, tot - a]
    return out[0], out[1], out[2], out[3]


def _valid_out(h, w, k, s, p) -> bool:
    return K.conv_output_size(h, k[0], s[0], p[0], p[1]) >= 1 and K.conv_output_size(w, k[1], s[1], p[2], p[3]) >= 1


def random_cases(seed: int = 1234, scale: int = 1) -> list[Case]:
    """The host conformance batch: every kernel over random shapes, zero points, requant and clamps."""
    rng = np.random.default_rng(seed)
    cases: list[Case] = []
    cases += requant_cases(rng, 3000)
    for _ in range(60 * scale):  # pointwise: odd/even pixel and channel counts, in_c % 4 = 0..3
        cases.append(pointwise_case(rng, int(rng.integers(1, 24)), int(rng.integers(1, 70)),
                                    int(rng.integers(1, 24))))
    cases.append(pointwise_case(rng, 37, 96, 17))
    for _ in range(60 * scale):  # im2col: any k, stride, padding
        k = (int(rng.choice([1, 2, 3, 5, 7])),) * 2 if rng.random() < 0.8 else \
            (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        s = (int(rng.integers(1, 4)),) * 2 if rng.random() < 0.8 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        h, w_ = int(rng.integers(1, 13)), int(rng.integers(1, 13))
        p = K.same_padding((h, w_), k, s) if rng.random() < 0.5 else _random_padding(rng, k, False)
        if _valid_out(h, w_, k, s, p):
            cases.append(im2col_case(rng, h, w_, int(rng.integers(1, 13)), int(rng.integers(1, 20)), k, s, p))
    # the stem: 3x3 stride 2 on an even RGB input (SAME padding = (0, 1, 0, 1))
    cases.append(im2col_case(rng, 16, 16, 3, 16, (3, 3), (2, 2), K.same_padding((16, 16), (3, 3), (2, 2))))
    cases.append(im2col_case(rng, 9, 8, 8, 7, (3, 3), (1, 1), (1, 1, 1, 1)))
    for _ in range(30 * scale):  # winograd: 3x3 stride 1, odd outputs, asymmetric padding
        h, w_ = int(rng.integers(1, 12)), int(rng.integers(1, 12))
        p = (1, 1, 1, 1) if rng.random() < 0.5 else _random_padding(rng, (3, 3), False)
        if _valid_out(h, w_, (3, 3), (1, 1), p):
            cases.append(winograd_case(rng, h, w_, int(rng.integers(1, 40)), int(rng.integers(1, 20)), p,
                                       variant=int(rng.integers(0, 2))))
    for inplace in (True, False):  # depthwise k 3/5/7 (and a few others), stride 1/2
        for _ in range(50 * scale):
            k = (int(rng.choice([3, 5, 7])),) * 2 if rng.random() < 0.85 else \
                (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
            s = (int(rng.choice([1, 2])),) * 2
            h, w_ = int(rng.integers(1, 20)), int(rng.integers(1, 20))
            p = K.same_padding((h, w_), k, s) if rng.random() < 0.6 else _random_padding(rng, k, True)
            if not _valid_out(h, w_, k, s, p):
                continue
            ho = K.conv_output_size(h, k[0], s[0], p[0], p[1])
            wo = K.conv_output_size(w_, k[1], s[1], p[2], p[3])
            if inplace and ho * wo > h * w_:
                continue
            cases.append(dw_case(rng, h, w_, int(rng.integers(1, 40)), k, s, p, inplace))
    for _ in range(20 * scale):
        cases.append(add_case(rng, int(rng.integers(1, 300)), int(rng.integers(0, 3))))
    for shifts in ((0, -1, -1), (-1, 0, 0), (-3, -2, 1), (0, 0, -12), (-2, -5, -1)):  # general requant path
        m = [int(v) for v in rng.integers(1 << 30, INT32_MAX, size=3)]
        cases.append(add_case_raw(rng, int(rng.integers(1, 100)), m[0], shifts[0], m[1], shifts[1], m[2], shifts[2],
                                  int(rng.integers(0, 3))))
    for _ in range(25 * scale):
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        s = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        h, w_ = int(rng.integers(1, 12)), int(rng.integers(1, 12))
        p = (int(rng.integers(0, k[0])), int(rng.integers(0, k[0])), int(rng.integers(0, k[1])),
             int(rng.integers(0, k[1])))
        if _valid_out(h, w_, k, s, p):
            cases.append(pool_case(rng, h, w_, int(rng.integers(1, 20)), k, s, p))
    for h, w_, c in ((7, 7, 32), (1, 1, 5), (3, 5, 160)):  # global average pool
        cases.append(pool_case(rng, h, w_, c, (h, w_), (1, 1), (0, 0, 0, 0)))
    for _ in range(25 * scale):
        cases.append(fc_case(rng, int(rng.integers(1, 300)), int(rng.integers(1, 40))))
    return cases


def winograd_bound_cases(rng) -> list[Case]:
    """Winograd at TE_WINOGRAD_MAX_IN_C with the worst-case data (every |U V| product and |4 S| at
    their maxima: x - in_zp = -255 everywhere, all weights -128), and one channel more (rejected)."""
    n = WINOGRAD_MAX_IN_C
    x = np.full((4, 4, n), -128, dtype=np.int8)  # one 2x2 output tile, every tap inside the input
    w = np.full((2, 3, 3, n), -128, dtype=np.int8)
    cases = [winograd_case(rng, 4, 4, n, 2, (0, 0, 0, 0), v, x=x, w=w, in_zp=127) for v in (0, 1)]
    cases.append(winograd_case(rng, 3, 3, n + 1, 1, (1, 1, 1, 1), 0, expect_reject=True))
    return cases


# ------------------------------------------------------------------ ops of imported .tflite models
def maxpool_case(rng, h: int, w_: int, c: int, k, s, p) -> Case:
    x = _i8(rng, (h, w_, c))
    lo, hi = _act(rng, int(rng.integers(-128, 128)))
    y = KT.max_pool2d(x, k, s, p, lo, hi)
    hdr = _conv_hdr(x.shape, y.shape, k, s, p, 0, 0, lo, hi)
    return Case("maxpool", f"maxpool {h}x{w_}x{c} k{k} s{s} p{p}", hdr, inp=x.tobytes(), expected=y.tobytes())


def mean_case(rng, h: int, w_: int, c: int) -> Case:
    x = _i8(rng, (h, w_, c))
    in_zp, out_zp = _zps(rng)
    s_in = float(np.float32(2.0 ** rng.uniform(-8, 0)))
    s_out = float(np.float32(s_in * 2.0 ** rng.uniform(-3, 2)))
    p = KT.mean_params(s_in, in_zp, s_out, out_zp, h * w_)
    y = KT.mean_hw(x, in_zp, out_zp, p)
    hdr = dict(n=h * w_, in_c=c, in_zp=in_zp, out_zp=out_zp, out_mult=p.mult, out_shift=p.shift)
    return Case("mean", f"mean {h}x{w_}x{c}", hdr, inp=x.tobytes(), expected=y.tobytes())


def softmax_case(rng, rows: int, depth: int, in_scale: float | None = None) -> Case:
    x = _i8(rng, (rows, depth))
    if rng.random() < 0.3:  # a narrow spread: many inputs near the maximum
        x = (x // 16).astype(np.int8)
    scale = float(np.float32(2.0 ** rng.uniform(-9, 0))) if in_scale is None else in_scale
    p = KT.softmax_params(1.0, scale)
    y = KT.softmax(x, p)
    hdr = dict(in_h=rows, n=depth, a_mult=p.input_multiplier, a_shift=p.input_left_shift, b_mult=p.diff_min)
    return Case("softmax", f"softmax {rows}x{depth} s_in={scale:g}", hdr, inp=x.tobytes(), expected=y.tobytes())


def pad_case(rng, h: int, w_: int, c: int, p) -> Case:
    x = _i8(rng, (h, w_, c))
    zp = int(rng.integers(-128, 128))
    y = K.pad(x, p, zp)
    hdr = _conv_hdr(x.shape, y.shape, (1, 1), (1, 1), p, zp, zp, -128, 127)
    return Case("pad", f"pad {h}x{w_}x{c} p{p}", hdr, inp=x.tobytes(), expected=y.tobytes())


def tflite_op_cases(rng, scale: int = 1) -> list[Case]:
    """MAX_POOL_2D (SAME/VALID, any k/stride), MEAN over H x W and SOFTMAX (any scale, 1..300 classes)."""
    cs = []
    for _ in range(20 * scale):
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        st = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        h, w_ = int(rng.integers(1, 12)), int(rng.integers(1, 12))
        p = K.same_padding((h, w_), k, st) if rng.random() < 0.5 else (0, 0, 0, 0)
        if _valid_out(h, w_, k, st, p):
            cs.append(maxpool_case(rng, h, w_, int(rng.integers(1, 20)), k, st, p))
    for _ in range(10 * scale):
        cs.append(mean_case(rng, int(rng.integers(1, 12)), int(rng.integers(1, 12)), int(rng.integers(1, 70))))
    for _ in range(15 * scale):
        cs.append(softmax_case(rng, int(rng.integers(1, 4)), int(rng.integers(1, 300))))
    cs.append(softmax_case(rng, 1, 10, 1.0))  # large scale: most differences fall below diff_min
    for _ in range(8 * scale):
        cs.append(pad_case(rng, int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 9)),
                           tuple(int(v) for v in rng.integers(0, 3, size=4))))
    return cs


# ----------------------------------------------------------------------------------------------- builds
HOST_WARN = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wconversion", "-Wshadow", "-pedantic"]
SANITIZE = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
HOST_VARIANTS = {
    "strict": ["-O2"],
    "asan": SANITIZE,
    "dsp": ["-O2", "-DTE_USE_DSP", "-DTE_DSP_EMULATE"],
    "dsp-asan": SANITIZE + ["-DTE_USE_DSP", "-DTE_DSP_EMULATE"],
}
ARM_CPUS = {
    "cortex-m4": ["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
    "cortex-m7": ["-mcpu=cortex-m7", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"],
    "cortex-m3": ["-mcpu=cortex-m3"],
    "cortex-m0plus": ["-mcpu=cortex-m0plus"],
}
BOARDS = {  # QEMU machine -> (linker script, cpu flags); M4/M7 run the DSP path, the M3 the portable one
    "mps2-an386": ("mps2-an386.ld", ARM_CPUS["cortex-m4"] + ["-DTE_USE_DSP"]),
    "mps2-an500": ("mps2-an500.ld", ARM_CPUS["cortex-m7"] + ["-DTE_USE_DSP"]),
    "mps2-an385": ("mps2-an385.ld", ARM_CPUS["cortex-m3"]),
}


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"command failed ({p.returncode}): {' '.join(map(str, cmd))}\n{p.stdout}\n{p.stderr}")
    return p


def build_host_driver(out: Path, flags: list[str]) -> Path:
    srcs = KERNEL_SOURCES + [FW / "test" / "te_case.c", FW / "test" / "host_driver.c"]
    run(["gcc", *HOST_WARN, *flags, f"-I{FW / 'include'}", f"-I{FW / 'test'}", *srcs, "-o", out])
    return out


def require_tool(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"'{tool}' not found on PATH: install the Debian package '{package}' "
                    f"(apt-get install {package}); scripts/setup.sh does this when run as root")
    return path


def require_arm_toolchain() -> None:
    require_tool("arm-none-eabi-gcc", "gcc-arm-none-eabi")
    p = subprocess.run(["arm-none-eabi-gcc", "-print-file-name=nano.specs"], capture_output=True, text=True)
    if not os.path.isabs(p.stdout.strip()):
        pytest.fail("newlib for arm-none-eabi is missing: install the Debian package 'libnewlib-arm-none-eabi'")


def write_cases_c(blob: bytes, path: Path) -> None:
    """The records as a const C array (in flash on the board)."""
    lines = ["/* generated by tests/test_kernels_c.py: kernel conformance records (te_case.h) */",
             "#include <stdint.h>",
             f"const uint32_t te_cases_blob_len = {len(blob)}u;",
             "const uint8_t te_cases_blob[] __attribute__((aligned(8))) = {"]
    for i in range(0, len(blob), 32):
        lines.append(",".join(str(b) for b in blob[i:i + 32]) + ",")
    lines.append("};")
    path.write_text("\n".join(lines) + "\n")


def build_firmware(board: str, cases_c: Path, out: Path, extra: list[str] | None = None) -> Path:
    """Kernels + QEMU runtime + qemu_driver + the cases, linked for ``board`` (-O2, -Werror)."""
    ld, cpu = BOARDS[board]
    srcs = KERNEL_SOURCES + QEMU_RUNTIME + [FW / "test" / "te_case.c", FW / "test" / "qemu_driver.c", cases_c]
    run(["arm-none-eabi-gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-mthumb", *cpu, *(extra or []),
         "-ffunction-sections", "-fdata-sections", f"-I{FW / 'include'}", f"-I{FW / 'qemu'}", f"-I{FW / 'test'}",
         *srcs, "-nostartfiles", "-specs=nano.specs", f"-L{FW / 'qemu'}", "-T", ld, "-Wl,--gc-sections",
         f"-Wl,-Map={out.with_suffix('.map')}", "-o", out])
    return out


MODEL_MAIN = r"""
#include <stdint.h>
#include "model.h"
#include "uart.h"
static const int8_t input[TE_INPUT_BYTES] = {%s};
int main(void)
{
    static int8_t out[TE_OUTPUT_BYTES];
    if (te_model_check() != 0) {
        uart_puts("SCRATCH\n");
        return 3;
    }
    int rc = te_model_run(input, out);
    uart_puts("OUT ");
    for (int i = 0; i < TE_OUTPUT_BYTES; i++) uart_put_hex8((uint8_t)out[i]);
    uart_puts(" RC ");
    uart_put_i32(rc);
    uart_puts("\n");
    return 0;
}
"""
M4_DSP = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-DTE_USE_DSP"]


def run_model_qemu_m4(project, x: np.ndarray, work: Path) -> np.ndarray:
    """A generated project (model.c, weights.c, its kernel sources, specialised copies included) linked
    with the QEMU runtime for the Cortex-M4 DSP path (-O2 -Werror) and run on mps2-an386 with input ``x``:
    the output bytes. Fails the test when QEMU, te_model_check or te_model_run do not succeed."""
    rt, src = FW / "qemu", project.root / "src"
    main_c, elf = work / "main.c", work / "fw.elf"
    main_c.write_text(MODEL_MAIN % ",".join(map(str, np.asarray(x).reshape(-1).tolist())))
    run(["arm-none-eabi-gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", *M4_DSP, "-ffunction-sections",
         "-fdata-sections", f"-I{src}", f"-I{rt}", main_c, src / "model.c", src / "weights.c",
         *(project.root / k for k in project.kernel_sources), *QEMU_RUNTIME,
         "-nostartfiles", f"-L{rt}", "-T", rt / "mps2-an386.ld", "-Wl,--gc-sections", "-o", elf], timeout=600)
    r = subprocess.run(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-semihosting-config",
                        "enable=on,target=native", "-kernel", str(elf)], capture_output=True, text=True, timeout=120)
    m = re.search(r"OUT ([0-9a-f]*) RC (-?\d+)", r.stdout)
    assert r.returncode == 0 and m and m.group(2) == "0", f"QEMU exit {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return np.frombuffer(bytes.fromhex(m.group(1)), np.int8)


@dataclass
class QemuResult:
    lines: dict[int, dict]  # case id -> {rc, out_len, crc, ticks, ok, hex}
    overhead_ticks: int
    done: tuple[int, int]
    returncode: int
    output: str


def run_qemu(board: str, elf: Path, shift: int = 0, timeout: float = 120) -> QemuResult:
    cmd = ["qemu-system-arm", "-M", board, "-nographic", "-semihosting-config", "enable=on,target=native",
           "-icount", f"shift={shift}", "-kernel", str(elf)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines, overhead, done, last = {}, 0, (-1, -1), None
    for line in p.stdout.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "T":
            overhead = int(f[1])
        elif f[0] == "C":
            last = int(f[1])
            lines[last] = dict(rc=int(f[2]), out_len=int(f[3]), crc=int(f[4], 16), ticks=int(f[5]), ok=f[6] == "ok")
        elif f[0] == "X" and last is not None:
            lines[last]["hex"] = f[1] if len(f) > 1 else ""
        elif f[0] == "DONE":
            done = (int(f[1]), int(f[2]))
    return QemuResult(lines, overhead, done, p.returncode, p.stdout + p.stderr)


# ----------------------------------------------------------------------------------------------- fixtures
def _first_difference(got: bytes, exp: bytes) -> str:
    if len(got) != len(exp):
        return f"length {len(got)} != {len(exp)}"
    i = next(i for i in range(len(got)) if got[i] != exp[i])
    return f"first difference at byte {i}: got {got[i]}, expected {exp[i]} ({sum(a != b for a, b in zip(got, exp))} bytes differ)"
