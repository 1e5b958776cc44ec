"""``tinynas search``: the whole TinyNAS pipeline into one output directory.

stage 1 (pick W, R for the budget) -> train the elastic supernet -> constrained evolution and a random
search with the same number of evaluations (fitness: held-out accuracy after BN recalibration) ->
the winner trained with the fair recipe -> int8 quantisation with the engine, int8 accuracy on the
NumPy reference -> the best hand-scaled MobileNetV2 grid points trained and scored the same way -> report.

The steps are named and resumable (tinynas.search_pipeline, tinynas.steps); this module holds the
budgets, the data loading and the int8/report helpers they use.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from boards.units import format_size
from search_spaces.arch import ArchConfig, ArchError
from search_spaces.space import SearchSpace
from tinyengine.cost import fast_costs
from tinyengine.ir.graph_io import save_graph
from tinyml_errors import SearchError
from tinynas import latency as latency_mod
from tinynas.constraints import Constraints
from tinynas.data import DatasetError, load_fashion_mnist_uint8, load_image_folder
from tinynas.evolution import (
    EvoConfig,
)
from tinynas.train import TrainConfig, evaluate, to_input


@dataclass(frozen=True)
class Budget:
    """How much work each step gets. ``smoke`` is for tests and demos, ``full`` the real thing."""

    resolutions: tuple[int, ...]
    train_limit: int | None        # training images used (None: all)
    holdout: int                   # training images held out for the search's fitness
    calib: int                     # images for BN recalibration / int8 calibration
    supernet: TrainConfig
    finetune: TrainConfig
    evo: EvoConfig
    test_limit: int | None         # float test accuracy on this many test images (None: all)
    int8_test_limit: int | None    # int8 (NumPy reference, ~20-35 ms/image) on this many (None: all)
    space_samples: int = 500
    random_repeats: int = 0        # extra random searches (other seeds) for the comparison
    small_space: bool = True       # stage 1 over tinynas.stage1's variants (widths < 0.2, stride-1 start)
    fit_sampling: bool = True      # supernet sandwich: largest + fitting sub-networks near the budget
    min_fit: float = 0.05          # stage 1 ignores (W, R) spaces where fewer samples fit
    final: TrainConfig | None = None  # the winner's and the baselines' recipe (None: search_pipeline.final_recipe)
    baseline_top: int = 1          # MobileNetV2 grid points trained with that recipe (the best on the
    #                                held-out split is the baseline)
    final_top: int = 1             # search candidates trained with that recipe (the best on the held-out
    #                                split is the winner; tinynas.evolution.final_candidates)
    elastic_res: int = 0           # supernet and search also use this many neighbouring resolutions of
    #                                stage 1's R on each side (where something fits); 0: R alone


BUDGETS: dict[str, Budget] = {
    "smoke": Budget(resolutions=(32, 40), train_limit=1200, holdout=200, calib=64,
                    supernet=TrainConfig(epochs=2, largest_epochs=1, batch_size=64, n_random=1, lr=0.05),
                    finetune=TrainConfig(epochs=1, batch_size=64, lr=0.01),
                    evo=EvoConfig(population=4, generations=2), test_limit=200, int8_test_limit=20,
                    space_samples=100),
    "quick": Budget(resolutions=(32, 40), train_limit=None, holdout=2500, calib=256,
                    supernet=TrainConfig(epochs=2, largest_epochs=1, batch_size=128, n_random=1, lr=0.08),
                    finetune=TrainConfig(epochs=3, batch_size=128, lr=0.03),
                    evo=EvoConfig(population=10, generations=4), test_limit=None, int8_test_limit=None,
                    space_samples=500),
    "default": Budget(resolutions=(28, 32, 40), train_limit=None, holdout=5000, calib=2000,
                      supernet=TrainConfig(epochs=8, largest_epochs=1, batch_size=128, n_random=1, lr=0.08,
                                           augment=True),
                      finetune=TrainConfig(epochs=4, batch_size=128, lr=0.03, augment=True),
                      evo=EvoConfig(population=16, generations=6, parent_ratio=0.5, prescreen=4), test_limit=None,
                      int8_test_limit=2000, space_samples=500, baseline_top=2, final_top=2, elastic_res=2),
    "full": Budget(resolutions=tuple(range(32, 97, 8)), train_limit=None, holdout=5000, calib=512,
                   supernet=TrainConfig(epochs=30, largest_epochs=10, batch_size=128, n_random=2,
                                        lr=0.1, augment=True),
                   finetune=TrainConfig(epochs=10, batch_size=128, lr=0.02, augment=True),
                   evo=EvoConfig(population=50, generations=20, prescreen=4), test_limit=None, int8_test_limit=None,
                   space_samples=1000, baseline_top=4, final_top=4, elastic_res=2),
}


@dataclass
class SearchOptions:
    cons: Constraints
    out: Path
    data: str = "fashion-mnist"
    budget: str = "smoke"
    in_channels: int = 1
    seed: int = 0
    device: str | None = None
    threads: int | None = None    # CPU threads for torch (None: see cpu_threads)
    progress: bool = True
    overrides: dict = field(default_factory=dict)  # Budget fields to replace (tests, benchmarks)
    from_step: str | None = None  # recompute from this step on (tinynas.search_pipeline.STEPS)
    baseline: bool = True         # train and score the hand-scaled MobileNetV2 baseline (--no-baseline)
    step_hook: Callable | None = None  # called after every step (name, result, computed): tests, displays
    live_progress: bool = False   # a live overall bar (a terminal); else plain progress lines
    console: object | None = None  # the rich Console the live bar draws on (None: a new one)


@dataclass
class Dataset:
    x_train: torch.Tensor   # uint8 (N, C, H, W)
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]
    source: str
    resolutions: tuple[int, ...] | None = None  # the task's own input resolutions (fashion-vww)


def cpu_threads() -> int:
    """torch's default thread count, but 1 per spare core on a busy machine: OpenMP threads that
    wait at barriers for a descheduled sibling make training ~10x slower than one thread."""
    import os
    try:
        spare = (os.cpu_count() or 1) - int(round(os.getloadavg()[0]))
    except OSError:
        spare = os.cpu_count() or 1
    return max(1, min(torch.get_num_threads(), spare))


def get_budget(name: str, overrides: dict | None = None) -> Budget:
    if name not in BUDGETS:
        raise SearchError(f"--budget: unknown budget {name!r}; choose one of {', '.join(BUDGETS)}")
    b = BUDGETS[name]
    return replace(b, **overrides) if overrides else b


def load_data(spec: str, channels: int, budget: Budget) -> Dataset:
    """'fashion-mnist' (Debian's dataset-fashion-mnist) or an ImageFolder directory: PATH/train and
    PATH/test (or PATH/val) with one sub-directory per class, or PATH/<class> split 85/15."""
    from tinynas.vww import is_vww, load_vww
    if is_vww(spec):
        xtr, ytr, xte, yte, names, desc, res = load_vww(spec, train_n=budget.train_limit,
                                                        test_n=budget.test_limit)
        return Dataset(torch.from_numpy(xtr), torch.from_numpy(ytr), torch.from_numpy(xte),
                       torch.from_numpy(yte), names, desc, res)
    if spec == "fashion-mnist":
        from tinynas.data import FASHION_CLASSES
        xtr, ytr = load_fashion_mnist_uint8("train", limit=budget.train_limit)
        xte, yte = load_fashion_mnist_uint8("test", limit=budget.test_limit)
        return Dataset(torch.from_numpy(xtr), torch.from_numpy(ytr), torch.from_numpy(xte),
                       torch.from_numpy(yte), list(FASHION_CLASSES), "Fashion-MNIST (dataset-fashion-mnist)")
    root = Path(spec)
    if not root.is_dir():
        raise DatasetError(f"--data: {spec!r} is neither 'fashion-mnist' nor a directory")
    size = max(budget.resolutions)
    test_dir = next((root / d for d in ("test", "val") if (root / d).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        xtr, ytr, names = load_image_folder(root / "train", size=size, channels=channels, limit=budget.train_limit)
        xte, yte, _ = load_image_folder(test_dir, size=size, channels=channels, limit=budget.test_limit,
                                        classes=names)
    else:
        x, y, names = load_image_folder(root, size=size, channels=channels)
        perm = np.random.default_rng(12345).permutation(len(y))
        n_test = max(1, int(0.15 * len(y)))
        te, tr = perm[:n_test], perm[n_test:]
        if budget.train_limit:
            tr = tr[:budget.train_limit]
        if budget.test_limit:
            te = te[:budget.test_limit]
        xtr, ytr, xte, yte = x[tr], y[tr], x[te], y[te]
    return Dataset(torch.from_numpy(xtr), torch.from_numpy(ytr), torch.from_numpy(xte), torch.from_numpy(yte),
                   names, f"ImageFolder {root}")


def make_space(ds: Dataset, channels: int, budget: Budget) -> SearchSpace:
    return SearchSpace(num_classes=len(ds.classes), in_channels=channels,
                       resolution_choices=ds.resolutions or budget.resolutions)


def baseline_arch(space: SearchSpace, cons: Constraints) -> ArchConfig | None:
    """Hand-scaled MobileNetV2: every block k3, expand 6 (or the largest uniform expand that fits),
    one uniform depth; the (W, R, depth) with the most MACs that fits the budget."""
    best, best_macs = None, -1
    ki = space.kernel_choices.index(3) if 3 in space.kernel_choices else 0
    for ei in reversed(range(len(space.expand_choices))):
        for w in space.width_choices:
            for r in space.resolution_choices:
                for d in space.depth_choices:
                    k = np.full((space.n_stages, space.max_depth), ki)
                    e = np.full((space.n_stages, space.max_depth), ei)
                    depth = [space.fixed_depths.get(s, d) for s in range(space.n_stages)]
                    try:
                        a = space.build(w, r, k, e, depth, name=f"mbv2-w{w:g}-r{r}-d{d}-e{space.expand_choices[ei]}")
                    except ArchError:
                        continue  # this (depth, expand) does not build at this width: not a grid point
                    c = fast_costs(a, stream=cons.stream)
                    if c.fits(cons.sram_bytes, cons.flash_bytes) and c.macs > best_macs and (
                            cons.latency_s is None or cons.board is None
                            or latency_mod.predict_latency_s(a, cons) <= cons.latency_s):
                        best, best_macs = a, c.macs
        if best is not None:
            return best
    return None


def _grid_baseline(space: SearchSpace, cons: Constraints) -> ArchConfig | None:
    """The most-MACs fitting point of the uniformly scaled MobileNetV2 grid (tinynas.baseline_grid)."""
    from tinynas.baseline_grid import baseline_grid, top_fitting
    if cons.latency_s is not None and cons.board is not None:
        return baseline_arch(space, cons)  # the grid knows nothing of latency
    top = top_fitting(baseline_grid(space.num_classes, space.in_channels, space.resolution_choices, cons), 1)
    return top[0].arch if top else None


def int8_accuracy(arch: ArchConfig, model: torch.nn.Module, calib: np.ndarray, x: np.ndarray,
                  y: np.ndarray, progress: bool = False):
    """Quantise with the engine and run the bit-exact NumPy reference; (graph, accuracy)."""
    from tqdm import tqdm

    from tinyengine.frontend.quantize import quantize_model
    from tinyengine.numerics.reference import dequantize_output, quantize_input, run_graph
    graph = quantize_model(arch, model.cpu().eval(), calib)
    correct = 0
    for img, lab in tqdm(list(zip(x, y)), desc="int8 reference", disable=not progress, leave=False):
        vals = run_graph(graph, quantize_input(graph, img))
        correct += int(np.argmax(dequantize_output(graph, vals[graph.outputs[0]])) == lab)
    return graph, correct / max(1, len(y))


def run_search(opts: SearchOptions, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) the pipeline of named steps (tinynas.search_pipeline); returns the summary also
    written to OUT/summary.json."""
    from tinynas.search_pipeline import run_pipeline
    return run_pipeline(opts, log)


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


def _finish(arch: ArchConfig, net, tag: str, ds: Dataset, x_tr, budget: Budget, opts: SearchOptions,
            device, out: Path, log, timings: dict) -> dict:
    """Float test accuracy, int8 quantisation and int8 accuracy on the NumPy reference, costs."""
    R, C = arch.resolution, opts.in_channels
    done = out / f"{tag}_result.json"
    graph_file = out / ("model_int8.npz" if tag == "winner" else f"{tag}_model_int8.npz")
    if done.exists() and graph_file.exists():  # resumed run: this model was already evaluated and quantised
        rec = json.loads(done.read_text())
        if rec.get("arch") == arch.summary():
            log(f"{tag}: results from {done}")
            return rec
    acc = evaluate(net, ds.x_test, ds.y_test, R, C, device=device)
    t = time.perf_counter()
    n8 = len(ds.y_test) if budget.int8_test_limit is None else min(budget.int8_test_limit, len(ds.y_test))
    calib = to_input(x_tr[:budget.calib], R, C).numpy()
    xq = to_input(ds.x_test[:n8], R, C).numpy()
    acc_f_sub = evaluate(net, ds.x_test[:n8], ds.y_test[:n8], R, C, device=device)
    graph, acc8 = int8_accuracy(arch, net, calib, xq, ds.y_test[:n8].numpy(), progress=opts.progress)
    net.to(device)
    timings[f"{tag}_int8_s"] = time.perf_counter() - t
    save_graph(graph, graph_file)  # JSON + arrays, no pickle (tinyengine.ir.graph_io)
    c = fast_costs(arch, stream=opts.cons.stream)
    rec = {"arch": arch.summary(), "float_test_acc": acc, "float_test_images": len(ds.y_test),
           "int8_test_acc": acc8, "float_acc_on_int8_images": acc_f_sub, "int8_test_images": n8,
           "macs": c.macs, "params": c.params, "peak_sram": c.peak_sram, "flash_bytes": c.flash_bytes,
           "fits": c.fits(opts.cons.sram_bytes, opts.cons.flash_bytes),
           **({"peak_sram_counts": "fused streaming"} if opts.cons.stream else {})}
    if opts.cons.board is not None:
        rec["latency_s_estimate"] = latency_mod.predict_latency_s(arch, opts.cons)
    done.write_text(json.dumps(rec, indent=1) + "\n")
    log(f"{tag}: {arch.summary()}\n  float test acc {acc:.4f} ({len(ds.y_test)} images), int8 {acc8:.4f} "
        f"(float {acc_f_sub:.4f} on the same {n8}); {c.macs / 1e6:.2f}M MACs, peak SRAM "
        f"{format_size(c.peak_sram)}, flash {format_size(c.flash_bytes)}")
    return rec


def _report(s: dict, arch: ArchConfig, base: ArchConfig | None) -> str:
    def row(name, r):
        return (f"| {name} | {100 * r['float_test_acc']:.2f}% | {100 * r['int8_test_acc']:.2f}% "
                f"({r['int8_test_images']} imgs) | {r['macs'] / 1e6:.2f}M | {format_size(r['peak_sram'])} | "
                f"{format_size(r['flash_bytes'])} | {'yes' if r['fits'] else 'NO'} |")
    c = s["constraints"]
    lines = [
        "# TinyNAS search report" + (" (pipeline check, not a model)" if s["budget"] == "smoke" else ""), "",
        *(["`smoke` trains for seconds on a small subset: it checks that every step runs, its accuracy "
           "means nothing. Use the default budget for a model.", ""] if s["budget"] == "smoke" else []),
        f"Budget `{s['budget']}`, data {s['data']}, device {s['device']}.",
        f"Constraints: SRAM {format_size(c['sram_bytes'])}, flash {format_size(c['flash_bytes'])}"
        + (f", latency {c['latency_s'] * 1e3:g} ms ({s['latency_model']})" if c["latency_s"] else "")
        + (f", board {c['board']}" if c["board"] else "") + "."
        + (" Peak SRAM is counted with fused streaming execution (`--stream`): generate with "
           "`tinyengine gen` on this folder, which streams by default." if c.get("stream") else ""),
        f"Stage 1 space: W={s['space']['width_mult']:g}, R={s['space']['resolution']} "
        f"({100 * s['space']['fit_ratio']:.1f}% of sampled sub-networks fit)"
        + (f"; elastic resolution: the search tried R in {s['space']['resolutions']} and picked "
           f"{s['space'].get('winner_resolution')}" if len(s["space"].get("resolutions") or ()) > 1 else "")
        + ".", "",
        "## Winner vs hand-scaled MobileNetV2 (same budget, same training)", "",
        "| model | float test acc | int8 test acc (NumPy reference) | MACs | peak SRAM | flash | fits |",
        "|---|---|---|---|---|---|---|", row("TinyNAS winner", s["winner"]),
    ]
    if s.get("baseline"):
        lines.append(row("MobileNetV2 (uniform k3, scaled)", s["baseline"]))
    rc = s.get("final_recipe")
    if rc:
        lines += ["", f"Fair protocol: the winner and every baseline are trained from scratch with one recipe "
                  f"({rc['epochs']} epochs, lr {rc['lr']:g}, batch {rc['batch_size']}, "
                  f"{'augmented' if rc['augment'] else 'no augmentation'}), the same seed and data order, "
                  "quantised on the same calibration images and scored on the same test images."]
    if s.get("baseline"):
        d = 100 * (s["winner"]["int8_test_acc"] - s["baseline"]["int8_test_acc"])
        g = s.get("baseline_grid")
        lines += ["", f"**The search {'paid for itself' if d > 0 else 'did not beat the baseline'}: "
                  f"{d:+.2f} points int8 test accuracy** against the best of "
                  f"{len(s.get('baselines_trained') or [1])} trained grid point(s), picked on held-out accuracy"
                  + (f" (grid: {g['points']} points, {g['fit']} fit; {g['over_sram']} over SRAM, "
                     f"{g['over_flash']} over flash; every point in baseline_grid.json)" if g else "") + "."]
        for b in s.get("baselines_trained") or []:
            lines.append(f"- {b['name']}: int8 {100 * b['int8_test_acc']:.2f}%, float "
                         f"{100 * b['float_test_acc']:.2f}%"
                         + (f", held-out {100 * b['holdout_acc']:.2f}%" if "holdout_acc" in b else "")
                         + f", {b['macs'] / 1e6:.2f}M MACs")
    cands = s.get("final_candidates") or []
    if len(cands) > 1:
        lines += ["", f"Search candidates trained with the same recipe ({len(cands)}, spread along the search's "
                  "Pareto front; the best on the held-out split is the winner):"]
        for c in cands:
            lines.append(f"- {c['key']} (R={c['resolution']}, {c['macs'] / 1e6:.2f}M MACs): held-out "
                         f"{100 * c['holdout_acc']:.2f}% stand-alone, {100 * c['supernet_acc']:.2f}% in the supernet")
    elif s.get("baseline_skipped"):
        lines += ["", "Baseline skipped (--no-baseline): this report cannot say whether the search paid for itself."]
    lines += ["", f"Winner: `{arch.summary()}`"]
    if base is not None:
        lines += [f"Baseline: `{base.summary()}`."]
    if "test_acc_supernet_weights" in s["winner"]:
        lines += [f"The winner with the supernet's weights (BN recalibrated): "
                  f"{100 * s['winner']['test_acc_supernet_weights']:.2f}% float test accuracy."]
    lines += ["", "## Evolution vs random search (held-out split, same number of evaluations)", "",
              "| search | evaluations | best held-out acc |", "|---|---|---|",
              f"| evolution | {s['evolution']['evaluations']} | {100 * s['evolution']['best']['acc']:.2f}% |",
              f"| random | {s['random_search']['evaluations']} | {100 * s['random_search']['best']['acc']:.2f}% |",
              *([f"| random, {len(s['random_search']['best_acc_per_seed'])} seeds | "
                 f"{s['random_search']['evaluations']} each | mean "
                 f"{100 * np.mean(s['random_search']['best_acc_per_seed']):.2f}%, max "
                 f"{100 * np.max(s['random_search']['best_acc_per_seed']):.2f}% |"]
                if len(s["random_search"]["best_acc_per_seed"]) > 1 else []),
              "", "Per generation: " + ", ".join(f"{100 * h['best_acc']:.2f}%" for h in s["evolution"]["history"]),
              "", "## Supernet training", ""]
    lines += [f"- epoch {h['epoch']} ({h['phase']}): loss {h['loss']:.4f}, train acc {100 * h['train_acc']:.2f}%"
              for h in s["supernet_history"]]
    lines += ["", "## Timings (this run / summed over all runs of this OUT)", ""]
    lines += [f"- {k}: {v:.1f} s / {s['timings_all_runs'].get(k, v):.1f} s" for k, v in s["timings"].items()]
    lines += ["", "## Files", "",
              "arch.json, weights.pt (state_dict for build_torch_model), model_int8.npz (int8 Graph, tinyml-graph/1, no pickle), "
              "baseline_* (the best grid point), baselines/ (every trained grid point), baseline_grid.json (every "
              "grid point tried), pareto.json/png, space.json/space_cdf.png, search_state.json, eval_cache.json, "
              "steps.json (the finished steps), checkpoints/, summary.json", "",
              "![pareto](pareto.png)", ""]
    return "\n".join(lines)
