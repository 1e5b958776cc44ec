"""The co-design benchmark suite: for the zoo models and a few searched/sampled ones, side by side in
one run: peak SRAM and flash from our planner and from the built firmware (ELF), TF-Lite Micro's arena
for the same int8 model, instructions per inference of our generated code on the emulated Cortex-M4,
and the ratios ours/theirs.

    make bench      (= .venv/bin/python benchmarks/suite.py [--models ...] [--sampled N] [--json F])

Per model: random weights (seed 0); `tinyengine gen` -> `tinyengine build` (PlatformIO offline) on
qemu-m4 (mps2-an386, Cortex-M4: 320 KB / 1 MB), or on the nucleo-h743zi stand-in (mps2-an500,
Cortex-M7: 512 KB / 2 MB) when the model does not fit -- QEMU counts the same instructions on both
-- then QEMU with -icount shift=0 and the serial probe (output checked against the NumPy reference).
The TFLM columns come from benchmarks/vs_tflm.py (exported .tflite run in the tflite-micro
interpreter; `exact` = our padding, bit-exact; `same` = TFLite SAME padding). Instructions are not
cycles; `pred.` is the latency model's prediction (tinyengine/latency.py) for the same network.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import vs_tflm  # noqa: E402

from boards import load_board  # noqa: E402
from codegen.generate import generate  # noqa: E402
from search_spaces.zoo import load_model, zoo_names  # noqa: E402
from tinyengine.cost import fast_costs  # noqa: E402
from tinyengine.deploy.session import build_project, emulate_built, read_project  # noqa: E402
from tinyengine.latency import default_model  # noqa: E402

BOARDS = ("qemu-m4", "nucleo-h743zi")


def firmware(spec: str, arch, work: Path) -> dict:
    c = fast_costs(arch)
    for b in BOARDS:
        board = load_board(b)
        # room for the firmware's stack, protocol buffers and code
        if c.peak_sram + 48 * 1024 <= board.sram_bytes and c.flash_bytes + 64 * 1024 <= board.flash_bytes:
            break
    root = work / Path(spec).stem
    generate(spec, board.name, root, seed=0)
    root, meta, board = read_project(root)
    res = build_project(root, meta, board, emulated=True)  # the QEMU build (a real board: its stand-in)
    rec = emulate_built(res, root, meta, board, runs=1, layers=False, timeout=300)
    pred = default_model().predict_arch(arch)  # instructions, like the measurement
    return {"board": board.name, "fw_flash_B": res.flash_bytes, "fw_sram_B": res.ram_bytes,
            "fw_arena_B": res.arena_bytes, "instructions": rec["latency"]["median"], "macs": meta["macs"],
            "predicted_instructions": pred, "output_ok": rec["checks"]["output_equals_reference"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", help="zoo names or arch JSON files (default: the zoo)")
    ap.add_argument("--sampled", type=int, default=2, help="N seeded sub-networks of the search space")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    models = [(m, load_model(m)) for m in (args.models or zoo_names())] + vs_tflm._sampled(args.sampled)
    K = 1024
    hdr = (f"{'model':22} {'board':13} | {'peak plan':>9} {'fw SRAM':>8} {'TFLM ex.':>8} {'TFLM same':>9} "
           f"{'o/TFLM':>6} | {'flash plan':>10} {'fw flash':>8} {'.tflite':>7} {'o/tfl':>5} | "
           f"{'M4 instructions':>15} {'insn/MAC':>8} {'pred.':>6} {'ok':>3} {'s':>4}")
    print(hdr)
    print("-" * len(hdr))
    rows = []
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        for name, arch in models:
            t0 = time.perf_counter()
            spec = name
            if not (Path(name).is_file() or name in zoo_names()):
                spec = str(work / f"{name}.json")
                arch.save(spec)
            r = vs_tflm.measure(name, arch)
            r.update(firmware(spec, arch, work))
            r["seconds"] = time.perf_counter() - t0
            rows.append(r)
            print(f"{name[:22]:22} {r['board']:13} | {r['ours_peak_B'] / K:7.1f}KB {r['fw_sram_B'] / K:6.1f}KB "
                  f"{r['tflm_exact_total_B'] / K:6.1f}KB {r['tflm_same_total_B'] / K:7.1f}KB "
                  f"{r['ours_peak_B'] / r['tflm_same_total_B']:6.2f} | {r['ours_flash_B'] / K:8.1f}KB "
                  f"{r['fw_flash_B'] / K:6.1f}KB {r['tflite_bytes'] / K:5.0f}KB {r['ratio_flash']:5.2f} | "
                  f"{r['instructions']:15,.0f} {r['instructions'] / r['macs']:8.2f} "
                  f"{r['predicted_instructions'] / r['instructions'] - 1:+6.1%} "
                  f"{'yes' if r['output_ok'] and r['bit_exact'] else 'NO':>3} {r['seconds']:4.0f}", flush=True)
    lo = min(r["ours_peak_B"] / r["tflm_same_total_B"] for r in rows)
    hi = max(r["ours_peak_B"] / r["tflm_same_total_B"] for r in rows)
    print(f"\nours/TFLM arena: {lo:.2f} .. {hi:.2f}; lower than TFLM for "
          f"{sum(r['ours_peak_B'] < r['tflm_same_total_B'] for r in rows)}/{len(rows)} models. "
          f"fw SRAM = the ELF's .data + .bss + stack: the planner's arena (= the linker map's te_arena) plus "
          "the runtime; fw flash = code + weights. ok = QEMU output and TFLM output equal our NumPy reference.")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
