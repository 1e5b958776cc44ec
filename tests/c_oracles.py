"""Scalar oracles written the way the C literature states them (Python ints, C semantics: wrap-around,
truncating division): what the vectorised requantisation and the reference kernels are checked against.
Shared by test_requant.py and test_kernels_ref.py."""
from __future__ import annotations

import math

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def c_wrap32(v: int) -> int:
    return ((v + 2**31) % 2**32) - 2**31


def c_div(n: int, d: int) -> int:
    """C integer division: truncates toward zero."""
    q = abs(n) // abs(d)
    return q if (n >= 0) == (d > 0) else -q


def c_srdhm(a: int, b: int) -> int:
    overflow = a == b == INT32_MIN
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else (1 - (1 << 30))
    hi = c_div(ab + nudge, 1 << 31)
    return INT32_MAX if overflow else hi


def c_rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    remainder = x & mask  # Python & on negatives is two's complement on the low bits, like C
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if remainder > threshold else 0)


def c_mbqm(acc: int, m: int, shift: int) -> int:
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return c_rdbpot(c_srdhm(c_wrap32(acc * (1 << left)), m), right)


def c_mbqm_single(acc: int, m: int, shift: int) -> int:
    total = 31 - shift
    return c_wrap32((acc * m + (1 << (total - 1))) >> total)


def c_round_away(v: float) -> int:
    """C round(): half away from zero (Python's round() is half-to-even, not this)."""
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def c_quantize_multiplier(real: float) -> tuple[int, int]:
    if real == 0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = c_round_away(q * 2**31)
    if q_fixed == 2**31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift
