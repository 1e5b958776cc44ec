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

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
import kernel_harness as T  # noqa: E402
import kernel_instructions as KI  # noqa: E402
from test_kernels_dw_stem import stem_case  # noqa: E402

from tinyengine.latency.model import Sample, fit  # noqa: E402

DATA = ROOT / "tinyengine" / "latency" / "data" / "qemu-m4.json"
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--save", action="store_true", help=f"replace the {KERNEL} entry of {DATA}")
    ap.add_argument("--json", help="write the measurements here")
    ap.add_argument("--build", default=str(ROOT / "firmware" / "build" / "refit_stem"))
    a = ap.parse_args(argv)
    T.require_arm_toolchain()
    KI._deployed_like()
    rng = np.random.default_rng(1516)
    cases, layers = [], []
    for (h, w, ci, co, k, s) in SHAPES:
        p = T.K.same_padding((h, w), (k, k), (s, s))
        cases.append(stem_case(rng, h, w, ci, co, (k, k), (s, s), p))
        layers.append({"kernel": KERNEL, "name": f"{h}x{w}x{ci}->{co} k{k}s{s}", "args": {"geom": geom(h, w, ci, co, k, s, p)}})
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
