"""Fused streaming execution (``tinyengine gen --stream``): peak SRAM, MACs and instructions with and
without it, for zoo models (random weights) on the emulated Cortex-M4 (QEMU mps2-an386).

For each model, ``tinyengine gen`` writes the project twice, layer by layer and streamed; both are built
and run in QEMU with ``-icount`` (the method of benchmarks/model_instructions.py, whose ``measure`` this
reuses: each run's output is checked against the NumPy reference of the graph it runs). On top, the
streamed run's output bytes must equal the layer-by-layer run's and the unfused graph's reference.
Instructions are those of the DSP path (-DTE_USE_DSP), and with ``--c`` also of the portable C path.

Usage: .venv/bin/python benchmarks/stream_memory.py [--models mcunet-vww1 mcunet-in3] [--c] [--json F]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from model_instructions import measure  # noqa: E402

from codegen.generate import generate  # noqa: E402
from tinyengine.numerics.reference import run_graph  # noqa: E402


def run_model(model: str, work: Path, portable: bool) -> dict:
    out: dict = {"model": model}
    for mode in ("layer", "stream"):
        proj = generate(model, "qemu-m4", work / mode, seed=0, stream=mode == "stream")
        low = proj.lowering
        fl = {"dsp": measure(model, proj, work, True)}
        if portable:
            fl["c"] = measure(model, proj, work, False)
        out[mode] = {"arena_bytes": low.arena_bytes, "macs": low.macs, "layers": len(low.ops),
                     "segments": [o.name for o in low.ops if o.kind == "stream_segment"],
                     "instructions": {k: v["instructions"] for k, v in fl.items()},
                     "output": np.asarray(proj.reference_output, np.int8).tobytes().hex()}
        if mode == "layer":
            unfused = low.graph
            x = proj.reference_input
    ref = np.asarray(run_graph(unfused, x)[unfused.outputs[0]], np.int8).tobytes().hex()
    out["bytes_equal"] = out["layer"]["output"] == out["stream"]["output"] == ref
    out["extra_macs"] = out["stream"]["macs"] - out["layer"]["macs"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["mcunet-vww1", "mcunet-in3"])
    ap.add_argument("--c", action="store_true", help="also the portable C path (-DTE_NO_DSP)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    print("Emulated Cortex-M4 (QEMU mps2-an386, -icount), random weights; every run checked against the reference")
    hdr = (f"{'model':<14} {'peak layer B':>12} {'peak stream B':>13} {'ratio':>6} {'extra MACs':>10} "
           f"{'insn layer':>13} {'insn stream':>13} {'overhead':>8} {'bytes equal':>11}")
    print(hdr)
    rows = []
    for model in args.models:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            r = run_model(model, Path(d), args.c)
        rows.append(r)
        a, b = r["layer"], r["stream"]
        for fl in a["instructions"]:
            ia, ib = a["instructions"][fl], b["instructions"][fl]
            print(f"{model + ('' if fl == 'dsp' else ' (C)'):<14} {a['arena_bytes']:>12,} {b['arena_bytes']:>13,} "
                  f"{a['arena_bytes'] / b['arena_bytes']:>6.2f} {r['extra_macs']:>10} {ia:>13,.0f} {ib:>13,.0f} "
                  f"{100 * (ib - ia) / ia:>7.1f}% {str(r['bytes_equal']):>11}   [{time.perf_counter() - t0:.0f} s]",
                  flush=True)
    if args.json:
        for r in rows:
            for m in ("layer", "stream"):
                r[m].pop("output")
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if all(r["bytes_equal"] and r["extra_macs"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
