"""Refit the latency model's in-place depthwise entries (te_depthwise_inplace_s8/k{3,5,7}s{1,2}) on
instruction counts of the current kernel, measured per call on the emulated Cortex-M4 (QEMU
mps2-an386, the method of benchmarks/kernel_instructions.py: SysTick around each call, every output
checked against the NumPy reference).

Shapes: the in-place depthwise shapes of the zoo models (mcunet-in3 / vww1 style) plus random ones
(odd and even widths, 3..48 pixels, 8..120 channels), per kernel size and stride. The fit is
tinyengine.latency.model.fit on the registry's terms; the six entries of
tinyengine/latency/data/qemu-m4.json are replaced (the others are kept) with --save.

Usage: PYTHONPATH=$PWD .venv/bin/python benchmarks/refit_dw_inplace.py [--save] [--json out.json]
"""

from __future__ import annotations

import sys

from refit_common import ROOT, T, run_refit

KERNEL = "te_depthwise_inplace_s8"
ZOO = [(88, 88, 16, 3, 1), (40, 40, 16, 3, 1), (40, 40, 48, 3, 2), (44, 44, 64, 5, 1), (44, 44, 80, 5, 2),
       (22, 22, 120, 5, 1), (11, 11, 240, 7, 1), (20, 20, 48, 7, 2), (22, 22, 144, 7, 1), (44, 44, 48, 7, 2),
       (10, 10, 160, 3, 1), (5, 5, 480, 3, 1), (20, 20, 96, 3, 2), (11, 11, 200, 5, 1),
       # small spatial, many channels (vww1's tail): per-channel costs dominate
       (7, 7, 144, 5, 1), (7, 7, 240, 5, 1), (3, 3, 240, 5, 1), (3, 3, 192, 5, 1), (7, 7, 96, 7, 1),
       (3, 3, 240, 7, 1), (14, 14, 96, 5, 2), (6, 6, 160, 3, 1), (6, 6, 200, 7, 2), (5, 5, 320, 5, 1),
       (3, 3, 480, 3, 1), (3, 3, 576, 3, 1),
       # the zoo layers whose layout the choice weighs (in place vs out of place, vww1 / in3)
       (22, 22, 120, 3, 2), (5, 5, 240, 7, 1), (3, 3, 288, 7, 1), (5, 5, 240, 5, 2), (10, 10, 144, 7, 2),
       (10, 10, 120, 5, 1), (10, 10, 144, 3, 1), (5, 5, 192, 3, 1), (3, 3, 384, 3, 1), (5, 5, 240, 3, 1),
       (11, 11, 288, 3, 2), (6, 6, 384, 3, 1), (6, 6, 480, 7, 1), (11, 11, 240, 3, 1), (20, 20, 48, 3, 1),
       # mcunet-in0's (down to 2x2 planes)
       (24, 24, 24, 3, 1), (24, 24, 64, 5, 2), (12, 12, 48, 3, 1), (12, 12, 80, 7, 2), (6, 6, 96, 5, 1),
       (6, 6, 120, 7, 2), (3, 3, 192, 5, 1), (3, 3, 224, 5, 1), (3, 3, 280, 3, 1), (3, 3, 336, 3, 2),
       (2, 2, 448, 5, 1), (2, 2, 672, 3, 1)]


def shapes(rng) -> list[tuple[int, int, int, int, int]]:
    out = list(ZOO)
    for k in (3, 5, 7):
        for s in (1, 2):
            for _ in range(10):
                h, w = (int(v) for v in rng.integers(3, 49, size=2))
                c = int(rng.integers(8, 121))
                out.append((h, w, c, k, s))
    return out


def geom(h, w, c, k, s, p) -> dict:
    pt, pb, pl, pr = p
    return {"in_h": h, "in_w": w, "in_c": c, "k_h": k, "k_w": k, "stride_h": s, "stride_w": s,
            "pad_top": pt, "pad_left": pl, "out_h": (h + pt + pb - k) // s + 1, "out_w": (w + pl + pr - k) // s + 1}


def dw_cases(rng, kernel: str, inplace: bool) -> tuple[list, list]:
    """The depthwise cases on shapes(rng) and their layers (also benchmarks/refit_dw_s8.py's)."""
    out, layers = [], []
    for (h, w, c, k, s) in shapes(rng):
        p = T.K.same_padding((h, w), (k, k), (s, s))
        out.append(T.dw_case(rng, h, w, c, (k, k), (s, s), p, inplace))
        layers.append({"kernel": kernel, "name": f"{h}x{w}x{c} k{k}s{s}", "args": {"geom": geom(h, w, c, k, s, p)}})
    return out, layers


def cases(rng) -> tuple[list, list]:
    return dw_cases(rng, KERNEL, True)


def main(argv=None) -> int:
    return run_refit(__doc__, ROOT / "firmware" / "build" / "refit_dw", cases, argv, seed=1515,
                     save_help="replace the in-place depthwise entries of {data}")


if __name__ == "__main__":
    sys.exit(main())
