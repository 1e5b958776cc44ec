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

import kernel_harness
import numpy as np
import pytest
from kernel_harness import K, dw_case
from test_kernels_dw_stem import check_host, check_qemu_m4, stem_case


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


def test_host_dw_stem_fast_paths_match_reference(tmp_path, cases):
    check_host(tmp_path, cases)


def test_qemu_m4_dw_stem_fast_paths_match_reference(tmp_path, cases):
    check_qemu_m4(tmp_path, cases)
