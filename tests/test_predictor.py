"""The accuracy predictor (tinynas.predictor) and the evolution's pre-screening with it."""
from __future__ import annotations

import numpy as np

from search_spaces.space import SearchSpace
from tinynas.constraints import constraints_from_args
from tinynas.evolution import EvalCache, EvoConfig, Feasibility, canonical, evolution_search, genes_from_json
from tinynas.fair import kendall_tau
from tinynas.predictor import AccuracyPredictor

SPACE = SearchSpace(num_classes=10, in_channels=1, resolution_choices=(32, 40))
W, R = 0.3, 40
CONS = constraints_from_args(None, "64KB", "256KB")


def synthetic(g):
    """A made-up accuracy: additive in the active blocks' kernel/expand choices and the depths."""
    tab = synthetic.tab
    d = np.asarray(g.depth)
    acc = 0.5 + 0.02 * d.sum()
    for s in range(SPACE.n_stages):
        for j in range(int(d[s])):
            acc += tab[0][s, j, int(g.kernel_idx[s, j])] + tab[1][s, j, int(g.expand_idx[s, j])]
    return float(acc)


_r = np.random.default_rng(7)
synthetic.tab = (_r.normal(0, 0.01, (SPACE.n_stages, SPACE.max_depth, len(SPACE.kernel_choices))),
                 _r.normal(0, 0.01, (SPACE.n_stages, SPACE.max_depth, len(SPACE.expand_choices))))


def _genes(n, seed):
    b = SPACE.sample_genes(np.random.default_rng(seed), n)
    from search_spaces.space import Genes
    return [canonical(SPACE, Genes(b.kernel_idx[i], b.expand_idx[i], b.depth[i])) for i in range(n)]


def test_predictor_ranks_held_out_genes_better_than_chance():
    train, test = _genes(80, 1), _genes(100, 2)
    noise = np.random.default_rng(3).normal(0, 0.005, len(train))
    y_tr = np.array([synthetic(g) for g in train]) + noise
    y_te = np.array([synthetic(g) for g in test])
    p = AccuracyPredictor.fit(SPACE, train, y_tr)
    tau = kendall_tau(p.predict(test), y_te)
    assert tau > 0.5, tau  # chance is 0
    # fitted on shuffled targets it knows nothing: far below the real fit
    shuffled = AccuracyPredictor.fit(SPACE, train, np.random.default_rng(4).permutation(y_tr))
    assert abs(kendall_tau(shuffled.predict(test), y_te)) < tau - 0.3


def _evolve(prescreen, seed, state=None, progress=None):
    feas = Feasibility(SPACE, W, R, CONS)
    arch_genes = {}

    def fitness(arch):
        return synthetic(arch_genes[arch.summary()])
    cache = EvalCache(fitness, feas, None if state is None else state.with_suffix(".cache.json"))
    build = feas.build

    def build_and_remember(g, name=None):
        a = build(g, name)
        arch_genes[a.summary()] = g
        return a
    feas.build = build_and_remember
    cfg = EvoConfig(population=8, generations=5, seed=seed, prescreen=prescreen, prescreen_min=8)
    return evolution_search(feas, cache, cfg, state, progress), cache


def test_prescreened_evolution_finds_better_networks_and_resumes(tmp_path):
    with_p = [_evolve(6, s)[0] for s in range(4)]
    without = [_evolve(1, s)[0] for s in range(4)]
    assert all(r["evaluations"] <= 8 * 5 for r in with_p)
    assert all("predictor_fit_on" in r["history"][0] for r in with_p)
    assert "predictor_fit_on" not in without[0]["history"][0]
    # same number of evaluations; the pre-screened evolution's best is better on average
    assert np.mean([r["best"]["acc"] for r in with_p]) > np.mean([r["best"]["acc"] for r in without])
    # every candidate still fits
    feas = Feasibility(SPACE, W, R, CONS)
    for r in with_p:
        for rec in r["records"]:
            assert feas.fits(feas.costs([genes_from_json(rec["genes"])])[0])

    # interrupted after generation 2 and resumed: the same search as without the interruption
    class Stop(Exception):
        pass

    def stop(g, n, h):
        if g == 2:
            raise Stop
    ref = _evolve(6, 0, tmp_path / "ref.json")[0]
    try:
        _evolve(6, 0, tmp_path / "run.json", stop)
    except Stop:
        pass
    res = _evolve(6, 0, tmp_path / "run.json")[0]
    assert res["best"] == ref["best"] and res["history"] == ref["history"]
