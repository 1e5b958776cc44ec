"""Benchmark: TinyNAS search on Fashion-MNIST under 64 KB SRAM / 256 KB flash (the `quick` budget).

Runs (or resumes: nothing done is recomputed) ``tinynas search --budget quick`` into OUT and prints
the figures: the searched winner vs a hand-scaled MobileNetV2 under the same budget (float and int8
accuracy, MACs, peak SRAM, flash), and evolution vs random search with the same number of
evaluations on the held-out split (random search repeated with --random-repeats more seeds).

    .venv/bin/python benchmarks/search_fashion_mnist.py --out out/search-quick
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boards.units import format_size  # noqa: E402
from tinynas.constraints import constraints_from_args  # noqa: E402
from tinynas.search import SearchOptions, get_budget, run_search  # noqa: E402


def int8_full_test(out: Path) -> dict:
    """The saved int8 graphs (tinyml-graph/1) of the winner and the baseline on the whole Fashion-MNIST test set."""
    import numpy as np
    from tqdm import tqdm

    from search_spaces.arch import ArchConfig
    from tinyengine.ir.graph_io import load_graph
    from tinyengine.numerics.reference import dequantize_output, quantize_input, run_graph
    from tinynas.data import load_fashion_mnist

    res = {}
    for tag, arch_f, graph_f in (("winner", "arch.json", "model_int8.npz"),
                                 ("baseline", "baseline_arch.json", "baseline_model_int8.npz")):
        if not (out / graph_f).exists():
            continue
        arch = ArchConfig.load(out / arch_f)
        graph = load_graph(out / graph_f)
        x, y = load_fashion_mnist("test", resolution=arch.resolution, channels=arch.in_channels)
        t = time.perf_counter()
        correct = 0
        for img, lab in tqdm(list(zip(x, y)), desc=f"int8 {tag}", leave=False):
            vals = run_graph(graph, quantize_input(graph, img))
            correct += int(np.argmax(dequantize_output(graph, vals[graph.outputs[0]])) == lab)
        res[tag] = (correct / len(y), len(y), time.perf_counter() - t)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/search-quick")
    ap.add_argument("--sram", default="64KB")
    ap.add_argument("--flash", default="256KB")
    ap.add_argument("--budget", default="quick")
    ap.add_argument("--random-repeats", type=int, default=2, help="extra random-search seeds")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--int8-all", action="store_true",
                    help="also run the saved int8 models on the whole test set (NumPy reference)")
    args = ap.parse_args()
    cons = constraints_from_args(None, args.sram, args.flash)
    b = get_budget(args.budget)
    t0 = time.perf_counter()
    s = run_search(SearchOptions(cons, Path(args.out), budget=args.budget, threads=args.threads,
                                 overrides={"random_repeats": args.random_repeats}),
                   log=lambda m: print(m, flush=True))
    dt = time.perf_counter() - t0

    print(f"\n== TinyNAS search, Fashion-MNIST, {cons.describe()}, budget {args.budget} "
          f"(supernet {b.supernet.epochs} epochs, fine-tune {b.finetune.epochs}) ==")
    print(f"{'model':<34}{'float acc':>10}{'int8 acc':>10}{'MACs':>9}{'peak SRAM':>11}{'flash':>10}")
    for name, r in (("TinyNAS winner", s["winner"]), ("MobileNetV2 (k3, uniform, scaled)", s["baseline"])):
        if r:
            print(f"{name:<34}{100 * r['float_test_acc']:>9.2f}%{100 * r['int8_test_acc']:>9.2f}%"
                  f"{r['macs'] / 1e6:>8.2f}M{format_size(r['peak_sram']):>11}{format_size(r['flash_bytes']):>10}")
    w = s["winner"]
    print(f"(float on {w['float_test_images']} test images, int8 NumPy reference on the first "
          f"{w['int8_test_images']})")
    ev, rs = s["evolution"], s["random_search"]
    print(f"\nheld-out accuracy, {ev['evaluations']} evaluations each: evolution {100 * ev['best']['acc']:.2f}%, "
          f"random search " + ", ".join(f"{100 * a:.2f}%" for a in rs["best_acc_per_seed"])
          + f" (seeds 0..{len(rs['best_acc_per_seed']) - 1})")
    print("timings summed over all runs of this OUT (s): "
          + ", ".join(f"{k} {v:.0f}" for k, v in sorted(s["timings_all_runs"].items())))
    full = int8_full_test(Path(args.out)) if args.int8_all else {}
    for tag, (acc, n, secs) in full.items():
        print(f"{tag}: int8 accuracy on all {n} test images {100 * acc:.2f}% ({secs:.0f} s)")
    print(f"this invocation: {dt:.0f} s")
    Path(args.out, "benchmark.json").write_text(json.dumps(
        {"winner": s["winner"], "baseline": s["baseline"], "evolution_best": ev["best"]["acc"],
         "random_best_per_seed": rs["best_acc_per_seed"], "evaluations": ev["evaluations"],
         "timings_all_runs": s["timings_all_runs"],
         "int8_full_test": {k: {"acc": v[0], "images": v[1]} for k, v in full.items()}}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
