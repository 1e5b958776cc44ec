"""Our planner's peak SRAM and flash beside TensorFlow Lite Micro's, for the same int8 model.

    .venv/bin/python benchmarks/vs_tflm.py [--models mcunet-in0 mcunet-vww1 arch.json ...] [--sampled N]
                                           [--json out.json]

Per model: quantise with seeded random weights (``tinyengine.frontend.weights.random_model``, 4 random calibration
images), plan our arena (``plan_memory``: input image, in-place depthwise/add and kernel scratch
counted), export the int8 .tflite (``export_tflite``) and run it in the ``tflite-micro`` interpreter,
whose recording allocator reports the arena: total = head (tensors, TFLM's greedy planner, reference
kernels need no scratch) + tail (persistent: runtime structs, per-channel multipliers). Two exports:
``exact`` (PAD ops where TFLite SAME differs from our padding: what TFLM must run to compute our
model bit for bit, checked here on one input) and ``same`` (TFLite SAME everywhere: the layout of a
TensorFlow-trained model of the same architecture, no PAD tensors; the fairer memory figure).
Flash: ours = int8 weights + int32 bias + per-channel requant (no code) vs the .tflite file size.
Ratios < 1 mean ours is smaller. ``--sampled N`` adds N seeded sub-networks of the search space
(W 0.3-0.5, R 64-128) as stand-ins for searched models. A ``.tflite`` in ``--models`` is imported as
is and TFLM runs the file itself; an ``.onnx`` is quantised by us and TFLM runs our export of it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from codegen.generate import calibration_images  # noqa: E402
from search_spaces.space import SearchSpace  # noqa: E402
from search_spaces.zoo import load_model, zoo_names  # noqa: E402
from tinyengine.export import export_tflite, tflite_summary  # noqa: E402
from tinyengine.export.tflm import tflm_arena, tflm_invoke  # noqa: E402
from tinyengine.frontend.quantize import quantize_model  # noqa: E402
from tinyengine.frontend.weights import random_model  # noqa: E402
from tinyengine.ir.opcost import op_flash  # noqa: E402
from tinyengine.numerics.reference import run_graph  # noqa: E402
from tinyengine.pipeline import plan_memory  # noqa: E402


def _sampled(n: int):
    space = SearchSpace()
    out = []
    for seed in range(n):
        rng = np.random.default_rng(100 + seed)
        w, r = float(rng.choice([0.3, 0.4, 0.5])), int(rng.choice([64, 96, 128]))
        a = space.sample(rng, w, r)
        out.append((f"sampled-w{w:.1f}-r{r}-s{seed}", a))
    return out


def measure(name: str, arch, seed: int = 0) -> dict:
    t0 = time.perf_counter()
    graph = quantize_model(arch, random_model(arch, seed), calibration_images(arch, 4, seed))
    ours = plan_memory(graph).arena_bytes
    flash = sum(op_flash(o) for o in graph.ops)
    exact = export_tflite(graph, padding="exact")
    same = export_tflite(graph, padding="same")
    a_exact, a_same = tflm_arena(exact), tflm_arena(same)
    x = np.random.default_rng(seed).integers(-128, 128, graph.tensors[graph.inputs[0]].shape,
                                             dtype=np.int16).astype(np.int8)
    ref = run_graph(graph, x)[graph.outputs[0]].reshape(-1)
    got = tflm_invoke(exact, x).reshape(-1)
    pub = (getattr(arch, "meta", None) or {}).get("published", {})
    try:
        tflm_pub = float(str(pub.get("tflm_sram_kB", "")).split("(")[0]) * 1024
    except ValueError:
        tflm_pub = None
    return {
        "model": name, "resolution": arch.resolution,
        "ops": len(tflite_summary(exact)["ops"]), "pads": tflite_summary(exact)["ops"].count("PAD"),
        "ours_peak_B": ours,
        "tflm_exact_total_B": a_exact.total, "tflm_exact_head_B": a_exact.head, "tflm_exact_tail_B": a_exact.tail,
        "tflm_same_total_B": a_same.total, "tflm_same_head_B": a_same.head, "tflm_same_tail_B": a_same.tail,
        "ratio_vs_tflm_exact": ours / a_exact.total, "ratio_vs_tflm_same": ours / a_same.total,
        "ratio_vs_tflm_same_head": ours / a_same.head,
        "tflm_published_B": tflm_pub,
        "ours_flash_B": flash, "tflite_bytes": len(exact), "ratio_flash": flash / len(exact),
        "bit_exact": bool(got.shape == ref.shape and np.array_equal(got, ref)),
        "seconds": time.perf_counter() - t0,
    }


def measure_file(path: str, seed: int = 0) -> dict:
    """The same row for a user's model file: an int8 .tflite (TFLM runs the file itself) or a float .onnx
    (quantised by us on 16 random images; TFLM runs our export of it)."""
    from tinyengine.frontend.model_source import load_model_file
    t0 = time.perf_counter()
    graph, info = load_model_file(path, seed=seed)
    ours = plan_memory(graph).arena_bytes
    flash = sum(op_flash(o) for o in graph.ops)
    data = Path(path).read_bytes() if path.lower().endswith(".tflite") else export_tflite(graph)
    arena = tflm_arena(data)
    x = np.random.default_rng(seed).integers(-128, 128, graph.tensors[graph.inputs[0]].shape,
                                             dtype=np.int16).astype(np.int8)
    ref = run_graph(graph, x)[graph.outputs[0]].reshape(-1)
    got = tflm_invoke(data, x).reshape(-1)
    ops = tflite_summary(data)["ops"]
    return {
        "model": Path(path).name, "resolution": info.resolution, "ops": len(ops), "pads": ops.count("PAD"),
        "ours_peak_B": ours,
        # a file has one layout: the 'exact' and 'same' columns are the same TFLM run
        "tflm_exact_total_B": arena.total, "tflm_exact_head_B": arena.head, "tflm_exact_tail_B": arena.tail,
        "tflm_same_total_B": arena.total, "tflm_same_head_B": arena.head, "tflm_same_tail_B": arena.tail,
        "ratio_vs_tflm_exact": ours / arena.total, "ratio_vs_tflm_same": ours / arena.total,
        "ratio_vs_tflm_same_head": ours / arena.head, "tflm_published_B": None,
        "ours_flash_B": flash, "tflite_bytes": len(data), "ratio_flash": flash / len(data),
        "bit_exact": bool(got.shape == ref.shape and np.array_equal(got, ref)),
        "seconds": time.perf_counter() - t0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", metavar="MODEL",
                    help="zoo names, arch JSON paths, int8 .tflite or float .onnx files (default: every zoo model)")
    ap.add_argument("--sampled", type=int, default=2, metavar="N",
                    help="also N seeded sub-networks of the search space (default 2; 0 for none)")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    from tinyengine.frontend.model_source import is_model_file
    models = [(m, None if is_model_file(m) else load_model(m)) for m in (args.models or zoo_names())] \
        + _sampled(args.sampled)
    K = 1024
    hdr = (f"{'model':22s} {'R':>4s} {'ops':>4s} {'PAD':>3s} | {'ours':>8s} | {'TFLM exact':>10s} {'TFLM same':>9s} "
           f"{'(tensors':>8s} {'+persist)':>9s} {'TFLM publ':>9s} | {'o/exact':>7s} {'o/same':>6s} {'o/tensors':>9s} | "
           f"{'flash':>7s} {'.tflite':>7s} {'ratio':>5s} | {'exact?':>6s} {'s':>4s}")
    print(hdr)
    print("-" * len(hdr))
    rows = []
    for name, arch in models:
        r = measure_file(name) if arch is None else measure(name, arch)
        rows.append(r)
        pub = "-" if r["tflm_published_B"] is None else f"{r['tflm_published_B'] / K:.0f}KB"
        print(f"{r['model']:22s} {r['resolution']:4d} {r['ops']:4d} {r['pads']:3d} | {r['ours_peak_B'] / K:6.1f}KB | "
              f"{r['tflm_exact_total_B'] / K:8.1f}KB {r['tflm_same_total_B'] / K:7.1f}KB "
              f"{r['tflm_same_head_B'] / K:6.1f}KB {r['tflm_same_tail_B'] / K:7.1f}KB {pub:>9s} | "
              f"{r['ratio_vs_tflm_exact']:7.2f} {r['ratio_vs_tflm_same']:6.2f} {r['ratio_vs_tflm_same_head']:9.2f} | "
              f"{r['ours_flash_B'] / K:5.0f}KB {r['tflite_bytes'] / K:5.0f}KB {r['ratio_flash']:5.2f} | "
              f"{'yes' if r['bit_exact'] else 'NO':>6s} {r['seconds']:4.1f}", flush=True)
    worst = max(rows, key=lambda r: r["ratio_vs_tflm_same"])
    print(f"\nours/TFLM arena (same padding, total): {min(r['ratio_vs_tflm_same'] for r in rows):.2f} .. "
          f"{worst['ratio_vs_tflm_same']:.2f} (worst: {worst['model']}); ours < TFLM for "
          f"{sum(r['ratio_vs_tflm_same'] < 1 for r in rows)}/{len(rows)} models. "
          f"Bit-exact (exact export, one input): {sum(r['bit_exact'] for r in rows)}/{len(rows)}.")
    print("TFLM exact = the .tflite that computes our model bit for bit (PAD before stride-2 convs on even "
          "sizes); TFLM same = TFLite SAME padding, no PAD tensors. (tensors + persist) split the 'same' "
          "arena into TFLM's non-persistent head and persistent tail; o/tensors compares ours with the head "
          "alone. TFLM publ: MCUNet's published TF-Lite Micro SRAM. TFLM runs its reference kernels here "
          "(no CMSIS-NN scratch).")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
