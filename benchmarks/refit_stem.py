"""Refit the latency model's stem entry (te_conv_stem_s8) on instruction counts of the current kernel,
measured per call on the emulated Cortex-M4 (QEMU mps2-an386, the method of
benchmarks/kernel_instructions.py: SysTick around each call, every output checked against the NumPy
reference).

Shapes: the stems of the zoo's resolutions (64..224, RGB and grey -- the search space's 1 and 3 input
channels --, 8..32 output channels, 3x3 stride 2) plus a few 5x5 / 7x7 and stride-1 ones. Quantisation as deployed layers (benchmarks/kernel_instructions.py
_deployed_like: every channel on the fast requantisation, no fused clamp). The fit is
tinyengine.latency.model.fit on the registry's terms; the te_conv_stem_s8 entry of
tinyengine/latency/data/qemu-m4.json is replaced (the others are kept) with --save.

Usage: PYTHONPATH=$PWD .venv/bin/python benchmarks/refit_stem.py [--save] [--json out.json]
"""

from __future__ import annotations

import sys

from refit_common import ROOT, T, run_refit
from test_kernels_dw_stem import stem_case

KERNEL = "te_conv_stem_s8"
# (h, w, in_c, out_c, k, s)
SHAPES = [(80, 80, 3, 16, 3, 2), (176, 176, 3, 16, 3, 2), (64, 64, 3, 8, 3, 2), (96, 96, 3, 16, 3, 2),
          (112, 112, 3, 24, 3, 2), (128, 128, 3, 16, 3, 2), (144, 144, 3, 32, 3, 2), (160, 160, 3, 16, 3, 2),
          (224, 224, 3, 16, 3, 2), (96, 96, 1, 16, 3, 2), (128, 128, 1, 8, 3, 2), (80, 80, 1, 24, 3, 2),
          (64, 64, 3, 17, 3, 2), (96, 96, 3, 9, 3, 2), (48, 48, 3, 16, 5, 2), (48, 48, 3, 16, 7, 2),
          (40, 40, 3, 16, 3, 1), (32, 32, 1, 8, 3, 1), (112, 112, 1, 16, 3, 2), (64, 64, 1, 32, 3, 2)]


def geom(h, w, ci, co, k, s, p) -> dict:
    pt, pb, pl, pr = p
    return {"in_h": h, "in_w": w, "in_c": ci, "out_h": (h + pt + pb - k) // s + 1,
            "out_w": (w + pl + pr - k) // s + 1, "out_c": co, "k_h": k, "k_w": k, "stride_h": s,
            "stride_w": s, "pad_top": pt, "pad_left": pl}


def cases(rng) -> tuple[list, list]:
    out, layers = [], []
    for (h, w, ci, co, k, s) in SHAPES:
        p = T.K.same_padding((h, w), (k, k), (s, s))
        out.append(stem_case(rng, h, w, ci, co, (k, k), (s, s), p))
        layers.append({"kernel": KERNEL, "name": f"{h}x{w}x{ci}->{co} k{k}s{s}", "args": {"geom": geom(h, w, ci, co, k, s, p)}})
    return out, layers


def main(argv=None) -> int:
    return run_refit(__doc__, ROOT / "firmware" / "build" / "refit_stem", cases, argv, seed=1516,
                     save_help=f"replace the {KERNEL} entry of {{data}}")


if __name__ == "__main__":
    sys.exit(main())
