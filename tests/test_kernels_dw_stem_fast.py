"""The fast paths of the depthwise and stem kernels, byte for byte against the NumPy reference on the
Cortex-M4 (QEMU, every case) and the host variants.

In-place depthwise 3x3/s1 on small planes (the whole plane in flat sweeps) and 5x5 / 7x7 (stride 1 and 2) on the shapes that exercise the quad loops (four outputs
per pass; assembly on the Cortex-M4 DSP path, firmware/src/te_dw_quads_asm.h) and what follows them in a
row: output widths 4..7 and 11 (a leftover pair, an odd last output, three left: an overlapping quad),
one and two 32-output chunks, one output column, and the output stages after them (sums started from the channel's base): the usual one, the
zero-point fold's fallback (tiny scales, em1 > 22) and a fused clamp narrower than int8.

The stem (te_conv_stem_s8) with deployed-like quantisation (every channel on the fast requantisation, no
fused clamp): the folded output stage (sums from the biases, out_zp in the rounding word), with odd and
even output channel counts, 1 and 3 input channels, an odd pixel count; and the same layers with one
channel past the fold (em1 > 22) and with a fused clamp (the unfolded stages).
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
    pack_all,
    parse_outputs,
    require_arm_toolchain,
    require_tool,
    run,
    run_qemu,
    write_cases_c,
)
from test_kernels_dw_stem import stem_case


def _cases(rng) -> list:
    cs = []
    for k in (5, 7):
        for s in (1, 2):
            # output widths 1, 4, 5, 6, 7, 11, 33, 35, 39 (same padding: out = ceil(w / s)); 7, 11 and 39
            # end a chunk with three outputs after quads: one more quad overlapping the last one
            for ow in (1, 4, 5, 6, 7, 11, 33, 35, 39):
                w_ = ow * s if s == 1 else 2 * ow - 1
                h = 3 if ow > 7 else 5
                cs.append(dw_case(rng, h, w_, 3 if ow > 7 else 5, (k, k), (s, s),
                                  K.same_padding((h, w_), (k, k), (s, s)), True))
            # valid padding (plane = input) and asymmetric padding
            cs.append(dw_case(rng, k + 3, k + 9, 4, (k, k), (s, s), (0, 0, 0, 0), True))
            cs.append(dw_case(rng, 6, 13, 6, (k, k), (s, s), (k - 2, 1, 1, k - 2), True))
    # 3x3/s1 in place, whole plane in flat sweeps (ow 2..24): odd and even counts in the last sweep
    # (odd: a first pair, then pairs ending at the last output), one and several sweeps, valid padding
    for (h, w_) in ((1, 3), (3, 2), (2, 3), (3, 3), (3, 5), (6, 23), (11, 24), (5, 5)):
        cs.append(dw_case(rng, h, w_, 7, (3, 3), (1, 1), K.same_padding((h, w_), (3, 3), (1, 1)), True))
    cs.append(dw_case(rng, 5, 7, 5, (3, 3), (1, 1), (0, 0, 0, 0), True))
    cs.append(dw_case(rng, 4, 4, 5, (3, 3), (1, 1), (0, 0, 0, 0), True))
    quant, act = kernel_harness._quant, kernel_harness._act
    try:
        # tiny effective scales (em1 > 22): the output stage without the zero-point fold
        kernel_harness._quant = lambda r, n, scale_range=(2.0**-27, 2.0**-22): quant(r, n, scale_range)
        kernel_harness._act = lambda r, out_zp: (-128, 127)
        for (k, s) in ((5, 1), (7, 2)):
            cs.append(dw_case(rng, 4, 11, 8, (k, k), (s, s), K.same_padding((4, 11), (k, k), (s, s)), True))
        cs.append(dw_case(rng, 3, 5, 8, (3, 3), (1, 1), (1, 1, 1, 1), True))
        # a fused clamp narrower than int8
        kernel_harness._quant = quant
        kernel_harness._act = lambda r, out_zp: (-100, 90)
        for (k, s) in ((5, 2), (7, 1)):
            cs.append(dw_case(rng, 4, 11, 8, (k, k), (s, s), K.same_padding((4, 11), (k, k), (s, s)), True))
        cs.append(dw_case(rng, 3, 5, 8, (3, 3), (1, 1), (1, 1, 1, 1), True))
    finally:
        kernel_harness._quant, kernel_harness._act = quant, act
    return cs


def _stem_cases(rng) -> list:
    cs = []
    quant, act = kernel_harness._quant, kernel_harness._act
    try:
        kernel_harness._quant = lambda r, n, scale_range=(2.0**-14, 2.0**-3): quant(r, n, scale_range)
        kernel_harness._act = lambda r, out_zp: (-128, 127)
        for (h, w_, c, co) in ((9, 9, 3, 16), (8, 7, 3, 5), (7, 7, 1, 8), (6, 5, 3, 1), (5, 6, 2, 17)):
            cs.append(stem_case(rng, h, w_, c, co, (3, 3), (2, 2), K.same_padding((h, w_), (3, 3), (2, 2))))
        cs.append(stem_case(rng, 7, 6, 3, 6, (5, 5), (2, 2), K.same_padding((7, 6), (5, 5), (2, 2))))
        # one channel's shift past the fold (em1 > 22): the whole layer takes the unfolded stage
        def past_fold(r, n, scale_range=(2.0**-14, 2.0**-3)):
            m, sh = quant(r, n, scale_range)
            sh = np.array(sh, copy=True)
            sh[n // 2] = -25
            return m, sh
        kernel_harness._quant = past_fold
        cs.append(stem_case(rng, 9, 9, 3, 16, (3, 3), (2, 2), K.same_padding((9, 9), (3, 3), (2, 2))))
        # a fused clamp
        kernel_harness._quant = lambda r, n, scale_range=(2.0**-14, 2.0**-3): quant(r, n, scale_range)
        kernel_harness._act = lambda r, out_zp: (-90, 100)
        cs.append(stem_case(rng, 9, 9, 3, 16, (3, 3), (2, 2), K.same_padding((9, 9), (3, 3), (2, 2))))
    finally:
        kernel_harness._quant, kernel_harness._act = quant, act
    return cs


@pytest.fixture(scope="module")
def cases() -> list:
    rng = np.random.default_rng(1517)
    return _cases(rng) + _stem_cases(rng)


def _check(results, cases, where):
    failures = []
    for i, c in enumerate(cases):
        rc, got = results[i]
        if rc != c.expect_rc or got != c.expected:
            failures.append(f"case {i} {c.desc}: rc {rc}; " + ("" if got == c.expected else _first_difference(got, c.expected)))
    assert not failures, f"{len(failures)} of {len(cases)} differ ({where}):\n" + "\n".join(failures[:20])


def test_host_dw_stem_fast_paths_match_reference(tmp_path, cases):
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


def test_qemu_m4_dw_stem_fast_paths_match_reference(tmp_path, cases):
    require_arm_toolchain()
    require_tool("qemu-system-arm", "qemu-system-arm")
    cases_c = tmp_path / "cases.c"
    write_cases_c(pack_all(cases), cases_c)
    elf = build_firmware("mps2-an386", cases_c, tmp_path / "fw.elf")
    r = run_qemu("mps2-an386", elf, shift=0)
    assert r.done == (len(cases), 0) and r.returncode == 0, f"exit {r.returncode}, DONE {r.done}\n" + r.output[-3000:]
    for i, c in enumerate(cases):
        line = r.lines[i]
        assert line["ok"] and line["crc"] == zlib.crc32(c.expected) and line["rc"] == c.expect_rc, (
            f"case {i} {c.desc}: {line}")
