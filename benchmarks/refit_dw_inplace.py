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

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
import kernel_harness as T
import kernel_instructions as KI

from tinyengine.latency.model import Sample, fit

DATA = ROOT / "tinyengine" / "latency" / "data" / "qemu-m4.json"
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--save", action="store_true", help=f"replace the in-place depthwise entries of {DATA}")
    ap.add_argument("--json", help="write the measurements here")
    ap.add_argument("--build", default=str(ROOT / "firmware" / "build" / "refit_dw"))
    a = ap.parse_args(argv)
    T.require_arm_toolchain()
    KI._deployed_like()
    rng = np.random.default_rng(1515)
    shp = shapes(rng)
    cases, layers = [], []
    for (h, w, c, k, s) in shp:
        p = T.K.same_padding((h, w), (k, k), (s, s))
        cases.append(T.dw_case(rng, h, w, c, (k, k), (s, s), p, True))
        layers.append({"kernel": KERNEL, "name": f"{h}x{w}x{c} k{k}s{s}", "args": {"geom": geom(h, w, c, k, s, p)}})
    build = Path(a.build)
    build.mkdir(parents=True, exist_ok=True)
    res = KI.measure(cases, build, "dsp", [])
    samples = [Sample("refit", la, r["insns"]) for la, r in zip(layers, res)]
    model = fit(samples, target="qemu-m4", core="cortex-m4", unit="instructions")
    for key in sorted(model.kernels):
        f = model.kernels[key]
        print(f"{key:36s} samples {f.samples:3d}  RMSPE {100 * f.rmspe:.2f}%")
    if a.json:
        Path(a.json).write_text(json.dumps([{"layer": la["name"], "insns": r["insns"]} for la, r in zip(layers, res)],
                                           indent=1))
    if a.save:
        d = json.loads(DATA.read_text())
        for key, f in model.kernels.items():
            d["kernels"][key] = {"terms": f.terms, "coef": f.coef, "samples": f.samples, "rmspe": f.rmspe}
        DATA.write_text(json.dumps(d, indent=1))
        print(f"saved {len(model.kernels)} entries to {DATA}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
