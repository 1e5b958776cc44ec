"""``tinynas search`` as a chain of named, resumable steps (``tinynas.steps``).

    stage1 -> supernet -> search -> final_train -> int8 -> baseline -> report

* ``stage1``: pick the space variant and (W, R) for the limits (MCUNet's rule, ``tinynas.stage1``);
* ``supernet``: train the weight-sharing supernet (checkpoint every epoch);
* ``search``: constrained evolution and a random search with as many evaluations (fitness: held-out
  accuracy after BN recalibration; every evaluation cached), the Pareto fronts;
* ``final_train``: the winner trained from scratch with the fair recipe (``tinynas.fair``);
* ``int8``: the winner quantised by the engine, int8 accuracy on the NumPy reference, ``model_int8.npz``;
* ``baseline``: the best-MACs fitting points of the hand-scaled MobileNetV2 grid
  (``tinynas.baseline_grid``) trained with the *same* recipe, seed and data order and scored the
  same way; the best one is the baseline (skipped with ``--no-baseline``);
* ``report``: ``summary.json`` and ``report.md`` (winner and baseline side by side).

Each step records its completion in ``OUT/steps.json``; a rerun skips completed steps, resumes the
interrupted one from its checkpoint, and ``--from STEP`` recomputes from a named step on.
"""
from __future__ import annotations

import functools
import json
import shutil
import time
from dataclasses import asdict, replace
from typing import Callable

import torch

from boards.units import format_size
from search_spaces.arch import ArchConfig
from search_spaces.space import SearchSpace
from search_spaces.supernet import SuperNet, recalibrate_bn
from search_spaces.torch_model import build_torch_model
from tinyml_errors import SearchError
from tinynas import latency as latency_mod
from tinynas.data import DatasetError
from tinynas.evolution import (
    EvalCache,
    Feasibility,
    evolution_search,
    genes_from_json,
    pareto_front,
    plot_pareto,
    random_search,
)
from tinynas.run_timings import RunTimings
from tinynas.steps import StepRunner
from tinynas.stream_search import stream_meta
from tinynas.train import TrainConfig, default_device, dist_info, evaluate, init_distributed, to_input, train

STEPS = ("stage1", "supernet", "search", "final_train", "int8", "baseline", "report")
# what each step writes (deleted when the step is recomputed from scratch: --from, stale inputs)
STEP_FILES = {
    "stage1": ("space.json", "space_cdf.png"),
    "supernet": ("checkpoints/supernet.pt",),
    "search": ("search_state.json", "eval_cache.json", "pareto.json", "pareto.png"),
    "final_train": ("checkpoints/final.pt", "checkpoints/final", "weights.pt", "arch.json"),
    "int8": ("winner_result.json", "model_int8.npz"),
    "baseline": ("checkpoints/baselines", "baselines", "baseline_grid.json", "baseline_arch.json",
                 "baseline_weights.pt", "baseline_model_int8.npz", "baseline_result.json"),
    "report": ("summary.json", "report.md"),
}


def final_recipe(budget) -> TrainConfig:
    """The one training recipe of the winner and every baseline: the budget's ``final``, or by default
    the fine-tuning settings for as many epochs as the supernet and the fine-tuning together, at the
    supernet's learning rate (what the hand-scaled baseline always got)."""
    if getattr(budget, "final", None) is not None:
        return budget.final
    return replace(budget.finetune, epochs=budget.supernet.epochs + budget.finetune.epochs, lr=budget.supernet.lr)


def space_to_json(sp: SearchSpace) -> dict:
    d = asdict(sp)
    d["fixed_depths"] = {str(k): v for k, v in sp.fixed_depths.items()}
    return d


def space_from_json(d: dict) -> SearchSpace:
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    kw["fixed_depths"] = {int(k): v for k, v in d["fixed_depths"].items()}
    return SearchSpace(**kw)


def run_pipeline(opts, log: Callable[[str], None] = print) -> dict:
    from tinynas import search as S  # the budgets, data loading and int8 helpers live there
    budget = S.get_budget(opts.budget, opts.overrides)
    if opts.in_channels not in (1, 3):
        raise SearchError(f"--in-channels: must be 1 or 3, got {opts.in_channels}")
    if opts.cons.latency_s is not None and opts.cons.board is None:
        raise SearchError("--latency: a latency limit needs --board (the core and clock it runs on)")
    from_step = getattr(opts, "from_step", None)
    if from_step is not None and from_step not in STEPS:
        raise SearchError(f"--from: unknown step {from_step!r}; the steps are {', '.join(STEPS)}")
    init_distributed()
    rank, world = dist_info()
    from tinynas.progress import RunProgress
    live = bool(getattr(opts, "live_progress", False)) and rank == 0
    prog = RunProgress(STEPS, log if rank == 0 else (lambda m: None), live=live,
                       console=getattr(opts, "console", None),
                       every=30.0 if opts.progress else float("inf"), ticker=rank == 0 and (live or opts.progress))
    flushing = flush_denormal_on()
    try:
        return _run(opts, prog.log, prog, budget, from_step, rank, world)
    finally:
        prog.close()
        # the run flushes denormals (faster CPU training); the caller's process gets its own mode back
        torch.set_flush_denormal(flushing)


def flush_denormal_on() -> bool:
    """Whether this thread's CPU flushes subnormal floats to zero (torch.set_flush_denormal has no getter)."""
    return float(torch.tensor([5e-324], dtype=torch.float64).mul(1.0)) == 0.0


def _run(opts, log, prog, budget, from_step, rank, world) -> dict:
    from tinynas import search as S
    t_start = time.perf_counter()
    device = torch.device(opts.device) if opts.device else default_device()
    torch.manual_seed(opts.seed)
    torch.set_flush_denormal(True)
    if device.type == "cpu":
        torch.set_num_threads(opts.threads or S.cpu_threads())
    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    # ---------------------------------------------------------------- data (nothing written before it loads)
    ds = S.load_data(opts.data, opts.in_channels, budget)
    if len(ds.y_train) <= budget.holdout + budget.calib:
        raise DatasetError(f"--data: {len(ds.y_train)} training images are too few for a held-out split "
                           f"of {budget.holdout} (budget {opts.budget})")
    from tinynas.run_settings import budget_fingerprint, check_run_settings
    check_run_settings(out, {"constraints": opts.cons.to_dict(), "data": opts.data, "budget": opts.budget,
                             "budget_fields": budget_fingerprint(budget), "in_channels": opts.in_channels,
                             "seed": opts.seed})
    ck = out / "checkpoints"
    timings = RunTimings(out)  # keeps timings.json current, so killed runs count too (tinynas/run_timings.py)
    steps = StepRunner(out, STEPS, STEP_FILES, writer=rank == 0, log=log if rank == 0 else (lambda m: None))
    if from_step is not None:
        steps.start_from(from_step)
        log(f"--from {from_step}: recomputing {', '.join(STEPS[STEPS.index(from_step):])}")
    hook = getattr(opts, "step_hook", None)
    steps.before_step = prog.start

    def after(name, result, computed):
        prog.finish(name, computed)
        if hook is not None:
            hook(name, result, computed)
    steps.after_step = after
    quiet = replace(opts, progress=False)  # the steps' own tqdm bars: the overall display replaces them
    log(f"data: {ds.source}, {len(ds.y_train)} train / {len(ds.y_test)} test images, {len(ds.classes)} classes, "
        f"device {device}" + (f" ({torch.get_num_threads()} threads)" if device.type == "cpu" else "")
        + (f", {world} processes" if world > 1 else ""))
    base_space = S.make_space(ds, opts.in_channels, budget)
    lat = (lambda a: latency_mod.predict_latency_s(a, opts.cons)) if opts.cons.latency_s is not None else None

    # ---------------------------------------------------------------- stage 1
    def do_stage1() -> dict:
        from tinynas.space_opt import elastic_resolutions, optimize_space, plot_cdf
        st1, space = None, base_space
        if budget.small_space:
            from tinynas.stage1 import optimize_variants
            st1 = optimize_variants(space, opts.cons, samples=budget.space_samples, seed=opts.seed,
                                    min_fit_ratio=budget.min_fit, latency=lat)
            sres, space = st1.result, st1.space
        else:
            sres = optimize_space(space, opts.cons, samples=budget.space_samples, seed=opts.seed,
                                  min_fit_ratio=0.01, latency=lat)
        if sres.choice is None:
            lo = min(sres.stats, key=lambda s: s.min_peak_sram)
            lf = min(sres.stats, key=lambda s: s.min_flash)
            raise SearchError(f"no sub-network fits {opts.cons.describe()}: the smallest footprint found is peak "
                              f"SRAM {format_size(lo.min_peak_sram)} (W={lo.width_mult:g}, R={lo.resolution}) and "
                              f"flash {format_size(lf.min_flash)} (W={lf.width_mult:g}, R={lf.resolution}); raise "
                              "--sram/--flash" + (" or --latency" if opts.cons.latency_s is not None else ""))
        if rank == 0:
            (out / "space.json").write_text(json.dumps((st1 or sres).to_dict(), indent=1) + "\n")
            plot_cdf(sres, str(out / "space_cdf.png"))
        c = sres.choice
        rs = elastic_resolutions(sres, budget.elastic_res) if budget.elastic_res else ()
        log(f"stage 1: W={c.width_mult:g}, R={c.resolution} ({100 * c.fit_ratio:.1f}% of sampled sub-networks "
            f"fit, mean {c.mean_macs / 1e6:.2f}M MACs)"
            + (f", space {st1.variant}; {st1.describe_binding()}" if st1 else "")
            + (f"; the search also tries R in {list(rs)}" if len(rs) > 1 else ""))
        return {"width_mult": c.width_mult, "resolution": c.resolution, "resolutions": list(rs),
                "fit_ratio": c.fit_ratio,
                "mean_macs": c.mean_macs, "variant": st1.variant if st1 else None,
                "binding": st1.describe_binding() if st1 else "", "space": space_to_json(space)}

    s1 = steps.run("stage1", {"samples": budget.space_samples, "small_space": budget.small_space,
                              "min_fit": budget.min_fit, "constraints": opts.cons.to_dict(), "data": opts.data,
                              "in_channels": opts.in_channels, "seed": opts.seed,
                              **({"elastic_res": budget.elastic_res} if budget.elastic_res else {})}, do_stage1)
    W, R, space = s1["width_mult"], s1["resolution"], space_from_json(s1["space"])
    timings["stage1_s"] = steps.seconds.get("stage1", 0.0)
    if "stage1" in steps.skipped:
        log(f"stage 1: W={W:g}, R={R} ({100 * s1['fit_ratio']:.1f}% of sampled sub-networks fit, mean "
            f"{s1['mean_macs'] / 1e6:.2f}M MACs)"
            + (f", space {s1['variant']}; {s1['binding']}" if s1["variant"] else ""))

    # held-out split of the training set (fixed by the seed), calibration images from the rest
    perm = torch.randperm(len(ds.y_train), generator=torch.Generator().manual_seed(opts.seed + 99))
    hold, tr = perm[:budget.holdout], perm[budget.holdout:]
    x_tr, y_tr = ds.x_train[tr], ds.y_train[tr]
    x_ho, y_ho = ds.x_train[hold], ds.y_train[hold]
    feas = Feasibility(space, W, R, opts.cons, tuple(s1.get("resolutions") or ()))
    r_train = max(feas.sides)  # the supernet's batches: made at the largest side, resized down
    calib_at = functools.cache(lambda r: to_input(x_tr[:budget.calib], r, opts.in_channels, device))
    recipe = final_recipe(budget)
    run_baseline = getattr(opts, "baseline", True)

    # ---------------------------------------------------------------- expected time, overall progress
    from tinynas.eta import describe, estimate_search_s
    held: dict = {}

    def supernet_and_sampler():
        if "sampler" not in held:
            sampler = None
            if budget.fit_sampling:
                from tinynas.fit_sampler import FitSampler
                sampler = FitSampler(feas, n=1 + budget.supernet.n_random, seed=opts.seed)
            held["sampler"] = sampler
            torch.manual_seed(opts.seed)  # the same initial weights whichever steps ran before
            held["supernet"] = SuperNet(space, W).to(device)
        return held["supernet"], held["sampler"]

    todo = [s for s in STEPS if not steps.done(s) and (s != "baseline" or run_baseline)]
    if any(s in todo for s in ("supernet", "search", "final_train", "int8", "baseline")):
        sup, sampler = supernet_and_sampler()
        est = estimate_search_s(sup, space, W, r_train, opts.in_channels, budget, len(y_tr), len(ds.y_test), device,
                                big=sampler.teacher if sampler else None)
        if rank == 0:
            log(describe(est))
        prog.set_estimate(est)
    if not run_baseline:
        prog.drop("baseline")

    def tick(step_name: str, key: str) -> None:
        if step_name in steps.seconds:
            timings[f"{key}_s"] = steps.seconds[step_name]

    # ---------------------------------------------------------------- supernet
    def train_supernet(distributed: bool = True) -> dict:
        sup, sampler = supernet_and_sampler()
        hist = train(sup, x_tr, y_tr, r_train, opts.in_channels, budget.supernet, ck / "supernet.pt",
                     space=space, width_mult=W, device=device, progress=False, desc="supernet", log=log,
                     sampler=sampler, on_batch=lambda d, n: prog.update(d, n, f"batch {d}/{n}"),
                     distributed=distributed)
        held["trained"] = True
        return {"history": hist}

    sn = steps.run("supernet", {"config": asdict(budget.supernet), "fit_sampling": budget.fit_sampling,
                                "world": world}, train_supernet)
    tick("supernet", "supernet")
    if world > 1 and rank != 0:
        return {}  # the search and everything after it run on rank 0 only

    # ---------------------------------------------------------------- search
    def do_search() -> dict:
        if not held.get("trained"):
            # the finished checkpoint (no epoch runs; rank 0 alone: the other ranks have stopped)
            train_supernet(distributed=False)
        supernet = held["supernet"]

        def fitness(arch: ArchConfig) -> float:
            sub = supernet.extract_subnet(arch)
            recalibrate_bn(sub, calib_at(arch.resolution))
            sub.eval()
            return evaluate(sub, x_ho, y_ho, arch.resolution, opts.in_channels, device=device)

        cache = EvalCache(fitness, feas, out / "eval_cache.json")
        n_cached = len(cache)

        def gen_log(g, n, h):
            prog.update(g, 2 * n, f"evolution generation {g}/{n}")  # the random search does as many again
            log(f"evolution generation {g}/{n}: best held-out acc {h['best_acc']:.4f}, mean {h['mean_acc']:.4f}, "
                f"{h['evaluated']} evaluated")
        t = time.perf_counter()
        evo = evolution_search(feas, cache, replace(budget.evo, seed=opts.seed), out / "search_state.json", gen_log)
        timings["evolution_s"] = time.perf_counter() - t
        t = time.perf_counter()
        rnd = random_search(feas, cache, evo["evaluations"], seed=opts.seed)
        repeats = [rnd["best"]["acc"]]
        for r in range(1, budget.random_repeats + 1):
            repeats.append(random_search(feas, cache, evo["evaluations"], seed=opts.seed + 1000 * r)["best"]["acc"])
        timings["random_search_s"] = time.perf_counter() - t
        log(f"search: evolution best {evo['best']['acc']:.4f} vs random search best {rnd['best']['acc']:.4f} "
            f"({evo['evaluations']} evaluations each; {cache.computed} computed now, {n_cached} from the cache)")
        all_recs = list(cache.records.values())
        fronts = {"macs": pareto_front(all_recs, "macs"), "peak_sram": pareto_front(all_recs, "peak_sram")}
        (out / "pareto.json").write_text(json.dumps({"constraints": opts.cons.to_dict(), "width_mult": W,
                                                     "resolution": R, "resolutions": list(feas.resolutions),
                                                     "front_macs": fronts["macs"],
                                                     "front_peak_sram": fronts["peak_sram"],
                                                     "evaluated": len(all_recs)}, indent=1) + "\n")
        plot_pareto(all_recs, out / "pareto.png", f"held-out accuracy vs cost, {feas.describe()}, "
                    f"{opts.cons.describe()}", evo["best"])
        # the winner with the supernet's weights (BN recalibrated), on the test set: what the search saw
        w_arch = feas.build(genes_from_json(evo["best"]["genes"]))
        sub = supernet.extract_subnet(w_arch)
        recalibrate_bn(sub, calib_at(w_arch.resolution))
        acc_sup = evaluate(sub.eval(), ds.x_test, ds.y_test, w_arch.resolution, opts.in_channels, device=device)
        return {"evolution": {"best": evo["best"], "evaluations": evo["evaluations"], "history": evo["history"]},
                # what the final step picks its stand-alone candidates from (evolution.final_candidates)
                "evolution_records": [{k: r[k] for k in ("key", "genes", "acc", "macs", "peak_sram", "flash_bytes")}
                                      for r in evo["records"]],
                "random_search": {"best": rnd["best"], "evaluations": rnd["evaluations"],
                                  "best_so_far": rnd["best_so_far"], "best_acc_per_seed": repeats},
                "computed": cache.computed, "from_cache": n_cached, "winner_test_acc_supernet_weights": acc_sup}

    se = steps.run("search", {"evo": asdict(replace(budget.evo, seed=opts.seed)), "holdout": budget.holdout,
                              "calib": budget.calib, "random_repeats": budget.random_repeats}, do_search)
    tick("search", "search")
    best = se["evolution"]["best"]

    def winner_arch(rec: dict) -> ArchConfig:
        g = genes_from_json(rec["genes"])
        a = feas.build(g, name=f"tinynas-w{W:g}-r{feas.res_of(g)}")
        return replace(a, meta={"searched_by": "tinynas search", "budget": opts.budget, "key": rec["key"],
                                **stream_meta(opts.cons)})

    # ---------------------------------------------------------------- final training (fair recipe)
    def do_final() -> dict:
        """The search's ``final_top`` candidates trained stand-alone with the fair recipe; the best on
        the held-out split is the winner (the baseline grid's points get the same treatment)."""
        from tinynas.evolution import final_candidates
        from tinynas.fair import train_recipe
        cands = final_candidates(se.get("evolution_records") or [best], max(1, budget.final_top))
        trained, nets = [], []
        for i, rec in enumerate(cands):
            a = winner_arch(rec)
            n_c = len(cands)
            net, hist = train_recipe(a, x_tr, y_tr, recipe, opts.seed,
                                     checkpoint=ck / "final.pt" if i == 0 else ck / "final" / f"candidate{i}.pt",
                                     device=device, progress=False,
                                     desc="final training (winner)" if n_c == 1 else f"final training (candidate {i + 1}/{n_c})",
                                     log=log, on_batch=lambda d, n, i=i, n_c=n_c: prog.update(i * n + d, n_c * n,
                                                                                              f"batch {d}/{n}"))
            ho = evaluate(net.eval(), x_ho, y_ho, a.resolution, opts.in_channels, device=device)
            if n_c > 1:
                log(f"final candidate {i + 1}/{n_c} {rec['key']} ({rec['macs'] / 1e6:.2f}M MACs): held-out "
                    f"{100 * ho:.2f}% after stand-alone training (supernet {100 * rec['acc']:.2f}%)")
            trained.append({"key": rec["key"], "genes": rec["genes"], "supernet_acc": rec["acc"],
                            "holdout_acc": ho, "macs": rec["macs"], "resolution": a.resolution, "history": hist})
            nets.append(net)
        pick = max(range(len(trained)), key=lambda j: trained[j]["holdout_acc"])
        a = winner_arch(cands[pick])
        a.save(out / "arch.json")
        torch.save(nets[pick].state_dict(), out / "weights.pt")
        held["winner_net"] = nets[pick]
        return {"arch": a.summary(), "key": cands[pick]["key"], "genes": cands[pick]["genes"],
                "recipe": asdict(recipe), "history": trained[pick]["history"], "candidates": trained}

    ft = steps.run("final_train", {"recipe": asdict(recipe), "seed": opts.seed, "top": budget.final_top},
                   do_final)
    tick("final_train", "final_train")
    arch = winner_arch(ft if "genes" in ft else best)

    # ---------------------------------------------------------------- int8 export of the winner
    def do_int8() -> dict:
        net = held.get("winner_net")
        if net is None:
            net = build_torch_model(arch)
            net.load_state_dict(torch.load(out / "weights.pt", map_location="cpu", weights_only=True))
            net.to(device).eval()
        rec = S._finish(arch, net, "winner", ds, x_tr, budget, quiet, device, out, log, timings)
        return rec

    winner = dict(steps.run("int8", {"int8_test_limit": budget.int8_test_limit, "calib": budget.calib}, do_int8))
    tick("int8", "int8")
    if ft.get("key", best["key"]) == best["key"]:  # measured for the evolution's best in the search step
        winner["test_acc_supernet_weights"] = se["winner_test_acc_supernet_weights"]
    picked = next((c for c in ft.get("candidates", []) if c["key"] == ft.get("key")), None)
    winner["heldout_acc_supernet"] = picked["supernet_acc"] if picked else best["acc"]
    if picked:
        winner["holdout_acc"] = picked["holdout_acc"]
    winner["epochs"] = recipe.epochs

    # ---------------------------------------------------------------- hand-scaled MobileNetV2 baseline
    def do_baseline() -> dict:
        from tinynas.baseline_grid import baseline_grid, grid_summary, top_fitting
        from tinynas.fair import train_recipe
        if opts.cons.latency_s is not None and opts.cons.board is not None:  # the grid knows nothing of latency
            a = S.baseline_arch(space, opts.cons)
            cands, grid_info = ([a] if a is not None else []), None
        else:
            grid = baseline_grid(space.num_classes, space.in_channels, space.resolution_choices, opts.cons)
            (out / "baseline_grid.json").write_text(json.dumps([p.to_dict() for p in grid], indent=1) + "\n")
            cands = [p.arch for p in top_fitting(grid, max(1, budget.baseline_top))]
            grid_info = grid_summary(grid)
        (out / "baselines").mkdir(exist_ok=True)
        trained = []
        for i, a in enumerate(cands):
            net, _ = train_recipe(a, x_tr, y_tr, recipe, opts.seed, checkpoint=ck / "baselines" / f"{a.name}.pt",
                                  device=device, progress=False, desc=f"baseline {a.name}", log=log,
                                  on_batch=lambda d, n, i=i, nm=a.name: prog.update(i * n + d, len(cands) * n,
                                                                                    f"{nm}, batch {d}/{n}"))
            rec = S._finish(a, net, f"baselines/{a.name}", ds, x_tr, budget, quiet, device, out, log, timings)
            torch.save(net.state_dict(), out / "baselines" / f"{a.name}_weights.pt")
            a.save(out / "baselines" / f"{a.name}_arch.json")
            ho = evaluate(net.eval(), x_ho, y_ho, a.resolution, opts.in_channels, device=device)
            trained.append({"name": a.name, **rec, "holdout_acc": ho, "epochs": recipe.epochs})
        if not trained:
            return {"best": None, "trained": [], "grid": grid_info}
        # the baseline is the grid point a user would ship without looking at the test set: the best
        # on the held-out split (the winner, too, was chosen on it); ties by MACs order (the grid's)
        b = max(trained, key=lambda r: r["holdout_acc"])
        for src, dst in ((f"{b['name']}_arch.json", "baseline_arch.json"),
                         (f"{b['name']}_weights.pt", "baseline_weights.pt"),
                         (f"{b['name']}_model_int8.npz", "baseline_model_int8.npz"),
                         (f"{b['name']}_result.json", "baseline_result.json")):
            shutil.copyfile(out / "baselines" / src, out / dst)
        return {"best": b, "trained": trained, "grid": grid_info, "picked_on": "held-out accuracy"}

    bl = None
    if run_baseline:
        bl = steps.run("baseline", {"recipe": asdict(recipe), "seed": opts.seed, "top": budget.baseline_top,
                                    "pick": "held-out",
                                    "int8_test_limit": budget.int8_test_limit}, do_baseline)
        tick("baseline", "baseline")
    else:
        log("baseline: skipped (--no-baseline)")

    # ---------------------------------------------------------------- report (always rewritten: timings)
    def do_report() -> dict:
        timings["total_s"] = time.perf_counter() - t_start
        cumulative = dict(timings.base)  # earlier runs, killed ones included; this run is added below
        cumulative = {k: cumulative.get(k, 0.0) + timings.get(k, 0.0) for k in set(cumulative) | set(timings)}
        (out / "timings.json").write_text(json.dumps(cumulative, indent=1) + "\n")
        summary = {
            "constraints": opts.cons.to_dict(), "budget": opts.budget, "data": ds.source, "device": str(device),
            "space": {"width_mult": W, "resolution": R, "resolutions": list(feas.sides),
                      "winner_resolution": arch.resolution, "fit_ratio": s1["fit_ratio"], "variant": s1["variant"],
                      "binding": s1["binding"]},
            "latency_model": latency_mod.latency_source(opts.cons) if opts.cons.latency_s is not None else None,
            "supernet_history": sn["history"], "evolution": se["evolution"], "random_search": se["random_search"],
            "final_recipe": asdict(recipe), "final_history": ft["history"],
            "final_candidates": [{k: v for k, v in c.items() if k != "history"} for c in ft.get("candidates", [])],
            "winner": winner, "baseline": bl["best"] if bl else None,
            "baselines_trained": bl["trained"] if bl else [], "baseline_grid": bl["grid"] if bl else None,
            "baseline_skipped": not run_baseline,
            "timings": dict(timings), "timings_all_runs": cumulative,
            "evaluations_computed_this_run": se["computed"] if "search" in steps.ran else 0,
            "evaluations_from_cache": se["from_cache"] if "search" in steps.ran else se["evolution"]["evaluations"],
            "steps": {"order": list(STEPS), "computed_this_run": list(steps.ran) + ["report"],
                      "reused": list(steps.skipped)},
            "model_int8": "model_int8.npz: the int8 tinyengine Graph in the tinyml-graph/1 format (no pickle); "
                          "load with tinyengine.ir.graph_io.load_graph",
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=1, default=S._jsonable) + "\n")
        base_arch = ArchConfig.load(out / "baseline_arch.json") if bl and bl["best"] else None
        (out / "report.md").write_text(S._report(summary, arch, base_arch))
        held["summary"] = summary
        return {"baseline": run_baseline}

    steps.records.pop("report", None)  # the report is cheap and carries this run's timings: always rewritten
    steps.run("report", {"baseline": run_baseline}, do_report)
    summary = held["summary"]
    if run_baseline and bl and bl["best"]:
        d = winner["int8_test_acc"] - bl["best"]["int8_test_acc"]
        log(f"search vs hand-scaled baseline (same recipe, int8): {100 * winner['int8_test_acc']:.2f}% vs "
            f"{100 * bl['best']['int8_test_acc']:.2f}% ({100 * d:+.2f} points)")
    log(f"wrote {out}/report.md ({timings['total_s']:.0f} s)")
    return summary

