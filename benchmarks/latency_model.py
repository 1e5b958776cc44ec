"""Latency model accuracy: fit per-kernel models on per-layer QEMU measurements of random sub-networks
and predict held-out networks (other random ones and zoo models) layer by layer.

Every network is generated (`tinyengine gen`, random weights), built offline (`pio run`), run in QEMU
mps2-an386 (Cortex-M4, -icount shift=0) and probed per layer (`tinyengine emulate --layers`); the
records are kept in --records so a rerun only measures what is missing. Reports RMSPE and the share
of per-layer predictions within +-10% on the held-out networks (measured: instructions), and with
--save writes the fitted model (what tinyengine ships as tinyengine/latency_data/qemu-m4.json).

Usage: .venv/bin/python benchmarks/latency_model.py [--train 12] [--test 6] [--records out/latency] [--save F]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codegen.generate import generate  # noqa: E402
from search_spaces.space import SearchSpace  # noqa: E402
from tinyengine.cost import fast_costs  # noqa: E402
from tinyengine.deploy.session import build_project, emulate_built, read_project  # noqa: E402
from tinyengine.latency import evaluate, fit, read_records  # noqa: E402

BOARD = "qemu-m4"
ZOO_HELD_OUT = ("mcunet-vww1", "mcunet-in0")


def random_archs(n: int, seed: int) -> list:
    """Sub-networks of the MobileNetV2-like space that fit qemu-m4 (320 KB / 1 MB), varied in W and R."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        w = float(rng.choice([0.3, 0.35, 0.4, 0.5, 0.6]))
        r = int(rng.choice([64, 80, 96, 112, 128, 144]))
        space = SearchSpace(num_classes=int(rng.choice([2, 10, 100, 1000])), in_channels=int(rng.choice([1, 3])))
        arch = space.sample(rng, w, r)
        c = fast_costs(arch)
        if c.peak_sram <= 300 * 1024 and c.flash_bytes <= 850 * 1024:
            out.append(arch)
    return out


def record(spec: str, name: str, records: Path, work: Path) -> Path:
    path = records / f"{name}.json"
    if path.is_file():
        return path
    root = work / name
    generate(spec, BOARD, root, seed=0, force=True)  # our own scratch folder, maybe from an older version
    root, meta, board = read_project(root)
    res = build_project(root, meta, board, emulated=True)  # the QEMU build (a real board: its stand-in)
    rec = emulate_built(res, root, meta, board, runs=1, layers=True, timeout=120)
    if not rec["checks"].get("output_equals_reference"):
        raise RuntimeError(f"{name}: output differs from the reference")
    path.write_text(json.dumps(rec) + "\n")
    return path


def measure(archs, prefix: str, records: Path, work: Path) -> list[Path]:
    paths = []
    for i, arch in enumerate(archs):
        name = f"{prefix}{i:02d}-w{arch.width_mult:g}-r{arch.resolution}"
        spec = work / f"{name}.json"
        arch.save(spec)
        t0 = time.perf_counter()
        paths.append(record(str(spec), name, records, work))
        print(f"  {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", type=int, default=12)
    ap.add_argument("--test", type=int, default=6)
    ap.add_argument("--records", default=str(ROOT / "out" / "latency"))
    ap.add_argument("--save", help="write the model fitted on all records (train + held-out) here")
    args = ap.parse_args(argv)
    records = Path(args.records)
    work = records / "work"
    records.mkdir(parents=True, exist_ok=True)
    work.mkdir(exist_ok=True)
    print(f"measuring on {BOARD} (records in {records})")
    train = measure(random_archs(args.train, 11), "tr", records, work)
    test = measure(random_archs(args.test, 12), "te", records, work)
    test += [record(m, m, records, work) for m in ZOO_HELD_OUT]
    tr, meta = read_records(train)
    te, _ = read_records(test)
    model = fit(tr, target=BOARD, core=meta["core"], unit=meta["unit"])
    print(f"\nfitted on {len(tr)} layers of {len(train)} networks; held out: {len(te)} layers of {len(test)} networks")
    print(f"{'kernel':<26} {'samples':>7} {'train RMSPE':>11}")
    for k, f in sorted(model.kernels.items()):
        print(f"{k:<26} {f.samples:>7} {100 * f.rmspe:>10.1f}%")
    ev = evaluate(model, te)
    print(f"\nheld-out per-layer: RMSPE {100 * ev['rmspe']:.1f}%, within +-10%: {100 * ev['within_10pct']:.1f}% "
          f"of {ev['layers']} layers, worst {100 * ev['worst']:.0f}%")
    for m, e in ev["models"].items():
        print(f"  whole network {m}: {100 * e:+.1f}%")
    by_kernel: dict[str, list[float]] = {}
    for s in te:
        by_kernel.setdefault(s.layer["kernel"], []).append(abs(model.predict_layer(s.layer) - s.measured) / s.measured)
    for k, errs in sorted(by_kernel.items()):
        print(f"  {k:<26} {len(errs):>4} layers, within +-10%: {100 * np.mean(np.array(errs) <= 0.1):.0f}%")
    if args.save:
        full = fit(tr + te, target=BOARD, core=meta["core"], unit=meta["unit"])
        full.save(args.save)
        print(f"wrote {args.save}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
