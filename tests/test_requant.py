"""Ground-truth int8 arithmetic: hand-computed cases and property tests against C-literal oracles."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from c_oracles import c_mbqm, c_mbqm_single, c_quantize_multiplier, c_rdbpot, c_srdhm
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyengine.numerics.requant import (
    INT32_MAX,
    INT32_MIN,
    activation_range,
    choose_qparams,
    choose_weight_scales,
    dequantize,
    effective_scales,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_single_rounding,
    quantize,
    quantize_bias,
    quantize_multiplier,
    quantize_multipliers,
    quantize_weights,
    rdbpot,
    requantize,
    srdhm,
)

SETTINGS = settings(max_examples=60, deadline=None)
int32s = st.integers(INT32_MIN, INT32_MAX)


# ----------------------------------------------------------------- C-literal scalar oracles (Python ints)


# ----------------------------------------------------------------- exact-rational oracles


def frac_round_half_away(f: Fraction) -> int:
    n = math.floor(abs(f) + Fraction(1, 2))
    return n if f >= 0 else -n


def frac_round_half_up(f: Fraction) -> int:
    return math.floor(f + Fraction(1, 2))


# ----------------------------------------------------------------- quantize_multiplier


@pytest.mark.parametrize(
    "real, expected",
    [
        (0.5, (2**30, 0)),
        (1.0, (2**30, 1)),
        (0.25, (2**30, -1)),
        (0.75, (3 * 2**29, 0)),
        (2.0, (2**30, 2)),
        (3.0, (3 * 2**29, 2)),
        (1 - 2**-31, (2**31 - 1, 0)),  # q * 2**31 == 2**31 - 1 exactly: no fix-up
        (1 - 2**-32, (2**30, 1)),  # q * 2**31 == 2**31 - 0.5: ties away -> 2**31 -> fix-up
        (1 - 2**-40, (2**30, 1)),  # rounds up to 2**31 -> fix-up
        (0.5 * (1 - 2**-33), (2**30, 0)),  # frexp shift -1, fix-up brings it to 0
        (0.5 + 2**-32, (2**30 + 1, 0)),  # q * 2**31 = 2**30 + 0.5: away from zero (not to even)
        ((2**30 + 2.5) / 2**31, (2**30 + 3, 0)),  # banker's rounding would give 2**30 + 2
        (2**-32, (2**30, -31)),  # smallest shift kept
        (3e-10, (round(3e-10 * 2**62), -31)),
        (2**-33, (0, 0)),  # shift -32 < -31
        (1e-10, (0, 0)),
        (0.0, (0, 0)),
    ],
)
def test_quantize_multiplier_hand_cases(real, expected):
    assert quantize_multiplier(real) == expected
    m, s = quantize_multipliers(np.array([real]))
    assert (int(m[0]), int(s[0])) == expected
    assert m.dtype == np.int32 and s.dtype == np.int32


def test_quantize_multiplier_rejects_negative_and_nonfinite():
    with pytest.raises(ValueError, match="non-negative"):
        quantize_multiplier(-0.5)
    with pytest.raises(ValueError, match="finite"):
        quantize_multiplier(float("nan"))
    with pytest.raises(ValueError, match="non-negative"):
        quantize_multipliers(np.array([0.5, -1e-3]))
    with pytest.raises(ValueError, match="finite"):
        quantize_multipliers(np.array([np.inf]))


@SETTINGS
@given(st.lists(st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_subnormal=True), min_size=1, max_size=40))
def test_quantize_multipliers_match_scalar_oracle(reals):
    m, s = quantize_multipliers(np.array(reals))
    for r, mi, si in zip(reals, m, s):
        expect = c_quantize_multiplier(r)
        assert (int(mi), int(si)) == expect == quantize_multiplier(r)
        if expect[0]:
            assert 2**30 <= expect[0] < 2**31
            # relative error of the fixed-point multiplier is at most 2**-31
            assert abs(expect[0] * 2.0 ** (expect[1] - 31) - r) <= r * 2**-30


def test_effective_scales_go_through_float32():
    s_in, s_w, s_out = 0.1, np.array([0.02, 0.3]), 0.7
    got = effective_scales(s_in, s_w, s_out)
    f = lambda v: float(np.float32(v))  # noqa: E731
    expect = [f(s_in) * f(0.02) / f(s_out), f(s_in) * f(0.3) / f(s_out)]
    assert got.dtype == np.float64
    assert got.tolist() == expect  # bit-identical, not approx
    assert got[0] != s_in * 0.02 / s_out  # the float32 storage really changes the value
    with pytest.raises(ValueError):
        effective_scales(0.0, s_w, s_out)


# ----------------------------------------------------------------- srdhm / rdbpot


@pytest.mark.parametrize(
    "a, b, expected",
    [
        (INT32_MIN, INT32_MIN, INT32_MAX),  # the one overflow: saturates
        (INT32_MIN, INT32_MAX, -INT32_MAX),  # (-2**62 + 2**31 + 1 - 2**30) / 2**31 truncates to -(2**31 - 1)
        (2**30, 2**30, 2**29),  # 2**60 * 2 / 2**32
        (2**15, 2**15, 1),  # ab / 2**31 = +0.5 -> 1 (nudge 2**30)
        (-(2**15), 2**15, 0),  # -0.5 -> 0 (nudge 1 - 2**30, truncation)
        (3, 2**30, 2),  # +1.5 -> 2
        (-3, 2**30, -1),  # -1.5 -> -1: ties go toward +inf
        (-(2**30 + 1), 1, -1),  # -0.5 - 2**-31 -> -1
        (2**30 - 1, 1, 0),  # 0.5 - 2**-31 -> 0
        (0, INT32_MIN, 0),
        (INT32_MAX, INT32_MAX, INT32_MAX - 1),
    ],
)
def test_srdhm_hand_cases(a, b, expected):
    assert c_srdhm(a, b) == expected  # the oracle agrees with the hand computation
    assert int(srdhm(a, b)) == expected
    assert int(srdhm(b, a)) == expected


@pytest.mark.parametrize(
    "x, e, expected",
    [
        (5, 1, 3),  # 2.5 -> 3
        (-5, 1, -3),  # -2.5 -> -3
        (6, 2, 2),  # 1.5 -> 2
        (-6, 2, -2),  # -1.5 -> -2
        (-7, 2, -2),  # -1.75 -> -2
        (-5, 2, -1),  # -1.25 -> -1
        (-2, 2, -1),  # -0.5 -> -1
        (2, 2, 1),  # 0.5 -> 1
        (1, 2, 0),  # 0.25 -> 0
        (-1, 2, 0),  # -0.25 -> 0
        (12345, 0, 12345),
        (-12345, 0, -12345),
        (INT32_MIN, 31, -1),
        (INT32_MAX, 31, 1),
        (2**30, 31, 1),  # 0.5 -> 1
        (-(2**30), 31, -1),  # -0.5 -> -1
        (2**30 - 1, 31, 0),
        (-(2**30) + 1, 31, 0),
    ],
)
def test_rdbpot_hand_cases(x, e, expected):
    assert c_rdbpot(x, e) == expected
    assert int(rdbpot(x, e)) == expected


@SETTINGS
@given(st.lists(st.tuples(int32s, int32s), min_size=1, max_size=50))
def test_srdhm_matches_c_oracle_and_rational(pairs):
    a = np.array([p[0] for p in pairs], dtype=np.int32)
    b = np.array([p[1] for p in pairs], dtype=np.int32)
    got = srdhm(a, b)
    assert got.dtype == np.int32
    for (x, y), g in zip(pairs, got.tolist()):
        assert g == c_srdhm(x, y)
        if not x == y == INT32_MIN:
            # gemmlowp's sign-dependent nudge == round(ab / 2**31) with ties toward +inf
            assert g == frac_round_half_up(Fraction(x * y, 2**31))


@SETTINGS
@given(st.lists(st.tuples(int32s, st.integers(0, 31)), min_size=1, max_size=50))
def test_rdbpot_matches_c_oracle_and_rational(pairs):
    x = np.array([p[0] for p in pairs], dtype=np.int32)
    e = np.array([p[1] for p in pairs])
    got = rdbpot(x, e)  # per-element exponents
    for (xi, ei), g in zip(pairs, got.tolist()):
        assert g == c_rdbpot(xi, ei) == frac_round_half_away(Fraction(xi, 2**ei))
    # scalar exponent broadcast
    e0 = pairs[0][1]
    assert rdbpot(x, e0).tolist() == [c_rdbpot(int(v), e0) for v in x.tolist()]


def test_srdhm_rdbpot_validate_ranges():
    with pytest.raises(ValueError, match="exponent"):
        rdbpot(1, 32)
    with pytest.raises(ValueError, match="exponent"):
        rdbpot(1, -1)
    with pytest.raises(ValueError, match="a must lie"):
        srdhm(2**31, 1)
    with pytest.raises(ValueError, match="x must be integer"):
        rdbpot(1.5, 1)


# ----------------------------------------------------------------- multiply_by_quantized_multiplier

mults = st.one_of(st.integers(2**30, 2**31 - 1), st.just(0), st.integers(0, 2**31 - 1))
shifts = st.integers(-31, 30)


def test_mbqm_hand_cases():
    assert int(multiply_by_quantized_multiplier(1000, 2**30, 0)) == 500
    assert int(multiply_by_quantized_multiplier(1001, 2**30, 0)) == 501  # 500.5 -> 501
    assert int(multiply_by_quantized_multiplier(-1001, 2**30, 0)) == -500  # -500.5 -> -500 (srdhm tie up)
    assert int(multiply_by_quantized_multiplier(-1001, 2**30, -1)) == -250  # srdhm -500, /2 exactly
    assert int(multiply_by_quantized_multiplier(-1003, 2**30, -1)) == -251  # -501 / 2 = -250.5 -> -251
    assert int(multiply_by_quantized_multiplier(7, 2**30, 1)) == 7  # x2 then x0.5
    # the classic double-rounding case: 3 * 0.125 = 0.375 -> SRDHM gives 2 (1.5 rounded up), /4 = 0.5 -> 1
    assert int(multiply_by_quantized_multiplier(3, 2**30, -2)) == 1
    assert int(multiply_by_quantized_multiplier_single_rounding(3, 2**30, -2)) == 0
    # left shift overflow wraps like int32 C code: 2**30 << 1 == INT32_MIN
    assert int(multiply_by_quantized_multiplier(2**30, 2**30, 1)) == c_srdhm(INT32_MIN, 2**30) == -(2**30)


@SETTINGS
@given(st.lists(st.tuples(int32s, mults, shifts), min_size=1, max_size=50))
def test_mbqm_matches_c_oracle(triples):
    acc = np.array([t[0] for t in triples], dtype=np.int32)
    m = np.array([t[1] for t in triples], dtype=np.int32)
    s = np.array([t[2] for t in triples], dtype=np.int32)
    dbl = multiply_by_quantized_multiplier(acc, m, s)
    sgl = multiply_by_quantized_multiplier_single_rounding(acc, m, s)
    assert dbl.dtype == np.int32 and sgl.dtype == np.int32
    for (a, mi, si), d, g in zip(triples, dbl.tolist(), sgl.tolist()):
        assert d == c_mbqm(a, mi, si)
        assert g == c_mbqm_single(a, mi, si)


@SETTINGS
@given(st.lists(st.tuples(st.integers(-(2**24), 2**24), st.integers(2**30, 2**31 - 1), st.integers(-31, 6)), min_size=1, max_size=50))
def test_single_vs_double_rounding_differ_by_at_most_one(triples):
    # acc range keeps acc * 2**left inside int32 (no wrap), as in every real layer
    acc = np.array([t[0] for t in triples])
    m = np.array([t[1] for t in triples])
    s = np.array([t[2] for t in triples])
    dbl = multiply_by_quantized_multiplier(acc, m, s).astype(np.int64)
    sgl = multiply_by_quantized_multiplier_single_rounding(acc, m, s).astype(np.int64)
    assert np.all(np.abs(dbl - sgl) <= 1)
    for (a, mi, si), d, g in zip(triples, dbl.tolist(), sgl.tolist()):
        exact = Fraction(a * mi) * Fraction(2) ** (si - 31)
        assert g == frac_round_half_up(exact)  # single rounding is one correctly rounded step
        left, right = max(si, 0), max(-si, 0)
        first = frac_round_half_up(Fraction(a * 2**left * mi, 2**31))
        assert d == frac_round_half_away(Fraction(first, 2**right))
        assert abs(Fraction(d) - exact) <= 1


def test_mbqm_validates_mult_and_shift():
    with pytest.raises(ValueError, match="shift"):
        multiply_by_quantized_multiplier(1, 2**30, 31)
    with pytest.raises(ValueError, match="shift"):
        multiply_by_quantized_multiplier(1, 2**30, -32)
    with pytest.raises(ValueError, match="mult"):
        multiply_by_quantized_multiplier(1, -1, 0)
    with pytest.raises(ValueError, match="acc"):
        multiply_by_quantized_multiplier(2**31, 2**30, 0)


# ----------------------------------------------------------------- requantize


@SETTINGS
@given(
    st.integers(1, 5),
    st.integers(1, 6),
    st.integers(-128, 127),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)
def test_requantize_per_channel_matches_oracle(rows, chans, zp, seed, single):
    rng = np.random.default_rng(seed)
    acc = rng.integers(-(2**20), 2**20, size=(rows, chans)).astype(np.int32)
    m, s = quantize_multipliers(rng.uniform(1e-5, 2.0, size=chans))
    lo, hi = sorted(rng.integers(-128, 128, size=2).tolist())
    got = requantize(acc, m, s, zp, lo, hi, single_rounding=single)
    f = c_mbqm_single if single else c_mbqm
    expect = [[min(hi, max(lo, f(int(acc[r, c]), int(m[c]), int(s[c])) + zp)) for c in range(chans)] for r in range(rows)]
    assert got.dtype == np.int8
    assert got.tolist() == expect
    # channel_axis=0 on the transposed accumulators gives the transposed result
    assert np.array_equal(requantize(acc.T, m, s, zp, lo, hi, channel_axis=0, single_rounding=single), got.T)
    # per-tensor scalars broadcast over everything
    scalar = requantize(acc, int(m[0]), int(s[0]), zp, lo, hi, single_rounding=single)
    assert scalar.tolist() == [[min(hi, max(lo, f(int(v), int(m[0]), int(s[0])) + zp)) for v in row] for row in acc.tolist()]


def test_requantize_validation():
    acc = np.zeros((2, 3), dtype=np.int32)
    with pytest.raises(ValueError, match="mult"):
        requantize(acc, np.array([2**30, 2**30]), 0, 0)
    with pytest.raises(ValueError, match="out_zp"):
        requantize(acc, 2**30, 0, 200)
    with pytest.raises(ValueError, match="act_min"):
        requantize(acc, 2**30, 0, 0, 10, 5)


# ----------------------------------------------------------------- activation range


def test_activation_range_cases():
    assert activation_range(None, 0.1, 3) == (-128, 127)
    assert activation_range("relu", 0.1, 3) == (3, 127)
    assert activation_range("relu", 0.1, -128) == (-128, 127)
    # relu6 over the full int8 range: 6 / (6/255) == 255 -> -128 + 255 == 127
    assert activation_range("relu6", 6.0 / 255.0, -128) == (-128, 127)
    assert activation_range("relu6", 0.05, -10) == (-10, 110)  # 6 / 0.05f rounds to 120
    assert activation_range("relu6", 0.01, 0) == (0, 127)  # 600 clamps to 127
    assert activation_range("relu_n1_to_1", 0.01, 0) == (-100, 100)
    # the division is float32: 6f / float32(6/40.5) == 40.5f exactly -> 41 (in double it is 40.4999997 -> 40)
    s = float(np.float32(6.0 / 40.5))
    assert 6.0 / s < 40.5 and np.float32(6.0) / np.float32(s) == np.float32(40.5)
    assert activation_range("relu6", s, 0) == (0, 41)
    with pytest.raises(ValueError, match="activation kind"):
        activation_range("gelu", 0.1, 0)
    with pytest.raises(ValueError, match="out_scale"):
        activation_range("relu", 0.0, 0)


# ----------------------------------------------------------------- float <-> int8


def test_quantize_rounding_and_clamp():
    x = np.array([0.25, -0.25, 0.75, -0.75, 0.2, 100.0, -100.0, 0.0], dtype=np.float32)
    # x / 0.5 = 0.5, -0.5, 1.5, -1.5, 0.4, 200, -200, 0 -> half away from zero, then +1, clamp
    assert quantize(x, 0.5, 1).tolist() == [2, 0, 3, -1, 1, 127, -128, 1]
    assert dequantize(np.array([2, 0, -128], dtype=np.int8), 0.5, 1).tolist() == [0.5, -0.5, -64.5]
    assert dequantize(np.array([1], dtype=np.int8), 0.5, 1).dtype == np.float32


@SETTINGS
@given(st.floats(-50, 50), st.floats(-50, 50), st.booleans(), st.booleans())
def test_choose_qparams_properties(a, b, symmetric, narrow):
    lo, hi = min(a, b), max(a, b)
    scale, zp = choose_qparams(lo, hi, symmetric=symmetric, narrow_range=narrow)
    assert isinstance(scale, np.float32) and scale > 0
    assert -128 <= zp <= 127 and isinstance(zp, int)
    if symmetric:
        assert zp == 0
    # zero is exactly representable
    assert dequantize(quantize(np.float32(0.0), scale, zp), scale, zp) == 0.0
    # the observed range is covered to within a step
    qmin = -127 if narrow else -128
    if not lo == hi == 0:
        assert float(dequantize(np.int8(qmin), scale, zp)) <= min(lo, 0.0) + float(scale)
        assert float(dequantize(np.int8(127), scale, zp)) >= max(hi, 0.0) - float(scale)


def test_choose_qparams_hand_cases():
    scale, zp = choose_qparams(0.0, 6.0)  # ReLU6 output
    assert scale == np.float32(6.0 / 255.0) and zp == -128
    scale, zp = choose_qparams(-1.0, 1.0)
    assert scale == np.float32(2.0 / 255.0) and zp in (0, -1)
    assert choose_qparams(0.0, 0.0) == (np.float32(1.0), 0)
    scale, zp = choose_qparams(-2.0, 1.0, symmetric=True)
    assert scale == np.float32(2.0 / 127.0) and zp == 0
    with pytest.raises(ValueError, match="must not exceed"):
        choose_qparams(1.0, -1.0)


def test_weight_scales_and_quantize_weights():
    w = np.zeros((3, 2, 2, 1), dtype=np.float32)
    w[0] = 1.27
    w[1, 0, 0, 0] = -2.54
    scales = choose_weight_scales(w, axis=0)
    assert scales.dtype == np.float32
    f32 = lambda v: np.float32(float(np.float32(v)) / 127)  # noqa: E731  max|w| is the float32 weight
    assert scales.tolist() == [f32(1.27), f32(2.54), 1.0]  # all-zero channel -> 1.0
    q, s2 = quantize_weights(w, axis=0)
    assert np.array_equal(s2, scales)
    assert q.dtype == np.int8 and q[0].max() == 127 and q[1].min() == -127 and not q[2].any()
    # per-channel along the last axis (depthwise HWC)
    wd = np.arange(12, dtype=np.float32).reshape(2, 2, 3) - 5
    assert choose_weight_scales(wd, axis=-1).tolist() == [np.float32(5 / 127), np.float32(5 / 127), np.float32(6 / 127)]  # channels -5,-2,1,4 / -4,-1,2,5 / -3,0,3,6
    b = quantize_bias(np.array([1.0, -1.0]), 0.5, np.array([0.25, 0.125]))
    assert b.tolist() == [8, -16] and b.dtype == np.int32
