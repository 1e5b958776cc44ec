"""The .tflite fixtures (TensorFlow's converter output, tests/fixtures/tflite/) end to end on the emulated
Cortex-M4: ops, our peak SRAM beside TFLite Micro's arena, flash, instructions per inference, and
whether the firmware's output bytes equal the tflite-micro interpreter's on 4 inputs.

    .venv/bin/python benchmarks/tflite_fixtures.py [--board qemu-m4] [--json out.json] [FILE.tflite ...]

Per model: ``tinyengine gen F.tflite --board B`` (import, plan, lower, write), the offline PlatformIO
build (``tinyengine build``: ELF flash/SRAM), QEMU ``-icount shift=0`` probed over the serial protocol:
4 seeded random int8 inputs compared with ``tflm_invoke`` and 10 timed runs (instructions, not cycles).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from codegen.generate import generate  # noqa: E402
from tinyengine.deploy.protocol import ProbeClient, ticks_to_instructions  # noqa: E402
from tinyengine.deploy.qemu import qemu_serial  # noqa: E402
from tinyengine.deploy.session import build_project, read_project  # noqa: E402
from tinyengine.export.tflm import tflm_arena, tflm_invoke  # noqa: E402

FIX = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "tflite"


def measure(path: Path, board: str, work: Path) -> dict:
    data = path.read_bytes()
    proj = generate(str(path), board, work / path.stem)
    low = proj.lowering
    g = low.graph
    root, meta, b = read_project(proj.root)
    res = build_project(root, meta, b)
    arena = tflm_arena(data)
    rng = np.random.default_rng(11)
    xs = [rng.integers(-128, 128, g.tensors[g.inputs[0]].shape, dtype=np.int8) for _ in range(4)]
    with qemu_serial(res.elf, b.qemu_machine, icount_shift=0) as q, ProbeClient.open(q.url, timeout=120) as c:
        equal = sum(np.array_equal(np.frombuffer(c.infer(x.tobytes())[0], np.int8), tflm_invoke(data, x).reshape(-1))
                    for x in xs)
        ticks = sorted(c.bench(10, timeout=300))  # on an all-zero-point input
    kinds: dict[str, int] = {}
    for op in g.ops:
        kinds[op.kind] = kinds.get(op.kind, 0) + 1
    return {"model": path.stem, "input": list(g.tensors[g.inputs[0]].shape), "ops": kinds,
            "macs": low.macs, "ours_peak_B": low.arena_bytes, "tflm_arena_B": arena.total,
            "tflm_head_B": arena.head, "tflm_tail_B": arena.tail, "weights_B": low.weight_bytes,
            "tflite_B": len(data), "elf_flash_B": res.flash_bytes, "elf_sram_B": res.ram_bytes,
            "instructions": ticks_to_instructions(ticks[len(ticks) // 2], 0), "equal_inputs": int(equal),
            "inputs": len(xs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*", type=Path, help="int8 .tflite files (default: the test fixtures)")
    ap.add_argument("--board", default="qemu-m4")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    files = args.files or sorted(FIX.glob("*.tflite"))
    rows = []
    print("| model | input | ops | MACs | our peak SRAM | TFLM arena (tensors + persistent) | ours/TFLM | "
          "weights / .tflite | ELF flash / SRAM | M4 instructions | = TFLM |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            r = measure(f, args.board, Path(tmp))
            rows.append(r)
            ops = ", ".join(f"{k} {n}" for k, n in r["ops"].items())
            print(f"| {r['model']} | {'x'.join(map(str, r['input']))} | {ops} | {r['macs'] / 1e6:.2f}M | "
                  f"{r['ours_peak_B']:,} B | {r['tflm_arena_B']:,} B ({r['tflm_head_B']:,} + {r['tflm_tail_B']:,}) | "
                  f"{r['ours_peak_B'] / r['tflm_arena_B']:.2f} | {r['weights_B']:,} / {r['tflite_B']:,} B | "
                  f"{r['elf_flash_B']:,} / {r['elf_sram_B']:,} B | {r['instructions']:,.0f} | "
                  f"{r['equal_inputs']}/{r['inputs']} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
