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

import sys
import tempfile
from pathlib import Path

from refit_common import T, run_refit

from search_spaces.zoo import load_model
from tinyengine.ir.graph import build_graph
from tinyengine.passes.fuse_add import candidates

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


def cases(rng) -> tuple[list, list]:
    out, layers = [], []
    for n, ci, co in shapes(rng):
        out.append(T.pw_add_case(rng, n, ci, co, 1))  # in place over the residual, full clamps
        layers.append({"kernel": KERNEL, "name": f"{n}px {ci}->{co}", "args": {"n_pixels": n, "in_c": ci, "out_c": co}})
    return out, layers


def report(model) -> None:
    f = model.kernels[KERNEL]
    print(f"{KERNEL}: samples {f.samples}, RMSPE {100 * f.rmspe:.2f}%")
    for t, c in zip(f.terms, f.coef):
        print(f"  {t:12s} {c:10.4f}")


def main(argv=None) -> int:
    return run_refit(__doc__, Path(tempfile.gettempdir()) / "fit_pw_add", cases, argv, seed=1516,
                     save_help=f"write the {KERNEL} entry of {{data}}", deployed_like=False, report=report,
                     saved=f"saved the {KERNEL} entry to {{data}}")


if __name__ == "__main__":
    sys.exit(main())
