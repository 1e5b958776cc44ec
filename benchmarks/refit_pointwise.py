"""Refit the latency model's pointwise entries (te_conv_pointwise_s8 and te_conv_pointwise_w16_s8) on
instruction counts of the current kernels, measured per call on the emulated Cortex-M4 (QEMU
mps2-an386, the method of benchmarks/kernel_instructions.py: SysTick around each call, every output
checked against the NumPy reference).

Shapes: the pointwise layers of mcunet-vww1 / in3 / in0 style nets plus random ones (1..2000 pixels,
in_c 4..480 with and without multiples of 4, odd and even out_c), as deployed layers are (full clamp,
shifts in [-23, -2]); the int16-weight kernel on the in_c-multiple-of-4 shapes. The fit is
tinyengine.latency.model.fit on the registry's terms; --save replaces the two entries of
tinyengine/latency/data/qemu-m4.json (the others are kept).

Usage: PYTHONPATH=$PWD .venv/bin/python benchmarks/refit_pointwise.py [--save] [--json out.json]
"""

from __future__ import annotations

import sys

import numpy as np
from refit_common import ROOT, T, run_refit

from codegen.pw_weights import pw16_weights

ZOO = [(1600, 16, 8), (1600, 8, 48), (400, 48, 16), (400, 16, 48), (100, 48, 24), (100, 24, 144), (100, 144, 24),
       (100, 120, 24), (25, 144, 40), (25, 40, 240), (25, 240, 40), (9, 96, 480), (9, 480, 96), (9, 288, 160),
       (7744, 16, 8), (7744, 8, 24), (1936, 24, 16), (1936, 16, 80), (1936, 80, 16), (1936, 64, 16),
       (484, 24, 120), (484, 120, 24), (121, 40, 240), (121, 240, 40), (121, 48, 240), (36, 96, 480),
       (36, 480, 96), (36, 384, 96), (36, 480, 160), (484, 16, 64), (400, 16, 96), (121, 160, 40)]


def shapes(rng) -> list[tuple[int, int, int]]:
    out = list(ZOO)
    for _ in range(40):
        p = int(rng.choice([1, 3, 9, 25, 49, 100, 121, 400, 1000]))
        ci = int(rng.choice([4, 8, 12, 16, 20, 24, 32, 40, 48, 64, 72, 96, 120, 144, 200, 240, 480, 5, 13, 30]))
        co = int(rng.integers(1, 200))
        out.append((p, ci, co))
    return out


def cases(rng) -> tuple[list, list]:
    out, layers = [], []
    for p, ci, co in shapes(rng):
        c = T.pointwise_case(rng, p, ci, co)
        while c.bias is None:  # generated layers always have a bias (without, the kernels take their slow loops)
            c = T.pointwise_case(rng, p, ci, co)
        args = {"n_pixels": p, "in_c": ci, "out_c": co}
        out.append(c)
        layers.append({"kernel": "te_conv_pointwise_s8", "name": f"{p}px {ci}->{co}", "args": args})
        if ci % 4 == 0:
            w = np.frombuffer(c.w, np.int8).reshape(co, 1, 1, ci)
            out.append(T.Case("pointwise_w16", c.desc, c.hdr, c.mult, c.shift, c.bias,
                              pw16_weights(w).astype("<i4").tobytes(), None, c.inp, b"", c.expected))
            layers.append({"kernel": "te_conv_pointwise_w16_s8", "name": f"w16 {p}px {ci}->{co}", "args": args})
    return out, layers


def main(argv=None) -> int:
    return run_refit(__doc__, ROOT / "firmware" / "build" / "refit_pw", cases, argv, seed=1516,
                     save_help="replace the pointwise entries of {data}", json_kernel=True)


if __name__ == "__main__":
    sys.exit(main())
