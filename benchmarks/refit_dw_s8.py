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

import sys

from refit_common import ROOT, run_refit
from refit_dw_inplace import dw_cases

KERNEL = "te_depthwise_s8"


def cases(rng) -> tuple[list, list]:
    return dw_cases(rng, KERNEL, False)


def main(argv=None) -> int:
    return run_refit(__doc__, ROOT / "firmware" / "build" / "refit_dw_s8", cases, argv, seed=1518,
                     save_help=f"replace the {KERNEL} entry of {{data}}")


if __name__ == "__main__":
    sys.exit(main())
