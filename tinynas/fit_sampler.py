"""Supernet sampling that trains what the search will pick: sub-networks that fit, near the budget.

The BigNAS sandwich trains the smallest sub-network every step; under a binding budget that one is
far below the limits, its shared weights get the most updates and the supernet ranking then
favours it, while many uniform samples do not fit at all. ``FitSampler`` instead draws, per step,
``n`` sub-networks from a pool of fitting ones: the first from those that use the most of the
budget (the top ``near_quantile`` by max(peak SRAM / limit, flash / limit)), the others uniformly
from the pool; ``teacher`` (the pool's most-MACs network) replaces the largest sub-network. The pool is drawn once (deterministic from ``seed``) by rejection sampling through
the planner's cost model (``evolution.Feasibility``).
"""
from __future__ import annotations

import numpy as np

from search_spaces.arch import ArchConfig
from tinynas.evolution import Feasibility


class FitSampler:
    def __init__(self, feas: Feasibility, n: int = 2, *, pool: int = 256, near_quantile: float = 0.2,
                 seed: int = 0):
        if n < 1:
            raise ValueError(f"fit sampler: n must be at least 1, got {n}")
        rng = np.random.default_rng([seed, 4242])
        genes = feas.sample_feasible(rng, pool)
        costs = feas.costs(genes)
        use = np.array([max(c["peak_sram"] / feas.cons.sram_bytes, c["flash_bytes"] / feas.cons.flash_bytes)
                        for c in costs])
        self.archs = [feas.build(g) for g in genes]
        self.utilisation = use
        k = max(1, int(round(near_quantile * len(genes))))
        self.near = np.argsort(-use)[:k]
        self.n = n
        # the teacher (trained alone first, then the in-place distillation source): the fitting
        # sub-network with the most MACs. Weights only larger, non-fitting choices would use are
        # never needed, and the space's largest can cost 10x more than anything that fits.
        self.teacher = self.archs[int(np.argmax([c["macs"] for c in costs]))]

    def __call__(self, rng: np.random.Generator) -> list[ArchConfig]:
        picks = [int(self.near[rng.integers(len(self.near))])]
        picks += [int(i) for i in rng.integers(0, len(self.archs), size=self.n - 1)]
        return [self.archs[i] for i in picks]
