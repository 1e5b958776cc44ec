"""The machinery the latency refit scripts share (benchmarks/refit_dw_inplace.py, refit_dw_s8.py,
refit_stem.py, refit_pointwise.py, fit_pointwise_add.py): their command line (--save / --json /
--build), the arm toolchain check, deployed-like quantisation, the per-call instruction counts on the
emulated Cortex-M4 (kernel_instructions.measure), the fit, the RMSPE lines, the --json measurements and
the --save replacement of the fitted entries in tinyengine/latency/data/qemu-m4.json (the others kept).

Each script supplies only its cases: ``make_cases(rng) -> (cases, layers)``, one layer dict
(kernel, name, args) per kernel_harness case.
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
import kernel_harness as T  # noqa: E402, F401 - re-exported: the scripts build their cases with it
import kernel_instructions as KI  # noqa: E402

from tinyengine.latency.model import Sample, fit  # noqa: E402

DATA = ROOT / "tinyengine" / "latency" / "data" / "qemu-m4.json"


def print_fits(model) -> None:
    """One line per fitted entry: its sample count and RMSPE."""
    for key in sorted(model.kernels):
        f = model.kernels[key]
        print(f"{key:36s} samples {f.samples:3d}  RMSPE {100 * f.rmspe:.2f}%")


def run_refit(doc: str, build_default: str | Path, make_cases, argv=None, *, seed: int, save_help: str,
              deployed_like: bool = True, json_kernel: bool = False, report=print_fits,
              saved: str = "saved {n} entries to {data}") -> int:
    """Parse the command line, measure ``make_cases(rng)`` (rng = default_rng(seed)) on QEMU, fit,
    report (``report(model)``), write --json and, with --save, the fitted entries. ``save_help`` and
    ``saved`` are formatted with data= (the data file) and n= (the number of entries saved)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--save", action="store_true", help=save_help.format(data=DATA))
    ap.add_argument("--json", help="write the measurements here")
    ap.add_argument("--build", default=str(build_default))
    a = ap.parse_args(argv)
    T.require_arm_toolchain()
    if deployed_like:
        KI._deployed_like()
    cases, layers = make_cases(np.random.default_rng(seed))
    build = Path(a.build)
    build.mkdir(parents=True, exist_ok=True)
    res = KI.measure(cases, build, "dsp", [])
    samples = [Sample("refit", la, r["insns"]) for la, r in zip(layers, res)]
    model = fit(samples, target="qemu-m4", core="cortex-m4", unit="instructions")
    report(model)
    if a.json:
        rows = [{"layer": la["name"], **({"kernel": la["kernel"]} if json_kernel else {}), "insns": r["insns"]}
                for la, r in zip(layers, res)]
        Path(a.json).write_text(json.dumps(rows, indent=1))
    if a.save:
        d = json.loads(DATA.read_text())
        for key, f in model.kernels.items():
            d["kernels"][key] = {"terms": f.terms, "coef": f.coef, "samples": f.samples, "rmspe": f.rmspe}
        DATA.write_text(json.dumps(d, indent=1))
        print(saved.format(n=len(model.kernels), data=DATA))
    return 0
