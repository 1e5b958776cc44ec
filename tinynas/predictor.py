"""An accuracy predictor fitted on the sub-networks the search has evaluated (ridge regression).

Evaluating a candidate costs a BN recalibration and a pass over the held-out split; predicting it
costs a dot product. The evolution (``EvoConfig.prescreen``) draws several feasible children per
free population slot, ranks them with a predictor fitted on every sub-network it has evaluated so
far, and evaluates only the best-ranked one (as in Once-for-All's accuracy predictor).

Encoding of a sub-network: per block slot, whether it is active and one-hot kernel and expand
choices (zeros when inactive); one-hot depth per stage; log MACs and, with elastic resolution, the
input side (standardised). The model is ridge regression on centred features and targets (closed
form, NumPy only).
"""
from __future__ import annotations

import numpy as np

from search_spaces.space import Genes, SearchSpace


def encode(space: SearchSpace, g: Genes, macs: float | None = None) -> np.ndarray:
    k, e, d = np.asarray(g.kernel_idx), np.asarray(g.expand_idx), np.asarray(g.depth)
    nk, ne = len(space.kernel_choices), len(space.expand_choices)
    feats = []
    for s in range(space.n_stages):
        for j in range(space.max_depth):
            on = j < d[s]
            slot = np.zeros(1 + nk + ne)
            if on:
                slot[0] = 1.0
                slot[1 + int(k[s, j])] = 1.0
                slot[1 + nk + int(e[s, j])] = 1.0
            feats.append(slot)
        dep = np.zeros(space.max_depth + 1)
        dep[min(int(d[s]), space.max_depth)] = 1.0
        feats.append(dep)
    feats.append(np.array([np.log(max(1.0, float(macs))) if macs is not None else 0.0]))
    feats.append(np.array([float(g.resolution) if g.resolution is not None else 0.0]))  # elastic R
    return np.concatenate(feats)


class AccuracyPredictor:
    def __init__(self, space: SearchSpace, w: np.ndarray, x_mean: np.ndarray, x_scale: np.ndarray, y_mean: float,
                 n: int):
        self.space, self.w, self.x_mean, self.x_scale, self.y_mean, self.n = space, w, x_mean, x_scale, y_mean, n

    @classmethod
    def fit(cls, space: SearchSpace, genes: list[Genes], acc, macs=None, lam: float = 1.0) -> "AccuracyPredictor":
        if len(genes) < 2:
            raise ValueError("accuracy predictor: needs at least 2 evaluated sub-networks")
        macs = [None] * len(genes) if macs is None else list(macs)
        x = np.stack([encode(space, g, m) for g, m in zip(genes, macs)])
        y = np.asarray(acc, float)
        x_mean = x.mean(0)
        x_scale = x.std(0)
        x_scale[x_scale == 0] = 1.0
        xs = (x - x_mean) / x_scale
        y_mean = float(y.mean())
        a = xs.T @ xs + lam * np.eye(xs.shape[1])
        w = np.linalg.solve(a, xs.T @ (y - y_mean))
        return cls(space, w, x_mean, x_scale, y_mean, len(genes))

    @classmethod
    def from_records(cls, space: SearchSpace, records: list[dict], lam: float = 1.0) -> "AccuracyPredictor":
        """Fit on EvalCache records (genes, acc, macs)."""
        from tinynas.evolution import genes_from_json
        return cls.fit(space, [genes_from_json(r["genes"]) for r in records], [r["acc"] for r in records],
                       [r.get("macs") for r in records], lam=lam)

    def predict(self, genes: list[Genes], macs=None) -> np.ndarray:
        macs = [None] * len(genes) if macs is None else list(macs)
        x = np.stack([encode(self.space, g, m) for g, m in zip(genes, macs)])
        return self.y_mean + ((x - self.x_mean) / self.x_scale) @ self.w
