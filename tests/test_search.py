"""Stage 2 search: constrained evolution, random search, Pareto front, resume, CLI, smoke end-to-end."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from boards import load_board
from search_spaces.arch import ArchConfig
from search_spaces.space import SearchSpace
from search_spaces.torch_model import build_torch_model
from tinyengine.cost import fast_costs
from tinyengine.ir.graph_io import load_graph
from tinyml_cli.nas import main
from tinyml_errors import TinyMLError
from tinynas import search as search_mod
from tinynas.constraints import constraints_from_args
from tinynas.data import DatasetError, load_image_folder
from tinynas.evolution import (
    EvalCache,
    EvoConfig,
    Feasibility,
    SearchError,
    evolution_search,
    gene_key,
    genes_from_json,
    pareto_front,
    random_search,
)
from tinynas.latency import CYCLES_PER_LAYER, cycles_per_mac, predict_latency_s
from tinynas.train import TrainConfig

SPACE = SearchSpace(num_classes=10, in_channels=1, resolution_choices=(32, 40))
W, R = 0.3, 40
CONS = constraints_from_args(None, "64KB", "256KB")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _fitness(calls: list):
    """A cheap deterministic stand-in for held-out accuracy (bigger, wider kernels score higher)."""
    def f(arch: ArchConfig) -> float:
        calls.append(arch.summary())
        ks = [b.kernel_size for s in arch.stages for b in s.blocks]
        return float(fast_costs(arch).macs) / 1e7 + 0.001 * sum(ks)
    return f


def test_evolution_yields_only_fitting_archs():
    feas = Feasibility(SPACE, W, R, CONS)
    cache = EvalCache(_fitness([]), feas)
    res = evolution_search(feas, cache, EvoConfig(population=8, generations=3, seed=3))
    rnd = random_search(feas, cache, res["evaluations"], seed=3)
    assert rnd["evaluations"] == res["evaluations"]
    assert len({r["key"] for r in rnd["records"]}) == rnd["evaluations"]
    for rec in cache.records.values():
        arch = feas.build(genes_from_json(rec["genes"]))
        c = fast_costs(arch)  # the per-network path, independent of batch_costs
        assert c.fits(CONS.sram_bytes, CONS.flash_bytes), rec["key"]
        assert (c.macs, c.peak_sram, c.flash_bytes) == (rec["macs"], rec["peak_sram"], rec["flash_bytes"])
    best = [h["best_acc"] for h in res["history"]]
    assert best == sorted(best)  # elitism: the best never gets worse


def test_evolution_resume_equals_uninterrupted(tmp_path):
    cfg = EvoConfig(population=6, generations=4, seed=1)
    feas = Feasibility(SPACE, W, R, CONS)
    calls_ref: list = []
    ref = evolution_search(feas, EvalCache(_fitness(calls_ref), feas, tmp_path / "a_cache.json"), cfg,
                           tmp_path / "a_state.json")

    calls: list = []

    def stop_at_2(g, n, h):
        if g == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        evolution_search(feas, EvalCache(_fitness(calls), feas, tmp_path / "b_cache.json"), cfg,
                         tmp_path / "b_state.json", stop_at_2)
    assert json.loads((tmp_path / "b_state.json").read_text())["generation"] == 1
    cache = EvalCache(_fitness(calls), feas, tmp_path / "b_cache.json")
    n_before = len(calls)
    res = evolution_search(feas, cache, cfg, tmp_path / "b_state.json")
    assert res["history"] == ref["history"]
    assert res["best"] == ref["best"]
    assert len(calls) == len(calls_ref)  # nothing evaluated twice across the interruption
    assert cache.computed == len(calls) - n_before
    # a finished search resumes to the same answer without any evaluation
    again = EvalCache(_fitness(calls), feas, tmp_path / "b_cache.json")
    assert evolution_search(feas, again, cfg, tmp_path / "b_state.json")["best"] == ref["best"]
    assert again.computed == 0


def test_evolution_state_mismatch_is_an_error(tmp_path):
    feas = Feasibility(SPACE, W, R, CONS)
    evolution_search(feas, EvalCache(_fitness([]), feas), EvoConfig(population=4, generations=1),
                     tmp_path / "s.json")
    with pytest.raises(SearchError, match="other settings"):
        evolution_search(feas, EvalCache(_fitness([]), feas), EvoConfig(population=5, generations=1),
                         tmp_path / "s.json")


def test_impossible_budget_names_smallest_footprint():
    feas = Feasibility(SPACE, W, R, constraints_from_args(None, "4KB", "256KB"))
    with pytest.raises(SearchError, match=r"the smallest of \d+ samples: peak SRAM"):
        feas.sample_feasible(np.random.default_rng(0), 4, max_tries=3)


def test_gene_key_ignores_inactive_slots():
    feas = Feasibility(SPACE, W, R, CONS)
    g = feas.sample_feasible(np.random.default_rng(0), 1)[0]
    k = g.kernel_idx.copy()
    s = int(np.argmin(g.depth))
    if g.depth[s] < SPACE.max_depth:
        k[s, SPACE.max_depth - 1] = (k[s, SPACE.max_depth - 1] + 1) % 3
    assert gene_key(replace(g, kernel_idx=k)) == gene_key(g)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=30))
def test_pareto_front_is_the_set_of_non_dominated_points(pts):
    recs = [{"macs": m, "acc": a / 20} for m, a in pts]
    front = pareto_front(recs, "macs")

    def dominated(r):
        return any(o["macs"] <= r["macs"] and o["acc"] >= r["acc"] and (o["macs"], o["acc"]) != (r["macs"], r["acc"])
                   for o in recs)
    expected = {(r["macs"], r["acc"]) for r in recs if not dominated(r)}
    assert {(r["macs"], r["acc"]) for r in front} == expected
    assert [r["macs"] for r in front] == sorted(r["macs"] for r in front)
    assert [r["acc"] for r in front] == sorted(r["acc"] for r in front)


def test_registered_latency_model_is_used(monkeypatch):
    from tinynas import latency as latency_mod
    board = load_board("stm32f746g-disco")
    monkeypatch.setattr(latency_mod, "_MODEL", lambda arch, b: 0.123)
    assert predict_latency_s(SPACE.largest(W, R), board) == 0.123
    assert latency_mod.per_arch(board) and latency_mod.latency_source(board) == "registered latency model"


def test_pareto_front_example():
    recs = [{"macs": 1, "acc": 0.5}, {"macs": 2, "acc": 0.4}, {"macs": 3, "acc": 0.7}, {"macs": 3, "acc": 0.6},
            {"macs": 5, "acc": 0.7}, {"macs": 6, "acc": 0.9}]
    assert [(r["macs"], r["acc"]) for r in pareto_front(recs, "macs")] == [(1, 0.5), (3, 0.7), (6, 0.9)]


def test_latency_fallback_and_constraint(monkeypatch):
    from tinynas import latency as latency_mod
    monkeypatch.setattr(latency_mod, "_calibrated_model", lambda board: None)  # the analytic fallback
    assert latency_mod.latency_source(load_board("stm32f746g-disco")).startswith("analytic")
    board = load_board("stm32f746g-disco")
    arch = SPACE.largest(W, R)
    lat = predict_latency_s(arch, board)
    n_layers = 3 + sum(3 if b.expand else 2 for b in arch.blocks())
    assert lat == pytest.approx((fast_costs(arch).macs * cycles_per_mac(board) + n_layers * CYCLES_PER_LAYER)
                                / board.clock_hz)
    with pytest.raises(TinyMLError, match="--board"):
        predict_latency_s(arch, CONS)
    # a latency limit between the smallest and largest network's estimate filters sub-networks
    lo, hi = predict_latency_s(SPACE.smallest(W, R), board), predict_latency_s(arch, board)
    cons = constraints_from_args("stm32f746g-disco", "64KB", "256KB", f"{1e3 * (lo + hi) / 2:.4f}ms")
    feas = Feasibility(SPACE, W, R, cons)
    for g in feas.sample_feasible(np.random.default_rng(0), 5):
        assert predict_latency_s(feas.build(g), board) <= cons.latency_s * (1 + 1e-9)


# ------------------------------------------------------------------------------- CLI and end to end
TINY = replace(search_mod.BUDGETS["smoke"], train_limit=500, holdout=100, calib=32, test_limit=60,
               int8_test_limit=4, space_samples=60,
               supernet=TrainConfig(epochs=2, largest_epochs=1, batch_size=32, n_random=1, limit_batches=2),
               finetune=TrainConfig(epochs=1, batch_size=32, limit_batches=2),
               evo=EvoConfig(population=4, generations=2))


@pytest.mark.parametrize("argv, msg", [
    (["--budget", "huge"], "--budget: unknown budget 'huge'"),
    (["--data", "/nonexistent/dir"], "--data: '/nonexistent/dir' is neither"),
    (["--latency", "200ms"], "--latency: a latency limit needs --board"),
    (["--threads", "0"], "--threads: must be at least 1"),
    (["--in-channels", "2"], "--in-channels: must be 1 or 3"),
])
def test_cli_errors(argv, msg, tmp_path, capsys):
    rc = main(["search", "--sram", "64KB", "--flash", "256KB", "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and msg in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_cli_impossible_budget(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(search_mod.BUDGETS, "smoke", TINY)
    rc = main(["search", "--sram", "2KB", "--flash", "256KB", "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "no sub-network fits" in err and "smallest footprint found is peak SRAM" in err


def test_image_folder_loader(tmp_path):
    from PIL import Image
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(3):
            Image.fromarray(np.full((10, 12, 3), 40 * i, np.uint8)).save(tmp_path / c / f"{i}.png")
    x, y, names = load_image_folder(tmp_path, size=16, channels=1)
    assert x.shape == (6, 1, 16, 16) and x.dtype == np.uint8 and names == ["cat", "dog"]
    assert list(y) == [0, 0, 0, 1, 1, 1]
    with pytest.raises(DatasetError, match="--data: .* is not a directory"):
        load_image_folder(tmp_path / "cat" / "0.png")


def test_smoke_search_end_to_end_and_resume(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(search_mod.BUDGETS, "smoke", TINY)
    out = tmp_path / "run"
    argv = ["search", "--sram", "64KB", "--flash", "256KB", "--budget", "smoke", "--out", str(out),
            "--no-progress", "--threads", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "expected time ~" in printed and "overall |" in printed and "binds" in printed
    for f in ("arch.json", "weights.pt", "model_int8.npz", "report.md", "pareto.json", "pareto.png",
              "search_state.json", "eval_cache.json", "summary.json", "checkpoints/supernet.pt",
              "baseline_arch.json", "space.json"):
        assert (out / f).exists(), f
    arch = ArchConfig.load(out / "arch.json")
    build_torch_model(arch).load_state_dict(torch.load(out / "weights.pt"), strict=True)
    graph = load_graph(out / "model_int8.npz")
    assert graph.ops and graph.inputs
    s = json.loads((out / "summary.json").read_text())
    c = fast_costs(arch)
    assert c.fits(CONS.sram_bytes, CONS.flash_bytes) and s["winner"]["fits"] and s["baseline"]["fits"]
    assert s["winner"]["peak_sram"] == c.peak_sram and s["winner"]["macs"] == c.macs
    assert s["evolution"]["evaluations"] == s["random_search"]["evaluations"] > 0
    assert 0 <= s["winner"]["int8_test_acc"] <= 1
    report = (out / "report.md").read_text()
    assert "int8 test acc" in report and "MobileNetV2" in report and "random" in report
    assert report.startswith("# TinyNAS search report (pipeline check, not a model)")
    front = json.loads((out / "pareto.json").read_text())
    assert front["front_macs"] and front["front_peak_sram"]

    # a second run resumes: no training step, no evaluation repeated, same winner
    capsys.readouterr()
    assert main(argv) == 0
    s2 = json.loads((out / "summary.json").read_text())
    assert s2["evaluations_computed_this_run"] == 0
    assert s2["winner"] == s["winner"] and s2["evolution"]["best"] == s["evolution"]["best"]
