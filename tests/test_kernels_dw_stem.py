"""Depthwise (in place and out of place) and the stem's im2col path against the NumPy reference, byte
for byte, on the shapes their specialised paths care about: kernel 3/5/7, stride 1/2, odd and even
widths, channel counts not a multiple of 4, tiny spatial sizes (1x1, 2x2, 3x3 with padding) and 1..3
input channels for the stem. Host: the four driver variants of tests/kernel_harness.py (strict, ASan +
UBSan, DSP path emulated, DSP path under the sanitizers); QEMU: the Cortex-M4 DSP path (real SXTB16 /
SMLAD). The random batch of tests/test_kernels_c.py covers the general shapes; these are the corners.
"""
from __future__ import annotations

import concurrent.futures
import os
import zlib

import kernel_harness
import numpy as np
import pytest
from kernel_harness import (
    HOST_VARIANTS,
    K,
    _first_difference,
    build_firmware,
    build_host_driver,
    dw_case,
    im2col_case,
    pack_all,
    parse_outputs,
    planned_scratch,
    require_arm_toolchain,
    require_tool,
    run,
    run_qemu,
    write_cases_c,
)

from codegen.stem import stem_weights
from tinyengine.kernels.registry import stem_k


def _dw_cases(rng) -> list:
    cs = []
    for k in (3, 5, 7):
        for s in (1, 2):
            for (h, w_) in ((1, 1), (2, 2), (3, 3), (4, 5), (7, 6), (9, 11)):
                for c in (1, 3, 4, 6, 13, 32):
                    p = K.same_padding((h, w_), (k, k), (s, s))
                    for inplace in (False, True):
                        cs.append(dw_case(rng, h, w_, c, (k, k), (s, s), p, inplace))
    # wide channels at small spatial (the vww1 tail), valid padding, asymmetric padding
    cs.append(dw_case(rng, 3, 3, 480, (3, 3), (1, 1), (1, 1, 1, 1), False))
    cs.append(dw_case(rng, 3, 3, 480, (3, 3), (1, 1), (1, 1, 1, 1), True))
    cs.append(dw_case(rng, 6, 6, 240, (5, 5), (1, 1), (2, 2, 2, 2), False))
    cs.append(dw_case(rng, 8, 9, 12, (3, 3), (1, 1), (0, 0, 0, 0), False))
    cs.append(dw_case(rng, 8, 9, 12, (3, 3), (2, 2), (0, 1, 1, 0), False))
    # in place 3x3/s1 flat sweep of small planes: widest (ow 24, 5 rows a sweep, several sweeps), valid
    # padding (pitch = ow + 2 from the unpadded input), one past the widest (per-row loop)
    cs.append(dw_case(rng, 13, 24, 5, (3, 3), (1, 1), (1, 1, 1, 1), True))
    cs.append(dw_case(rng, 12, 11, 6, (3, 3), (1, 1), (0, 0, 0, 0), True))
    cs.append(dw_case(rng, 4, 25, 3, (3, 3), (1, 1), (1, 1, 1, 1), True))
    cs.append(dw_case(rng, 10, 7, 8, (5, 5), (2, 2), (1, 2, 2, 1), False))
    cs.append(dw_case(rng, 5, 5, 9, (9, 9), (1, 1), (4, 4, 4, 4), False))  # > 49 taps
    cs.append(dw_case(rng, 6, 5, 7, (2, 3), (1, 2), (0, 1, 1, 1), False))  # non-square
    # tiny effective scales (shifts -27..-20) and no fused clamp: the DSP output stage's zero-point fold
    # (em1 <= 22) and its fallback (em1 > 22) on the same layers
    quant, act = kernel_harness._quant, kernel_harness._act
    try:
        kernel_harness._quant = lambda r, n, scale_range=(2.0**-27, 2.0**-20): quant(r, n, scale_range)
        kernel_harness._act = lambda r, out_zp: (-128, 127)
        for (k, s) in ((3, 1), (5, 2), (7, 1)):
            cs.append(dw_case(rng, 5, 9, 24, (k, k), (s, s), K.same_padding((5, 9), (k, k), (s, s)), True))
    finally:
        kernel_harness._quant, kernel_harness._act = quant, act
    # rows longer than the 32-output chunk of the in-place pair loops (odd/even remainders)
    for (h, w_, k, s) in ((3, 35, 3, 1), (3, 66, 3, 1), (4, 67, 3, 2), (2, 65, 3, 2), (3, 34, 5, 1), (3, 69, 7, 2)):
        cs.append(dw_case(rng, h, w_, 3, (k, k), (s, s), K.same_padding((h, w_), (k, k), (s, s)), True))
    return cs


def stem_case(rng, h: int, w_: int, in_c: int, out_c: int, k, s, p):
    """te_conv_stem_s8 (te_case.c: im2col record, variant 1): the im2col case with the weights in the stem
    kernel's layout, as codegen stores them (codegen/stem.py)."""
    c = im2col_case(rng, h, w_, in_c, out_c, k, s, p)
    w = np.frombuffer(c.w, np.int8).reshape(out_c, -1)
    assert c.hdr["scratch_len"] == planned_scratch("conv2d", (h, w_, in_c), k, s, p) == 2 * stem_k(*k, in_c) * 2
    c.w = stem_weights(w.reshape(out_c, k[0], k[1], in_c)).tobytes()
    c.hdr["variant"] = 1
    c.desc = "stem" + c.desc.removeprefix("im2col")
    return c


def _stem_cases(rng) -> list:
    cs = []
    for c in (1, 2, 3, 4):
        for (h, w_) in ((1, 1), (2, 3), (5, 5), (16, 16), (17, 12)):
            for k, s in ((3, 2), (3, 1), (5, 2), (7, 2)):
                p = K.same_padding((h, w_), (k, k), (s, s))
                for co in (1, 8, 17):
                    cs.append(stem_case(rng, h, w_, c, co, (k, k), (s, s), p))
    cs.append(stem_case(rng, 9, 7, 3, 16, (3, 3), (2, 2), (1, 1, 1, 1)))
    cs.append(stem_case(rng, 9, 7, 3, 6, (3, 3), (2, 2), (0, 0, 0, 0)))
    cs.append(stem_case(rng, 8, 8, 3, 5, (2, 3), (1, 2), (0, 1, 1, 1)))
    # the generic im2col on the same small-channel shapes (the stem must equal it)
    cs.append(im2col_case(rng, 16, 16, 3, 16, (3, 3), (2, 2), K.same_padding((16, 16), (3, 3), (2, 2))))
    return cs


@pytest.fixture(scope="module")
def cases() -> list:
    rng = np.random.default_rng(1515)
    return _dw_cases(rng) + _stem_cases(rng)


def _check(results, cases, where):
    failures = []
    for i, c in enumerate(cases):
        rc, got = results[i]
        if rc != c.expect_rc or got != c.expected:
            failures.append(f"case {i} {c.desc}: rc {rc}; " + ("" if got == c.expected else _first_difference(got, c.expected)))
    assert not failures, f"{len(failures)} of {len(cases)} differ ({where}):\n" + "\n".join(failures[:20])


def check_host(tmp_path, cases):
    """Every host driver variant on ``cases``, byte for byte against the reference (also
    tests/test_kernels_dw_stem_fast.py's)."""
    blob = tmp_path / "cases.bin"
    blob.write_bytes(pack_all(cases))

    def one(name):
        exe = build_host_driver(tmp_path / f"driver-{name}", HOST_VARIANTS[name])
        out = tmp_path / f"out-{name}.bin"
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        run([exe, blob, out], env=env, timeout=300)
        return name, parse_outputs(out.read_bytes())

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        res = dict(ex.map(one, HOST_VARIANTS))
    for name, r in res.items():
        assert len(r) == len(cases)
        _check(r, cases, name)


def check_qemu_m4(tmp_path, cs):
    """``cs`` on the Cortex-M4 DSP path (QEMU mps2-an386), each output's CRC against the reference
    (also tests/test_kernels_dw_stem_fast.py's)."""
    require_arm_toolchain()
    require_tool("qemu-system-arm", "qemu-system-arm")
    cases_c = tmp_path / "cases.c"
    write_cases_c(pack_all(cs), cases_c)
    elf = build_firmware("mps2-an386", cases_c, tmp_path / "fw.elf")
    r = run_qemu("mps2-an386", elf, shift=0)
    assert r.done == (len(cs), 0) and r.returncode == 0, f"exit {r.returncode}, DONE {r.done}\n" + r.output[-3000:]
    for i, c in enumerate(cs):
        line = r.lines[i]
        assert line["ok"] and line["crc"] == zlib.crc32(c.expected) and line["rc"] == c.expect_rc, (
            f"case {i} {c.desc}: {line}")


def test_host_dw_and_stem_match_reference(tmp_path, cases):
    check_host(tmp_path, cases)


def test_qemu_m4_dw_and_stem_match_reference(tmp_path, cases):
    check_qemu_m4(tmp_path, cases[::2])  # every other corner keeps the firmware small
