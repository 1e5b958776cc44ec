"""Fit the latency model's entry for the fused projection + residual add (te_conv_pointwise_add_s8) on
instruction counts measured per call on the emulated Cortex-M4 (QEMU mps2-an386, the method of
benchmarks/kernel_instructions.py: SysTick around each call, every output checked against the NumPy
reference).

Shapes: every fused block of the zoo models (the projection's pixels, input and output channels of each
pointwise conv -> ADD pair tinyengine.passes.fuse_add finds) plus random ones (4..1600 pixels, at most ARENA bytes of tensors, input
channels a multiple of 4 or not, 8..160 output channels). The fit is tinyengine.latency.model.fit on the
registry's terms (the pointwise kernel's: the add stage is one more cost per output and its table one per call); --save writes the entry
into tinyengine/latency/data/qemu-m4.json (the others are kept).

Usage: PYTHONPATH=$PWD .venv/bin/python benchmarks/fit_pointwise_add.py [--save] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
import kernel_harness as T  # noqa: E402
import kernel_instructions as KI  # noqa: E402

from search_spaces.zoo import load_model  # noqa: E402
from tinyengine.ir.graph import build_graph  # noqa: E402
from tinyengine.latency.model import Sample, fit  # noqa: E402
from tinyengine.passes.fuse_add import candidates  # noqa: E402

DATA = ROOT / "tinyengine" / "latency" / "data" / "qemu-m4.json"
KERNEL = "te_conv_pointwise_add_s8"
ARENA = 150_000  # bytes of input + residual + output per case (the QEMU test firmware's 256 KB RAM)
ZOO = ("mcunet-vww1", "mcunet-in0", "mcunet-in1", "mcunet-in3", "proxyless-w0.3")


def shapes(rng) -> list[tuple[int, int, int]]:
    out = set()
    for m in ZOO:
        g = build_graph(load_model(m))
        for i, _ in candidates(g):
            h, w, ci = g.tensors[g.ops[i].inputs[0]].shape
            out.add((h * w, ci, g.tensors[g.ops[i].output].shape[2]))
    out = sorted((min(n, ARENA // (ci + 2 * co)), ci, co) for n, ci, co in out)  # the big early blocks: fewer pixels
    for _ in range(40):
        ci = int(rng.integers(2, 121)) * 4 if rng.random() < 0.8 else int(rng.integers(3, 200))
        co = int(rng.integers(8, 161))
        out.append((min(int(rng.integers(4, 1601)), ARENA // (ci + 2 * co)), ci, co))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--save", action="store_true", help=f"write the {KERNEL} entry of {DATA}")
    ap.add_argument("--json", help="write the measurements here")
    ap.add_argument("--build", default=str(Path(tempfile.gettempdir()) / "fit_pw_add"))
    a = ap.parse_args(argv)
    T.require_arm_toolchain()
    rng = np.random.default_rng(1516)
    cases, layers = [], []
    for n, ci, co in shapes(rng):
        cases.append(T.pw_add_case(rng, n, ci, co, 1))  # in place over the residual, full clamps
        layers.append({"kernel": KERNEL, "name": f"{n}px {ci}->{co}", "args": {"n_pixels": n, "in_c": ci, "out_c": co}})
    build = Path(a.build)
    build.mkdir(parents=True, exist_ok=True)
    res = KI.measure(cases, build, "dsp", [])
    samples = [Sample("fit", la, r["insns"]) for la, r in zip(layers, res)]
    model = fit(samples, target="qemu-m4", core="cortex-m4", unit="instructions")
    f = model.kernels[KERNEL]
    print(f"{KERNEL}: samples {f.samples}, RMSPE {100 * f.rmspe:.2f}%")
    for t, c in zip(f.terms, f.coef):
        print(f"  {t:12s} {c:10.4f}")
    if a.json:
        Path(a.json).write_text(json.dumps([{"layer": la["name"], "insns": r["insns"]} for la, r in zip(layers, res)],
                                           indent=1))
    if a.save:
        d = json.loads(DATA.read_text())
        d["kernels"][KERNEL] = {"terms": f.terms, "coef": f.coef, "samples": f.samples, "rmspe": f.rmspe}
        DATA.write_text(json.dumps(d, indent=1))
        print(f"saved the {KERNEL} entry to {DATA}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
