"""Elastic resolution: the sub-network search picks the input side too (genes, costs, evolution,
supernet training at several sides, stage 1's neighbouring resolutions, the pipeline end to end)."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from search_spaces.arch import ArchConfig
from search_spaces.space import SearchSpace
from search_spaces.supernet import SuperNet
from tinyengine.cost import fast_costs
from tinynas import search as search_mod
from tinynas.constraints import constraints_from_args
from tinynas.ddp import SandwichStep
from tinynas.evolution import (
    EvalCache,
    EvoConfig,
    Feasibility,
    SearchError,
    canonical,
    evolution_search,
    gene_key,
    genes_from_json,
    genes_to_json,
    random_search,
)
from tinynas.predictor import AccuracyPredictor
from tinynas.space_opt import elastic_resolutions, optimize_space
from tinynas.train import TrainConfig, at_resolution, to_input, train

SPACE = SearchSpace(num_classes=10, in_channels=1, resolution_choices=(24, 32, 40, 48))
W = 0.3
CONS = constraints_from_args(None, "64KB", "256KB")
RS = (32, 40, 48)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _feas(rs=RS, r=40, cons=CONS) -> Feasibility:
    return Feasibility(SPACE, W, r, cons, rs)


def test_costs_follow_each_genes_resolution():
    feas = _feas()
    gs = feas.sample_feasible(np.random.default_rng(0), 24)
    assert {int(g.resolution) for g in gs} == set(RS)  # all three sides get drawn
    for g, c in zip(gs, feas.costs(gs)):
        arch = feas.build(g)
        assert arch.resolution == g.resolution == c["resolution"]
        ref = fast_costs(arch)  # the per-network path, independent of the batched one
        assert (ref.macs, ref.peak_sram, ref.flash_bytes) == (c["macs"], c["peak_sram"], c["flash_bytes"])
        assert ref.fits(CONS.sram_bytes, CONS.flash_bytes)


def test_gene_keys_and_json_carry_the_resolution():
    feas = _feas()
    g = feas.sample_feasible(np.random.default_rng(1), 1)[0]
    other = replace(g, resolution=[r for r in RS if r != g.resolution][0])
    assert gene_key(g) != gene_key(other) and gene_key(g).endswith(f"-r{g.resolution}")
    back = genes_from_json(json.loads(json.dumps(genes_to_json(g))))
    assert gene_key(back) == gene_key(g) and back.resolution == g.resolution
    assert gene_key(canonical(SPACE, g)) == gene_key(g)
    # fixed resolution: the genes and keys are those of earlier versions (saved caches stay valid)
    fixed = Feasibility(SPACE, W, 40, CONS)
    h = fixed.sample_feasible(np.random.default_rng(1), 1)[0]
    assert h.resolution is None and "-r" not in gene_key(h) and "resolution" not in genes_to_json(h)
    assert fixed.build(h).resolution == 40 and not fixed.elastic


def test_mutation_and_crossover_move_the_resolution():
    feas = _feas()
    rng = np.random.default_rng(2)
    g = feas.sample_feasible(rng, 1)[0]
    seen = {int(feas.mutate(rng, g, 1.0).resolution) for _ in range(40)}
    assert seen == set(RS)
    assert all(feas.mutate(rng, g, 0.0).resolution == g.resolution for _ in range(10))
    a, b = replace(g, resolution=32), replace(g, resolution=48)
    assert {int(feas.crossover(rng, a, b).resolution) for _ in range(40)} == {32, 48}


def test_evolution_finds_the_resolution_the_fitness_prefers():
    feas = _feas()

    def fitness(arch: ArchConfig) -> float:  # resolution dominates, MACs break ties
        return -abs(arch.resolution - 32) + float(fast_costs(arch).macs) / 1e9
    cache = EvalCache(fitness, feas)
    res = evolution_search(feas, cache, EvoConfig(population=8, generations=4, seed=0))
    assert genes_from_json(res["best"]["genes"]).resolution == 32
    assert {r["resolution"] for r in cache.records.values()} == set(RS)  # it tried the others
    rnd = random_search(feas, cache, res["evaluations"], seed=0)
    assert rnd["evaluations"] == res["evaluations"]


def test_saved_search_with_other_resolutions_is_refused(tmp_path):
    feas = _feas()
    evolution_search(feas, EvalCache(lambda a: 0.5, feas), EvoConfig(population=4, generations=1), tmp_path / "s.json")
    other = _feas(rs=(40, 48))
    with pytest.raises(SearchError, match="other settings"):
        evolution_search(other, EvalCache(lambda a: 0.5, other), EvoConfig(population=4, generations=1),
                         tmp_path / "s.json")


def test_resolution_set_must_hold_stage1_choice():
    with pytest.raises(SearchError, match="must include the stage-1 resolution 40"):
        _feas(rs=(32, 48))


def test_predictor_learns_a_resolution_effect():
    feas = _feas()
    gs = feas.sample_feasible(np.random.default_rng(3), 60)
    acc = [0.5 + 0.01 * int(g.resolution) for g in gs]  # accuracy grows with the side alone
    p = AccuracyPredictor.fit(SPACE, gs, acc)
    lo, hi = replace(gs[0], resolution=32), replace(gs[0], resolution=48)
    assert p.predict([hi])[0] > p.predict([lo])[0] + 0.05


def test_stage1_neighbouring_resolutions():
    res = optimize_space(SPACE, CONS, samples=40, seed=0)
    c = res.choice
    assert elastic_resolutions(res, 0) == (c.resolution,)
    row = sorted(s.resolution for s in res.stats if s.width_mult == c.width_mult)
    i = row.index(c.resolution)
    near = elastic_resolutions(res, 1)
    assert c.resolution in near and set(near) <= set(row[max(0, i - 1):i + 2])
    fits = {s.resolution: s.fit for s in res.stats if s.width_mult == c.width_mult}
    assert all(fits[r] > 0 for r in near if r != c.resolution)
    # a budget where the larger sides fit nothing: they are left out
    tight = constraints_from_args(None, "40KB", "256KB")
    rt = optimize_space(SPACE, tight, samples=40, seed=0)
    if rt.choice is not None:
        f = {s.resolution: s.fit for s in rt.stats if s.width_mult == rt.choice.width_mult}
        assert all(f[r] > 0 for r in elastic_resolutions(rt, 3) if r != rt.choice.resolution)


def test_supernet_step_feeds_every_subnetwork_its_own_side():
    feas = _feas()
    sup = SuperNet(SPACE, W)
    archs = [feas.build(replace(g, resolution=r)) for g, r in
             zip(feas.sample_feasible(np.random.default_rng(4), 3), RS)]
    seen = []
    orig = sup.forward

    def spy(x, arch):
        seen.append((x.shape[-1], arch.resolution))
        return orig(x, arch)
    sup.forward = spy
    calls = {"n": 0}

    def sampler(rng):
        calls["n"] += 1
        return archs[1:]
    sampler.teacher = archs[0]
    x = torch.randint(0, 255, (64, 1, 28, 28), dtype=torch.uint8)
    y = torch.randint(0, 10, (64,))
    before = [p.detach().clone() for p in sup.parameters()]
    train(sup, x, y, max(RS), 1, TrainConfig(epochs=1, batch_size=32, limit_batches=2), None,
          space=SPACE, width_mult=W, progress=False, sampler=sampler)
    assert calls["n"] == 2 and len(seen) == 6
    assert all(side == r for side, r in seen)  # each sub-network saw its own input side
    assert {r for _, r in seen} == set(RS)
    assert any(not torch.equal(a, b) for a, b in zip(before, sup.parameters()))
    # the DDP wrapper's forward resizes the same way
    seen.clear()
    outs = SandwichStep(sup)(to_input(x[:4], 48, 1), archs)
    assert [o.shape for o in outs] == [(4, 10)] * 3 and [s for s, _ in seen] == list(RS)


def test_at_resolution_is_a_bilinear_resize():
    x = to_input(torch.randint(0, 255, (2, 1, 28, 28), dtype=torch.uint8), 48, 1)
    assert at_resolution(x, 48) is x
    y = at_resolution(x, 32)
    assert y.shape == (2, 1, 32, 32)
    assert abs(float(y.mean()) - float(x.mean())) < 0.05


def test_pipeline_searches_the_resolution_and_picks_the_baseline_on_held_out(tmp_path, monkeypatch):
    from tests.test_search import TINY
    from tinyml_cli.nas import main
    monkeypatch.setitem(search_mod.BUDGETS, "smoke", replace(TINY, elastic_res=1, baseline_top=2, final_top=2))
    from tinynas.search_pipeline import flush_denormal_on
    out = tmp_path / "run"
    torch.set_flush_denormal(False)
    assert main(["search", "--sram", "64KB", "--flash", "256KB", "--budget", "smoke", "--out", str(out),
                 "--no-progress", "--threads", "1"]) == 0
    # the run flushed denormals while it trained, and gave the process its own mode back
    assert not flush_denormal_on()
    s = json.loads((out / "summary.json").read_text())
    rs = s["space"]["resolutions"]
    assert len(rs) == 2 and s["space"]["resolution"] in rs  # smoke's grid: 32 and 40, both fit
    arch = ArchConfig.load(out / "arch.json")
    assert arch.resolution == s["space"]["winner_resolution"] and arch.resolution in rs
    cache = json.loads((out / "eval_cache.json").read_text())["records"]
    assert all(r["resolution"] in rs for r in cache.values())
    assert "elastic resolution" in (out / "report.md").read_text()
    bl = s["baselines_trained"]
    assert len(bl) == 2 and all(0 <= b["holdout_acc"] <= 1 for b in bl)
    assert s["baseline"]["holdout_acc"] == max(b["holdout_acc"] for b in bl)
    # two search candidates trained stand-alone; the one best on the held-out split is the winner
    fc = s["final_candidates"]
    assert len(fc) == 2 and len({c["key"] for c in fc}) == 2
    pick = max(fc, key=lambda c: c["holdout_acc"])
    assert arch.meta["key"] == pick["key"] and s["winner"]["holdout_acc"] == pick["holdout_acc"]
    assert fc[0]["key"] == s["evolution"]["best"]["key"]
    assert (out / "checkpoints" / "final" / "candidate1.pt").exists()
    assert "Search candidates trained with the same recipe (2" in (out / "report.md").read_text()


def test_final_candidates_spread_along_the_front():
    from tinynas.evolution import final_candidates, pareto_front
    rng = np.random.default_rng(5)
    recs = [{"key": f"n{i}", "acc": float(a), "macs": int(m)}
            for i, (a, m) in enumerate(zip(rng.uniform(0.5, 0.9, 40), rng.integers(1e5, 1e7, 40)))]
    best = max(recs, key=lambda r: r["acc"])
    assert final_candidates(recs, 1) == [best]
    c3 = final_candidates(recs, 3)
    front = pareto_front(recs, "macs")
    assert c3[0] == best and len({r["key"] for r in c3}) == 3
    assert all(r in front for r in c3)
    assert min(front, key=lambda r: r["macs"]) in c3  # the cheapest end of the front is tried
    # a front shorter than k: filled with the next best by accuracy, no repeats
    line = [{"key": f"m{i}", "acc": 0.9 - 0.01 * i, "macs": 100} for i in range(5)]
    assert [r["key"] for r in final_candidates(line, 3)] == ["m0", "m1", "m2"]
    assert len(final_candidates(recs[:2], 5)) == 2
    with pytest.raises(SearchError, match="k must be at least 1"):
        final_candidates(recs, 0)
