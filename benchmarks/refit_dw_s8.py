"""Refit the latency model's out-of-place depthwise entry (te_depthwise_s8) on instruction counts of the
current kernel, measured per call on the emulated Cortex-M4 (QEMU mps2-an386, the method of
benchmarks/kernel_instructions.py: SysTick around each call, every output checked against the NumPy
reference) -- the counterpart of benchmarks/refit_dw_inplace.py, so that the layout choice
(tinyengine/passes/layout.py) weighs two fits measured the same way.

Shapes: those of refit_dw_inplace.py (the zoo's depthwise layers and random ones); quantisation as
deployed layers. The fit is tinyengine.latency.model.fit on the registry's terms; the te_depthwise_s8
entry of tinyengine/latency/data/qemu-m4.json is replaced (the others are kept) with --save.

Usage: PYTHONPATH=$PWD .venv/bin/python benchmarks/refit_dw_s8.py [--save] [--json out.json]
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
from refit_dw_inplace import geom, shapes  # noqa: E402

from tinyengine.latency.model import Sample, fit  # noqa: E402

DATA = ROOT / "tinyengine" / "latency" / "data" / "qemu-m4.json"
KERNEL = "te_depthwise_s8"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--save", action="store_true", help=f"replace the {KERNEL} entry of {DATA}")
    ap.add_argument("--json", help="write the measurements here")
    ap.add_argument("--build", default=str(ROOT / "firmware" / "build" / "refit_dw_s8"))
    a = ap.parse_args(argv)
    T.require_arm_toolchain()
    KI._deployed_like()
    rng = np.random.default_rng(1518)
    cases, layers = [], []
    for (h, w, c, k, s) in shapes(rng):
        p = T.K.same_padding((h, w), (k, k), (s, s))
        cases.append(T.dw_case(rng, h, w, c, (k, k), (s, s), p, False))
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
