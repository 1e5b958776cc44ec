"""TinyNAS stage 2 search: constrained evolution (and random search, its baseline) over sub-networks.

Only sub-networks that fit enter a population: peak SRAM and flash come from tinyengine's cost model
(``batch_costs``: the planner's figures), latency from ``tinynas.latency``. Fitness is a callable
(held-out accuracy after BN recalibration, in ``tinynas.search``); an ``EvalCache`` remembers every
evaluated sub-network on disk so that nothing is evaluated twice, across generations, across the
random-search baseline and across interrupted runs. The evolution writes its state after every
generation and resumes from it.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from search_spaces.arch import ArchConfig
from search_spaces.space import Genes, SearchSpace
from tinyengine.cost import batch_costs
from tinyml_errors import SearchError
from tinynas import latency as latency_mod
from tinynas.constraints import Constraints


# --------------------------------------------------------------------------- genes helpers
def canonical(space: SearchSpace, g: Genes) -> Genes:
    """Zero the choices of inactive block slots, so equal networks have equal genes."""
    k, e, d = np.array(g.kernel_idx, dtype=np.int64), np.array(g.expand_idx, dtype=np.int64), \
        np.array(g.depth, dtype=np.int64)
    active = np.arange(space.max_depth)[None, :] < d[:, None]
    return Genes(np.where(active, k, 0), np.where(active, e, 0), d, g.resolution)


def gene_key(g: Genes) -> str:
    d = [int(v) for v in g.depth]
    ks = "".join(str(int(g.kernel_idx[s, j])) for s in range(len(d)) for j in range(d[s]))
    es = "".join(str(int(g.expand_idx[s, j])) for s in range(len(d)) for j in range(d[s]))
    key = f"d{''.join(map(str, d))}-k{ks}-e{es}"
    return key if g.resolution is None else f"{key}-r{int(g.resolution)}"


def genes_to_json(g: Genes) -> dict:
    d = {"kernel_idx": np.asarray(g.kernel_idx).tolist(), "expand_idx": np.asarray(g.expand_idx).tolist(),
         "depth": np.asarray(g.depth).tolist()}
    if g.resolution is not None:
        d["resolution"] = int(g.resolution)
    return d


def genes_from_json(d: dict) -> Genes:
    r = d.get("resolution")
    return Genes(np.array(d["kernel_idx"], dtype=np.int64), np.array(d["expand_idx"], dtype=np.int64),
                 np.array(d["depth"], dtype=np.int64), None if r is None else int(r))


def _stack(gs: list[Genes]) -> Genes:
    return Genes(np.stack([g.kernel_idx for g in gs]), np.stack([g.expand_idx for g in gs]),
                 np.stack([g.depth for g in gs]),
                 None if gs[0].resolution is None else np.array([int(g.resolution) for g in gs]))


def _row(g: Genes, i: int) -> Genes:
    return Genes(g.kernel_idx[i], g.expand_idx[i], g.depth[i],
                 None if g.resolution is None else int(np.asarray(g.resolution)[i]))


# --------------------------------------------------------------------------- constraints
@dataclass
class Feasibility:
    """The constraint checker: costs of a batch of genes and whether each fits.

    ``resolutions`` (elastic resolution, as in Once-for-All): the input sides the search may pick
    besides the kernel/expand/depth choices. Genes then carry their own resolution; sampling draws
    it uniformly from ``resolutions``, mutation resamples it with the mutation probability and
    crossover takes either parent's. Empty: every sub-network runs at ``resolution``."""

    space: SearchSpace
    width_mult: float
    resolution: int
    cons: Constraints
    resolutions: tuple[int, ...] = ()

    def __post_init__(self):
        if self.resolutions:
            self.resolutions = tuple(sorted({int(r) for r in self.resolutions}))
            if self.resolution not in self.resolutions:
                raise SearchError(f"elastic resolutions {list(self.resolutions)} must include the stage-1 "
                                  f"resolution {self.resolution}")

    @property
    def elastic(self) -> bool:
        return len(self.resolutions) > 1

    def res_of(self, g: Genes) -> int:
        return self.resolution if g.resolution is None else int(g.resolution)

    def describe(self) -> str:
        return (f"W={self.width_mult:g}, R={self.resolution}" if not self.elastic else
                f"W={self.width_mult:g}, R in {{{', '.join(map(str, self.resolutions))}}} (stage 1: {self.resolution})")

    @property
    def sides(self) -> tuple[int, ...]:
        """Every input side a sub-network may have: the elastic set, or the one fixed resolution."""
        return self.resolutions or (self.resolution,)

    def settings(self) -> list:
        """What a saved search state must match (W, R and, when elastic, the resolution set)."""
        return [self.width_mult, self.resolution] + ([list(self.resolutions)] if self.elastic else [])

    def costs(self, gs: list[Genes]) -> list[dict]:
        out: list[dict | None] = [None] * len(gs)
        res = [self.res_of(g) for g in gs]
        for r in sorted(set(res)):
            idx = [i for i, x in enumerate(res) if x == r]
            sub = [gs[i] for i in idx]
            b = batch_costs(self.space, self.width_mult, r, _stack(sub), stream=getattr(self.cons, "stream", False))
            lat = self._latency(sub, b.macs)
            for j, i in enumerate(idx):
                out[i] = {"macs": int(b.macs[j]), "params": int(b.params[j]),
                          "flash_bytes": int(b.flash_bytes[j]), "peak_sram": int(b.peak_sram[j]),
                          "latency_s": None if lat is None else float(lat[j]),
                          **({"resolution": r} if self.elastic else {})}
        return out

    def sample_genes(self, rng: np.random.Generator, n: int) -> Genes:
        g = self.space.sample_genes(rng, n)
        if not self.elastic:
            return g
        return Genes(g.kernel_idx, g.expand_idx, g.depth,
                     np.asarray(self.resolutions)[rng.integers(0, len(self.resolutions), size=n)])

    def mutate(self, rng: np.random.Generator, g: Genes, prob: float) -> Genes:
        c = self.space.mutate(rng, g, prob)
        if self.elastic and rng.random() < prob:
            c = Genes(c.kernel_idx, c.expand_idx, c.depth, int(self.resolutions[rng.integers(len(self.resolutions))]))
        return c

    def crossover(self, rng: np.random.Generator, a: Genes, b: Genes) -> Genes:
        return self.space.crossover(rng, a, b)

    def _latency(self, gs: list[Genes], macs: np.ndarray) -> np.ndarray | None:
        if self.cons.latency_s is None:
            return None
        if latency_mod.per_arch(self.cons):
            return np.array([latency_mod.predict_latency_s(self.build(g), self.cons) for g in gs])
        n_layers = np.array([5 + 3 * int(np.sum(g.depth)) for g in gs])
        return latency_mod.latency_from_macs(macs, n_layers, self.cons)

    def fits(self, c: dict) -> bool:
        return (c["peak_sram"] <= self.cons.sram_bytes and c["flash_bytes"] <= self.cons.flash_bytes
                and (self.cons.latency_s is None or c["latency_s"] <= self.cons.latency_s))

    def build(self, g: Genes, name: str | None = None) -> ArchConfig:
        return self.space.build(self.width_mult, self.res_of(g), g.kernel_idx, g.expand_idx, g.depth, name=name)

    def sample_feasible(self, rng: np.random.Generator, n: int, max_tries: int = 200) -> list[Genes]:
        """n fitting sub-networks drawn uniformly (rejection sampling in batches)."""
        out: list[Genes] = []
        lows: dict[str, float] = {}  # the smallest value of each constrained figure seen
        seen = 0
        for _ in range(max_tries):
            batch = self.sample_genes(rng, max(64, 4 * n))
            gs = [canonical(self.space, _row(batch, i)) for i in range(batch.depth.shape[0])]
            for g, c in zip(gs, self.costs(gs)):
                seen += 1
                if self.fits(c):
                    out.append(g)
                    if len(out) == n:
                        return out
                for k in ("peak_sram", "flash_bytes", "latency_s"):
                    if c.get(k) is not None:
                        lows[k] = min(lows.get(k, c[k]), c[k])
        if out:
            return out
        from boards.units import format_size
        parts = [f"peak SRAM {format_size(int(lows.get('peak_sram', 0)))}",
                 f"flash {format_size(int(lows.get('flash_bytes', 0)))}"]
        if "latency_s" in lows:
            parts.append(f"latency {lows['latency_s'] * 1e3:.1f} ms ({latency_mod.latency_source(self.cons)})")
        raise SearchError(f"no sub-network of {self.describe()} fits "
                          f"{self.cons.describe()}; the smallest of {seen} samples: " + ", ".join(parts))


# --------------------------------------------------------------------------- evaluation cache
class EvalCache:
    """key -> record (genes, accuracy, costs), saved to JSON after every new evaluation."""

    def __init__(self, fitness: Callable[[ArchConfig], float], feas: Feasibility,
                 path: str | Path | None = None):
        self.fitness, self.feas = fitness, feas
        self.path = Path(path) if path else None
        self.records: dict[str, dict] = {}
        self.computed = 0  # evaluations run by this process (not loaded from disk)
        if self.path is not None and self.path.exists():
            self.records = json.loads(self.path.read_text())["records"]

    def __len__(self) -> int:
        return len(self.records)

    def evaluate(self, gs: list[Genes]) -> list[dict]:
        todo = [g for g in gs if gene_key(g) not in self.records]
        if todo:
            for g, c in zip(todo, self.feas.costs(todo)):
                key = gene_key(g)
                if key in self.records:
                    continue
                acc = float(self.fitness(self.feas.build(g)))
                self.records[key] = {"key": key, "genes": genes_to_json(g), "acc": acc, **c}
                self.computed += 1
                self.save()
        return [self.records[gene_key(g)] for g in gs]

    def save(self) -> None:
        if self.path is not None:
            _write_json(self.path, {"records": self.records})


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def _prescreened_child(feas: Feasibility, make: Callable[[], Genes], predictor, n: int,
                       seen: set[str]) -> Genes | None:
    """Of ``n`` feasible new children, the one the accuracy predictor ranks best."""
    cands, keys = [], set()
    for _ in range(n):
        c = _child_feasible(feas, make)
        if c is not None and gene_key(c) not in seen and gene_key(c) not in keys:
            keys.add(gene_key(c))
            cands.append(c)
    if not cands:
        return None
    pred = predictor.predict(cands, [c["macs"] for c in feas.costs(cands)])
    return cands[int(np.argmax(pred))]


# --------------------------------------------------------------------------- evolution
@dataclass(frozen=True)
class EvoConfig:
    population: int = 20
    generations: int = 5
    parent_ratio: float = 0.25
    mutate_ratio: float = 0.5
    mutate_prob: float = 0.1
    seed: int = 0
    prescreen: int = 1        # feasible children drawn per free slot; >1: keep the one an accuracy
    prescreen_min: int = 8    # predictor (tinynas.predictor) ranks best, once this many are evaluated


def _child_feasible(feas: Feasibility, make: Callable[[], Genes], tries: int = 50) -> Genes | None:
    for _ in range(tries):
        g = canonical(feas.space, make())
        if feas.fits(feas.costs([g])[0]):
            return g
    return None


def evolution_search(feas: Feasibility, cache: EvalCache, cfg: EvoConfig,
                     state_path: str | Path | None = None,
                     progress: Callable[[int, int, dict], None] | None = None) -> dict:
    """Regularised-by-elitism evolution (OFA style): keep the top ``parent_ratio``, refill with
    mutants and crossovers that fit. Returns {"best", "history", "evaluated": [keys]}."""
    space = feas.space
    state_path = Path(state_path) if state_path else None
    rng = np.random.default_rng(cfg.seed)
    gen, pop, history, evo_keys = 0, None, [], []
    if state_path is not None and state_path.exists():
        st = json.loads(state_path.read_text())
        if st["config"] != asdict(cfg) or st["space"] != feas.settings():
            raise SearchError(f"{state_path}: saved search used other settings; remove it or use another --out")
        gen, history, evo_keys = st["generation"], st["history"], st["evaluated"]
        pop = [genes_from_json(d) for d in st["population"]]
        rng.bit_generator.state = st["rng"]
    if pop is None:
        pop = feas.sample_feasible(rng, cfg.population)
    n_par = max(2, int(round(cfg.parent_ratio * cfg.population)))
    n_mut = int(round(cfg.mutate_ratio * cfg.population))
    while gen < cfg.generations:
        recs = cache.evaluate(pop)
        evo_keys += [r["key"] for r in recs if r["key"] not in evo_keys]
        order = sorted(range(len(pop)), key=lambda i: -recs[i]["acc"])
        parents = [pop[i] for i in order[:n_par]]
        best = recs[order[0]]
        history.append({"generation": gen, "best_acc": best["acc"], "best_key": best["key"],
                        "mean_acc": float(np.mean([r["acc"] for r in recs])), "evaluated": len(cache)})
        if progress:
            progress(gen + 1, cfg.generations, history[-1])
        gen += 1
        if gen < cfg.generations:
            children: list[Genes] = []
            seen = {gene_key(p) for p in parents}
            predictor = None
            if cfg.prescreen > 1 and len(evo_keys) >= max(2, cfg.prescreen_min):
                from tinynas.predictor import AccuracyPredictor
                predictor = AccuracyPredictor.from_records(space, [cache.records[k] for k in evo_keys])
                history[-1]["predictor_fit_on"] = len(evo_keys)
            for i in range(cfg.population - n_par):
                if i < n_mut:
                    make = lambda: feas.mutate(rng, parents[rng.integers(len(parents))], cfg.mutate_prob)
                else:
                    make = lambda: feas.crossover(rng, parents[rng.integers(len(parents))],
                                                  parents[rng.integers(len(parents))])
                if predictor is not None:
                    c = _prescreened_child(feas, make, predictor, cfg.prescreen, seen)
                else:
                    c = _child_feasible(feas, make)
                if c is None or gene_key(c) in seen:  # a fresh random fit keeps the population diverse
                    c = feas.sample_feasible(rng, 1)[0]
                seen.add(gene_key(c))
                children.append(c)
            pop = parents + children
        if state_path is not None:
            _write_json(state_path, {"config": asdict(cfg), "space": feas.settings(),
                                     "generation": gen, "population": [genes_to_json(g) for g in pop],
                                     "rng": rng.bit_generator.state, "history": history,
                                     "evaluated": evo_keys})
    recs = [cache.records[k] for k in evo_keys]
    best = max(recs, key=lambda r: r["acc"])
    return {"best": best, "history": history, "evaluations": len(evo_keys), "records": recs}


def random_search(feas: Feasibility, cache: EvalCache, n_evals: int, seed: int = 1) -> dict:
    """Best of ``n_evals`` distinct fitting sub-networks drawn uniformly (the evolution's baseline).
    Deterministic in ``seed``; the cache makes a resumed run free up to where it stopped."""
    rng = np.random.default_rng([seed, 7919])
    chosen: list[Genes] = []
    keys: set[str] = set()
    while len(chosen) < n_evals:
        for g in feas.sample_feasible(rng, n_evals):
            if gene_key(g) not in keys and len(chosen) < n_evals:
                keys.add(gene_key(g))
                chosen.append(g)
    recs = []
    for g in chosen:
        recs += cache.evaluate([g])
    best = max(recs, key=lambda r: r["acc"])
    return {"best": best, "evaluations": len(recs), "records": recs,
            "best_so_far": list(np.maximum.accumulate([r["acc"] for r in recs]))}


# --------------------------------------------------------------------------- Pareto front
def pareto_front(records: list[dict], cost_key: str, acc_key: str = "acc") -> list[dict]:
    """Records not dominated by another (lower-or-equal cost and higher-or-equal accuracy, one
    strictly), sorted by cost."""
    pts = sorted(records, key=lambda r: (r[cost_key], -r[acc_key]))
    front, best = [], -np.inf
    for r in pts:
        if r[acc_key] > best:
            front.append(r)
            best = r[acc_key]
    return front


def final_candidates(records: list[dict], k: int, cost_key: str = "macs") -> list[dict]:
    """``k`` evaluated sub-networks to train stand-alone, the best on the held-out split becoming the
    winner (the hand-scaled baseline gets the same: its ``k`` best-MACs grid points, the best on the
    held-out split kept). Weight-shared accuracy ranks sub-networks only roughly, so the candidates
    are spread along the Pareto front of held-out accuracy against ``cost_key``: always the
    most-accurate one (the evolution's best), then front points evenly spaced in cost, then (a front
    shorter than ``k``) the next best by accuracy."""
    if k < 1:
        raise SearchError(f"final candidates: k must be at least 1, got {k}")
    if not records:
        return []
    best = max(records, key=lambda r: r["acc"])
    out = [best]
    front = [r for r in pareto_front(records, cost_key) if r["key"] != best["key"]]
    if front and k > 1:
        pos = np.linspace(0, len(front) - 1, min(k - 1, len(front))).round().astype(int)
        out += [front[i] for i in dict.fromkeys(pos.tolist())]
    for r in sorted(records, key=lambda r: -r["acc"]):
        if len(out) >= k:
            break
        if all(r["key"] != o["key"] for o in out):
            out.append(r)
    return out[:k]


def plot_pareto(records: list[dict], path: str | Path, title: str = "",
                winner: dict | None = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label, scale in ((axes[0], "macs", "MACs (M)", 1e6), (axes[1], "peak_sram", "peak SRAM (KB)", 1024)):
        ax.scatter([r[key] / scale for r in records], [100 * r["acc"] for r in records], s=10, alpha=0.4,
                   label="evaluated")
        f = pareto_front(records, key)
        ax.plot([r[key] / scale for r in f], [100 * r["acc"] for r in f], "r.-", label="Pareto front")
        if winner is not None:
            ax.scatter([winner[key] / scale], [100 * winner["acc"]], marker="*", s=160, c="k", label="winner")
        ax.set_xlabel(label)
        ax.set_ylabel("held-out accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
