"""Reference int8 kernels against slow loop oracles, against float math, and on hand cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from c_oracles import c_div, c_mbqm_single, c_quantize_multiplier, c_rdbpot, c_srdhm
from c_oracles import c_mbqm as c_mbqm_double
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyengine.numerics.kernels_ref import (
    add,
    add_params,
    avg_pool2d,
    conv2d,
    depthwise_conv2d,
    fully_connected,
    global_avg_pool,
    pad,
    same_padding,
)
from tinyengine.numerics.requant import effective_scales, quantize_multipliers

SETTINGS = settings(max_examples=60, deadline=None)
# derandomized: the same 30 examples every run, so CI cannot turn red on a draw no earlier run made
# (the "nearly all correctly rounded" check below is statistical for small outputs)
FEW = settings(max_examples=30, deadline=None, derandomize=True)
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


# ----------------------------------------------------------------- scalar C-literal arithmetic (Python ints)


def c_mbqm(acc: int, m: int, shift: int, single: bool = False) -> int:
    return (c_mbqm_single if single else c_mbqm_double)(acc, m, shift)


def c_clamp(v: int, lo: int, hi: int) -> int:
    return min(hi, max(lo, v))


def c_quantize_multiplier_lt1(real: float) -> tuple[int, int]:
    return c_quantize_multiplier(real)  # round half away == floor(x + 0.5) for the positive mantissa


def channel(v, o):
    a = np.asarray(v)
    return int(a) if a.ndim == 0 else int(a[o])


# ----------------------------------------------------------------- loop oracles


def out_size(n, k, s, p0, p1):
    return (n + p0 + p1 - k) // s + 1


def loop_conv(x, x_zp, w, bias, out_zp, mult, shift, stride, padding, lo, hi, single=False):
    H, W, C = x.shape
    O, KH, KW, _ = w.shape
    t, b, l, r = padding
    sh, sw = stride
    Ho, Wo = out_size(H, KH, sh, t, b), out_size(W, KW, sw, l, r)
    xl, wl = x.tolist(), w.tolist()
    out = np.zeros((Ho, Wo, O), dtype=np.int8)
    for oy in range(Ho):
        for ox in range(Wo):
            for o in range(O):
                acc = int(bias[o])
                for ky in range(KH):
                    iy = oy * sh - t + ky
                    if not 0 <= iy < H:
                        continue  # padded tap: contributes nothing
                    for kx in range(KW):
                        ix = ox * sw - l + kx
                        if not 0 <= ix < W:
                            continue
                        for c in range(C):
                            acc += wl[o][ky][kx][c] * (xl[iy][ix][c] - x_zp)
                v = c_mbqm(acc, channel(mult, o), channel(shift, o), single) + out_zp
                out[oy, ox, o] = c_clamp(v, lo, hi)
    return out


def loop_depthwise(x, x_zp, w, bias, out_zp, mult, shift, stride, padding, lo, hi, single=False):
    H, W, C = x.shape
    KH, KW, _ = w.shape
    t, b, l, r = padding
    sh, sw = stride
    Ho, Wo = out_size(H, KH, sh, t, b), out_size(W, KW, sw, l, r)
    xl, wl = x.tolist(), w.tolist()
    out = np.zeros((Ho, Wo, C), dtype=np.int8)
    for oy in range(Ho):
        for ox in range(Wo):
            for c in range(C):
                acc = int(bias[c])
                for ky in range(KH):
                    for kx in range(KW):
                        iy, ix = oy * sh - t + ky, ox * sw - l + kx
                        if 0 <= iy < H and 0 <= ix < W:
                            acc += wl[ky][kx][c] * (xl[iy][ix][c] - x_zp)
                v = c_mbqm(acc, channel(mult, c), channel(shift, c), single) + out_zp
                out[oy, ox, c] = c_clamp(v, lo, hi)
    return out


def loop_fc(x, x_zp, w, bias, out_zp, mult, shift, lo, hi):
    xl, wl = x.reshape(-1).tolist(), w.tolist()
    out = []
    for o in range(w.shape[0]):
        acc = int(bias[o]) + sum(wl[o][i] * (xl[i] - x_zp) for i in range(len(xl)))
        out.append(c_clamp(c_mbqm(acc, channel(mult, o), channel(shift, o)) + out_zp, lo, hi))
    return np.array(out, dtype=np.int8)


def loop_avg_pool(x, kernel, stride, padding, lo, hi):
    H, W, C = x.shape
    (KH, KW), (sh, sw), (t, b, l, r) = kernel, stride, padding
    Ho, Wo = out_size(H, KH, sh, t, b), out_size(W, KW, sw, l, r)
    out = np.zeros((Ho, Wo, C), dtype=np.int8)
    for oy in range(Ho):
        for ox in range(Wo):
            for c in range(C):
                acc, count = 0, 0
                for ky in range(KH):
                    for kx in range(KW):
                        iy, ix = oy * sh - t + ky, ox * sw - l + kx
                        if 0 <= iy < H and 0 <= ix < W:
                            acc += int(x[iy, ix, c])
                            count += 1
                acc = c_div(acc + count // 2, count) if acc > 0 else c_div(acc - count // 2, count)
                out[oy, ox, c] = c_clamp(acc, lo, hi)
    return out


def loop_add(a, a_zp, a_scale, b, b_zp, b_scale, out_zp, out_scale, lo, hi):
    sa, sb, so = (float(np.float32(v)) for v in (a_scale, b_scale, out_scale))
    twice_max = 2 * max(sa, sb)
    m1, s1 = c_quantize_multiplier_lt1(sa / twice_max)
    m2, s2 = c_quantize_multiplier_lt1(sb / twice_max)
    mo, so_ = c_quantize_multiplier_lt1(twice_max / ((1 << 20) * so))
    aa, bb = np.broadcast_arrays(a, b)
    out = np.zeros(aa.shape, dtype=np.int8)
    for idx in np.ndindex(aa.shape):
        v1 = (int(aa[idx]) - a_zp) * (1 << 20)
        v2 = (int(bb[idx]) - b_zp) * (1 << 20)
        r1 = c_rdbpot(c_srdhm(v1, m1), -s1)
        r2 = c_rdbpot(c_srdhm(v2, m2), -s2)
        raw = c_rdbpot(c_srdhm(r1 + r2, mo), -so_) + out_zp
        out[idx] = c_clamp(raw, lo, hi)
    return out


# ----------------------------------------------------------------- random cases


@st.composite
def window_case(draw, max_hw=8):
    kh = draw(st.sampled_from([1, 3, 5, 7]))
    kw = draw(st.sampled_from([kh, kh, 1, 3, 5, 7]))
    stride = (draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 2])))
    H, W = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    mode = draw(st.sampled_from(["same", "valid", "random"]))
    if mode == "same":
        padding = same_padding((H, W), (kh, kw), stride)
    elif mode == "valid":
        padding = (0, 0, 0, 0)
    else:  # asymmetric, anything up to k - 1 on each side
        padding = tuple(draw(st.integers(0, k - 1)) for k in (kh, kh, kw, kw))
    H = max(H, kh - padding[0] - padding[1])
    W = max(W, kw - padding[2] - padding[3])
    return (H, W), (kh, kw), stride, padding


def random_requant(rng, n, s_in, s_w_max):
    """Per-channel (mult, shift) from random float scales, sometimes per-tensor scalars."""
    s_w = rng.uniform(0.1, 1.0, size=n) * s_w_max
    s_out = s_in * s_w_max * 10 ** rng.uniform(-0.6, 4)  # effective scales ~1e-5 .. ~4 (left shifts too)
    m, s = quantize_multipliers(effective_scales(s_in, s_w, s_out))
    if rng.random() < 0.25:
        return int(m[0]), int(s[0])
    return m, s


def random_act(rng):
    if rng.random() < 0.5:
        return -128, 127
    lo, hi = sorted(rng.integers(-128, 128, size=2).tolist())
    return lo, hi


@SETTINGS
@given(window_case(), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**32 - 1), st.booleans())
def test_conv2d_matches_loop(case, cin, cout, seed, single):
    (H, W), (kh, kw), stride, padding = case
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(H, W, cin), dtype=np.int8)
    w = rng.integers(-127, 128, size=(cout, kh, kw, cin), dtype=np.int8)
    bias = rng.integers(-(2**16), 2**16, size=cout).astype(np.int32)
    x_zp, out_zp = (int(v) for v in rng.integers(-128, 128, size=2))
    mult, shift = random_requant(rng, cout, 0.02, 0.01)
    lo, hi = random_act(rng)
    got = conv2d(x, x_zp, w, bias, out_zp, mult, shift, stride, padding, lo, hi, single_rounding=single)
    expect = loop_conv(x, x_zp, w, bias, out_zp, mult, shift, stride, padding, lo, hi, single)
    assert got.dtype == np.int8
    assert np.array_equal(got, expect)


@SETTINGS
@given(window_case(), st.integers(1, 4), st.integers(0, 2**32 - 1), st.booleans())
def test_depthwise_matches_loop(case, c, seed, single):
    (H, W), (kh, kw), stride, padding = case
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(H, W, c), dtype=np.int8)
    w = rng.integers(-127, 128, size=(kh, kw, c), dtype=np.int8)
    bias = rng.integers(-(2**16), 2**16, size=c).astype(np.int32)
    x_zp, out_zp = (int(v) for v in rng.integers(-128, 128, size=2))
    mult, shift = random_requant(rng, c, 0.02, 0.01)
    lo, hi = random_act(rng)
    got = depthwise_conv2d(x, x_zp, w, bias, out_zp, mult, shift, stride, padding, lo, hi, single_rounding=single)
    expect = loop_depthwise(x, x_zp, w, bias, out_zp, mult, shift, stride, padding, lo, hi, single)
    assert got.dtype == np.int8
    assert np.array_equal(got, expect)


@SETTINGS
@given(st.integers(1, 40), st.integers(1, 12), st.integers(0, 2**32 - 1), st.booleans())
def test_fully_connected_matches_loop(n_in, n_out, seed, batched):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(1, n_in) if batched else (n_in,), dtype=np.int8)
    w = rng.integers(-127, 128, size=(n_out, n_in), dtype=np.int8)
    bias = rng.integers(-(2**16), 2**16, size=n_out).astype(np.int32)
    x_zp, out_zp = (int(v) for v in rng.integers(-128, 128, size=2))
    mult, shift = random_requant(rng, n_out, 0.02, 0.01)
    lo, hi = random_act(rng)
    got = fully_connected(x, x_zp, w, bias, out_zp, mult, shift, lo, hi)
    assert got.shape == ((1, n_out) if batched else (n_out,))
    assert np.array_equal(got.reshape(-1), loop_fc(x, x_zp, w, bias, out_zp, mult, shift, lo, hi))


@SETTINGS
@given(window_case(), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_avg_pool_matches_loop(case, c, seed):
    (H, W), kernel, stride, padding = case
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(H, W, c), dtype=np.int8)
    lo, hi = random_act(rng)
    got = avg_pool2d(x, kernel, stride, padding, lo, hi)
    assert np.array_equal(got, loop_avg_pool(x, kernel, stride, padding, lo, hi))


@SETTINGS
@given(
    st.sampled_from([((3, 4, 5), (3, 4, 5)), ((2, 2, 3), (1, 1, 3)), ((6,), (6,)), ((4, 1), (1, 3))]),
    st.integers(0, 2**32 - 1),
)
def test_add_matches_loop(shapes, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, size=shapes[0], dtype=np.int8)
    b = rng.integers(-128, 128, size=shapes[1], dtype=np.int8)
    a_zp, b_zp, out_zp = (int(v) for v in rng.integers(-128, 128, size=3))
    a_scale, b_scale = rng.uniform(0.005, 0.2, size=2)
    out_scale = (a_scale + b_scale) * rng.uniform(0.3, 1.5)
    lo, hi = random_act(rng)
    got = add(a, a_zp, a_scale, b, b_zp, b_scale, out_zp, out_scale, lo, hi)
    assert got.dtype == np.int8
    assert np.array_equal(got, loop_add(a, a_zp, a_scale, b, b_zp, b_scale, out_zp, out_scale, lo, hi))


# ----------------------------------------------------------------- against float math


def float_case(rng, y_fn):
    """Compute the float result and pick s_out so that it spans int8: (y, s_out, out_zp)."""
    y = y_fn()
    s_out = float(np.float32(max(np.abs(y).max(), 1e-3) / 110.0))
    out_zp = int(rng.integers(-15, 16))
    return y, s_out, out_zp


def assert_within_one_step(q, y, s_out, out_zp, lo=-128, hi=127):
    """Dequantised int8 within one output step of the float result (0.5 final + 0.5 double rounding)."""
    expect = np.clip(y / s_out + out_zp, lo, hi)
    err = np.abs(q.astype(np.float64) - expect)
    assert err.max() <= 1.0 + 1e-6, f"max error {err.max()} steps"
    if err.size >= 20:
        assert np.mean(err <= 0.5 + 1e-6) > 0.9  # nearly all outputs are correctly rounded


def f32(v):
    return np.asarray(v, dtype=np.float32).astype(np.float64)


@FEW
@given(window_case(max_hw=10), st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_conv2d_matches_float(case, cin, cout, seed):
    (H, W), (kh, kw), stride, padding = case
    rng = np.random.default_rng(seed)
    s_in = float(f32(rng.uniform(0.01, 0.1)))
    s_w = f32(rng.uniform(0.001, 0.02, size=cout))
    x_zp = int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(H, W, cin), dtype=np.int8)
    w = rng.integers(-127, 128, size=(cout, kh, kw, cin), dtype=np.int8)
    bias = rng.integers(-3000, 3000, size=cout).astype(np.int32)

    def y_fn():
        xf = torch.tensor(s_in * (x.astype(np.float64) - x_zp)).permute(2, 0, 1)[None]
        wf = torch.tensor(s_w[:, None, None, None] * w.astype(np.float64)).permute(0, 3, 1, 2)
        bf = torch.tensor(s_in * s_w * bias)
        t, b, l, r = padding
        yf = F.conv2d(F.pad(xf, (l, r, t, b)), wf, bf, stride=stride)
        return yf[0].permute(1, 2, 0).numpy()

    y, s_out, out_zp = float_case(rng, y_fn)
    mult, shift = quantize_multipliers(effective_scales(s_in, s_w, s_out))
    q = conv2d(x, x_zp, w, bias, out_zp, mult, shift, stride, padding)
    assert q.shape == y.shape
    assert_within_one_step(q, y, s_out, out_zp)


@FEW
@given(window_case(max_hw=10), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_depthwise_matches_float(case, c, seed):
    (H, W), (kh, kw), stride, padding = case
    rng = np.random.default_rng(seed)
    s_in = float(f32(rng.uniform(0.01, 0.1)))
    s_w = f32(rng.uniform(0.001, 0.02, size=c))
    x_zp = int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=(H, W, c), dtype=np.int8)
    w = rng.integers(-127, 128, size=(kh, kw, c), dtype=np.int8)
    bias = rng.integers(-3000, 3000, size=c).astype(np.int32)

    def y_fn():
        xf = torch.tensor(s_in * (x.astype(np.float64) - x_zp)).permute(2, 0, 1)[None]
        wf = torch.tensor(s_w * w.astype(np.float64)).permute(2, 0, 1)[:, None]  # (C, 1, kh, kw)
        bf = torch.tensor(s_in * s_w * bias)
        t, b, l, r = padding
        yf = F.conv2d(F.pad(xf, (l, r, t, b)), wf, bf, stride=stride, groups=c)
        return yf[0].permute(1, 2, 0).numpy()

    y, s_out, out_zp = float_case(rng, y_fn)
    mult, shift = quantize_multipliers(effective_scales(s_in, s_w, s_out))
    q = depthwise_conv2d(x, x_zp, w, bias, out_zp, mult, shift, stride, padding)
    assert_within_one_step(q, y, s_out, out_zp)


@FEW
@given(st.integers(1, 64), st.integers(1, 16), st.integers(0, 2**32 - 1), st.booleans())
def test_fully_connected_matches_float(n_in, n_out, seed, per_tensor):
    rng = np.random.default_rng(seed)
    s_in = float(f32(rng.uniform(0.01, 0.1)))
    s_w = f32(rng.uniform(0.001, 0.02, size=n_out))
    if per_tensor:
        s_w[:] = s_w[0]
    x_zp = int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, size=n_in, dtype=np.int8)
    w = rng.integers(-127, 128, size=(n_out, n_in), dtype=np.int8)
    bias = rng.integers(-3000, 3000, size=n_out).astype(np.int32)
    y_fn = lambda: (s_w[:, None] * w) @ (s_in * (x.astype(np.float64) - x_zp)) + s_in * s_w * bias  # noqa: E731
    y, s_out, out_zp = float_case(rng, y_fn)
    mult, shift = quantize_multipliers(effective_scales(s_in, s_w, s_out))
    if per_tensor:
        mult, shift = int(mult[0]), int(shift[0])
    q = fully_connected(x, x_zp, w, bias, out_zp, mult, shift)
    assert_within_one_step(q, y, s_out, out_zp)


@FEW
@given(st.integers(0, 2**32 - 1))
def test_add_matches_float(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, size=(5, 6, 7), dtype=np.int8)
    b = rng.integers(-128, 128, size=(5, 6, 7), dtype=np.int8)
    a_zp, b_zp = (int(v) for v in rng.integers(-128, 128, size=2))
    a_scale, b_scale = (float(v) for v in f32(rng.uniform(0.005, 0.2, size=2)))
    y = a_scale * (a.astype(np.float64) - a_zp) + b_scale * (b.astype(np.float64) - b_zp)
    out_scale = float(f32(np.abs(y).max() / 110.0))
    out_zp = int(rng.integers(-15, 16))
    q = add(a, a_zp, a_scale, b, b_zp, b_scale, out_zp, out_scale)
    expect = np.clip(y / out_scale + out_zp, -128, 127)
    assert np.abs(q - expect).max() <= 1.0 + 1e-3
    assert np.mean(np.abs(q - expect) <= 0.5 + 1e-3) > 0.9


# ----------------------------------------------------------------- hand cases


def test_add_params_hand_case():
    p = add_params(0.1, 0.1, 0.1)
    # inputs: 0.1 / 0.2 = 0.5 -> (2**30, 0); output: 0.2 / (2**20 * 0.1) ~ 2**-19 -> (~2**30, -18)
    assert p.left_shift == 20
    assert (p.input1_multiplier, p.input1_shift) == (2**30, 0)
    assert (p.input2_multiplier, p.input2_shift) == (2**30, 0)
    assert p.output_shift == -18 and abs(p.output_multiplier - 2**30) <= 1
    # unequal scales: the larger input gets exactly 0.5, the smaller its ratio
    p = add_params(0.5, 0.125, 1.0)
    assert (p.input1_multiplier, p.input1_shift) == (2**30, 0)
    assert (p.input2_multiplier, p.input2_shift) == (2**30, -2)  # 0.125 / 1.0
    assert (p.output_multiplier, p.output_shift) == (2**30, -19)  # 1.0 / 2**20
    with pytest.raises(ValueError, match="output"):
        add_params(1.0, 1.0, 1e-7)  # 2 / (2**20 * 1e-7) > 1


def test_add_hand_cases():
    a8 = lambda *v: np.array(v, dtype=np.int8)  # noqa: E731
    # same scales everywhere, zp 0: plain integer addition with saturation
    assert add(a8(10, -20, 100, -100), 0, 0.5, a8(20, 5, 100, -100), 0, 0.5, 0, 0.5).tolist() == [30, -15, 127, -128]
    # zero points: real a = 0.5*(a+128), real b = 0.5*(b-3); output zp -5
    assert add(a8(-128, -118), -128, 0.5, a8(3, 13), 3, 0.5, -5, 0.5).tolist() == [-5, 15]
    # output scale twice the inputs': halves round half away from zero (1/2 -> 1, -1/2 -> -1, 3/2 -> 2)
    got = add(a8(1, -1, 3, -3, 2, 0), 0, 1.0, a8(0, 0, 0, 0, 0, 0), 0, 1.0, 0, 2.0)
    assert got.tolist() == [1, -1, 2, -2, 1, 0]
    # 0.1f-scaled inputs (TFLM computes 10 + 20 in these units exactly)
    assert add(a8(10), 0, 0.1, a8(20), 0, 0.1, 0, 0.1).tolist() == [30]
    # different input scales: 0.5*4 + 0.125*8 = 3.0, out scale 0.25 -> 12
    assert add(a8(4), 0, 0.5, a8(8), 0, 0.125, 0, 0.25).tolist() == [12]
    # fused ReLU range clamps
    assert add(a8(-10, 10), 0, 1.0, a8(0, 0), 0, 1.0, 0, 1.0, 0, 127).tolist() == [0, 10]


def test_avg_pool_rounding_hand_cases():
    def pool_row(vals):
        x = np.array(vals, dtype=np.int8).reshape(1, len(vals), 1)
        return int(avg_pool2d(x, (1, len(vals)), (1, 1), (0, 0, 0, 0))[0, 0, 0])

    assert pool_row([1, 2]) == 2  # 1.5 -> 2
    assert pool_row([-1, -2]) == -2  # -1.5 -> -2
    assert pool_row([0, 1]) == 1  # 0.5 -> 1
    assert pool_row([0, -1]) == -1  # -0.5 -> -1
    assert pool_row([1, 1, 2]) == 1  # 4/3 -> 1
    assert pool_row([-2, -2, -1]) == -2  # -5/3 -> -2
    assert pool_row([2, 2, 1]) == 2  # 5/3 -> 2
    assert pool_row([-1, -1, -2]) == -1  # -4/3 -> -1
    assert pool_row([0, 0, 0]) == 0
    assert pool_row([127, 127, 127, 126]) == 127  # 126.75
    assert pool_row([-128, -128, -128, -127]) == -128  # -127.75

    # 'same' padding: the corner window sees 4 valid taps and divides by 4, not 9
    x = np.arange(9, dtype=np.int8).reshape(3, 3, 1)
    y = avg_pool2d(x, (3, 3), (1, 1), (1, 1, 1, 1))
    assert y[0, 0, 0] == 2  # (0+1+3+4)/4 = 2
    assert y[1, 1, 0] == 4  # 36/9
    assert y[2, 2, 0] == 6  # (4+5+7+8)/4 = 6
    assert y[0, 1, 0] == 3  # (0+1+2+3+4+5)/6 = 2.5 -> 3
    # activation clamp
    assert avg_pool2d(x, (3, 3), (1, 1), (1, 1, 1, 1), -128, 3).max() == 3


def test_global_avg_pool():
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, size=(5, 7, 6), dtype=np.int8)
    y = global_avg_pool(x)
    assert y.shape == (1, 1, 6)
    s = x.astype(np.int64).sum(axis=(0, 1))
    expect = [c_div(v + 17, 35) if v > 0 else c_div(v - 17, 35) for v in s.tolist()]
    assert y.reshape(-1).tolist() == expect
    assert np.array_equal(global_avg_pool(x[None]), y[None])


def test_conv_hand_case_padding_uses_zero_point():
    # 1x1 input, 3x3 kernel of ones, padding 1 everywhere: only the centre tap is real
    x = np.array([[[10]]], dtype=np.int8)
    w = np.ones((1, 3, 3, 1), dtype=np.int8)
    # acc = 1 * (10 - 4) + 100 = 106; multiplier 0.5 -> 53; + out_zp 2 = 55
    y = conv2d(x, 4, w, np.array([100], dtype=np.int32), 2, 2**30, 0, (1, 1), (1, 1, 1, 1))
    assert y.tolist() == [[[55]]]
    yd = depthwise_conv2d(x, 4, w[0], np.array([100], dtype=np.int32), 2, 2**30, 0, (1, 1), (1, 1, 1, 1))
    assert yd.tolist() == [[[55]]]


def test_pointwise_conv_equals_fully_connected_per_pixel():
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, size=(4, 5, 8), dtype=np.int8)
    w = rng.integers(-127, 128, size=(6, 1, 1, 8), dtype=np.int8)
    bias = rng.integers(-1000, 1000, size=6).astype(np.int32)
    m, s = quantize_multipliers(rng.uniform(1e-3, 1e-2, size=6))
    y = conv2d(x, -3, w, bias, 7, m, s)
    fc = fully_connected(x.reshape(-1, 8), -3, w.reshape(6, 8), bias, 7, m, s)
    assert np.array_equal(y.reshape(-1, 6), fc)


def test_batch_of_one_is_accepted_and_kept():
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, size=(6, 6, 3), dtype=np.int8)
    w = rng.integers(-127, 128, size=(4, 3, 3, 3), dtype=np.int8)
    y3 = conv2d(x, 1, w, None, 0, 2**30, -8, 2, (0, 1, 0, 1))
    y4 = conv2d(x[None], 1, w, None, 0, 2**30, -8, 2, (0, 1, 0, 1))
    assert y3.shape == (3, 3, 4) and np.array_equal(y4[0], y3)


def test_same_padding_and_pad():
    assert same_padding((176, 176), (3, 3), (2, 2)) == (0, 1, 0, 1)
    assert same_padding((7, 8), (3, 5), (1, 2)) == (1, 1, 1, 2)
    assert same_padding((5, 5), (7, 7), (1, 1)) == (3, 3, 3, 3)
    x = np.ones((2, 3, 1), dtype=np.int8)
    y = pad(x, (1, 0, 2, 1), -7)
    assert y.shape == (3, 6, 1) and y.dtype == np.int8
    assert y[0].ravel().tolist() == [-7] * 6
    assert y[1].ravel().tolist() == [-7, -7, 1, 1, 1, -7]


def test_conv_speed_shapes_run():
    """The shapes named in the brief run (timings are reported, not asserted)."""
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(176, 176, 3), dtype=np.int8)
    w = rng.integers(-127, 128, size=(16, 3, 3, 3), dtype=np.int8)
    m, s = quantize_multipliers(rng.uniform(1e-4, 1e-2, size=16))
    assert conv2d(x, 0, w, None, 0, m, s, 2, same_padding((176, 176), (3, 3), (2, 2))).shape == (88, 88, 16)


# ----------------------------------------------------------------- validation messages


def test_validation_names_the_argument():
    x = np.zeros((4, 4, 3), dtype=np.int8)
    w = np.zeros((2, 3, 3, 3), dtype=np.int8)
    ok = dict(x_zp=0, w=w, bias=None, out_zp=0, mult=2**30, shift=0)

    def conv(**kw):
        args = {**ok, **kw}
        x_ = args.pop("x", x)
        return conv2d(x_, args["x_zp"], args["w"], args["bias"], args["out_zp"], args["mult"], args["shift"],
                      args.get("stride", 1), args.get("padding", 0), args.get("act_min", -128), args.get("act_max", 127))

    conv()  # the baseline is valid
    with pytest.raises(ValueError, match=r"^x must be an int8"):
        conv(x=x.astype(np.float32))
    with pytest.raises(ValueError, match=r"^x must have shape"):
        conv(x=np.zeros((4, 4), dtype=np.int8))
    with pytest.raises(ValueError, match=r"^w has 2 input channels"):
        conv(w=np.zeros((2, 3, 3, 2), dtype=np.int8))
    with pytest.raises(ValueError, match=r"^bias must have shape \(2,\)"):
        conv(bias=np.zeros(3, dtype=np.int32))
    with pytest.raises(ValueError, match=r"^bias must be an int32"):
        conv(bias=np.zeros(2, dtype=np.float32))
    with pytest.raises(ValueError, match=r"^mult must be a scalar or have length 2"):
        conv(mult=np.array([2**30] * 3))
    with pytest.raises(ValueError, match=r"^x_zp must lie in"):
        conv(x_zp=128)
    with pytest.raises(ValueError, match=r"^stride must lie in"):
        conv(stride=(0, 1))
    with pytest.raises(ValueError, match=r"^padding must be \(top, bottom, left, right\)"):
        conv(padding=(1, 1, 1))
    with pytest.raises(ValueError, match=r"^act_min \(5\) must not exceed act_max"):
        conv(act_min=5, act_max=4)
    with pytest.raises(ValueError, match=r"^shift must lie in"):
        conv(shift=31)
    with pytest.raises(ValueError, match=r"^kernel \(3, 3\) does not fit"):
        conv(x=np.zeros((2, 2, 3), dtype=np.int8))
    with pytest.raises(ValueError, match=r"^w has 2 channels but x has 3"):
        depthwise_conv2d(x, 0, np.zeros((3, 3, 2), dtype=np.int8), None, 0, 2**30, 0)
    with pytest.raises(ValueError, match=r"^w has 5 inputs but x has 4"):
        fully_connected(np.zeros(4, dtype=np.int8), 0, np.zeros((2, 5), dtype=np.int8), None, 0, 2**30, 0)
    with pytest.raises(ValueError, match=r"^a and b shapes do not broadcast"):
        add(np.zeros(3, dtype=np.int8), 0, 1.0, np.zeros(4, dtype=np.int8), 0, 1.0, 0, 1.0)
    with pytest.raises(ValueError, match=r"^b must be an int8"):
        add(np.zeros(3, dtype=np.int8), 0, 1.0, np.zeros(3), 0, 1.0, 0, 1.0)
    with pytest.raises(ValueError, match=r"^padding .* no input pixel"):
        avg_pool2d(x, (2, 2), (1, 1), (2, 0, 0, 0))
    with pytest.raises(ValueError, match=r"^kernel must be a pair"):
        avg_pool2d(x, (2, 2, 2))
    with pytest.raises(ValueError, match=r"^value must lie in"):
        pad(x, 1, 300)
