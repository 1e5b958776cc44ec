"""TinyNAS stage 1: choose the (W, R) search space for a memory budget.

For every width multiplier W and resolution R, sample N sub-networks, keep those that fit the SRAM
and flash limits (peak SRAM and flash from tinyengine's planner/cost model), and compare the
distribution (CDF) of the MACs of the fitting ones. The space whose fitting models have the largest
mean MACs wins: more computation that still fits tends to mean more accuracy (MCUNet, sec. 3.1).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from search_spaces.arch import ArchConfig
from search_spaces.space import SearchSpace
from tinyengine.cost import batch_costs
from tinyml_errors import SearchError
from tinynas.constraints import Constraints


@dataclass
class SpaceStats:
    width_mult: float
    resolution: int
    samples: int
    fit: int
    mean_macs: float          # of the fitting sub-networks (0 when none fits)
    p80_macs: float
    min_peak_sram: int        # smallest footprint seen, fitting or not
    min_flash: int
    fit_macs: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    sram_ok: int = -1         # samples under the SRAM limit / the flash limit (-1: not counted)
    flash_ok: int = -1

    @property
    def fit_ratio(self) -> float:
        return self.fit / self.samples if self.samples else 0.0

    def to_dict(self) -> dict:
        return {"width_mult": self.width_mult, "resolution": self.resolution, "samples": self.samples,
                "fit": self.fit, "fit_ratio": round(self.fit_ratio, 4), "mean_macs": self.mean_macs,
                "p80_macs": self.p80_macs, "min_peak_sram": self.min_peak_sram,
                "min_flash": self.min_flash, "sram_ok": self.sram_ok, "flash_ok": self.flash_ok,
                "binding": binding_limits(self)}


def binding_limits(s: SpaceStats) -> list[str]:
    """The memory limits that reject some of this space's samples ('sram', 'flash'). Empty: neither
    binds here (every sample fits both)."""
    out = []
    if 0 <= s.sram_ok < s.samples:
        out.append("sram")
    if 0 <= s.flash_ok < s.samples:
        out.append("flash")
    return out


@dataclass
class SpaceResult:
    constraints: Constraints
    stats: list[SpaceStats]
    choice: SpaceStats | None
    min_fit_ratio: float
    seed: int

    def to_dict(self) -> dict:
        return {"constraints": self.constraints.to_dict(), "seed": self.seed,
                "min_fit_ratio": self.min_fit_ratio,
                "choice": None if self.choice is None else
                {"width_mult": self.choice.width_mult, "resolution": self.choice.resolution},
                "spaces": [s.to_dict() for s in self.stats]}


def evaluate_space(space: SearchSpace, width_mult: float, resolution: int, cons: Constraints,
                   samples: int, rng: np.random.Generator,
                   latency: Callable[[ArchConfig], float] | None = None, stream: bool = False) -> SpaceStats:
    genes = space.sample_genes(rng, samples)
    c = batch_costs(space, width_mult, resolution, genes, stream=stream or getattr(cons, "stream", False))
    sram_ok, flash_ok = c.peak_sram <= cons.sram_bytes, c.flash_bytes <= cons.flash_bytes
    ok = sram_ok & flash_ok
    if latency is not None and cons.latency_s is not None:  # only the memory-fitting ones need it
        for i in np.flatnonzero(ok):
            arch = space.build(width_mult, resolution, genes.kernel_idx[i], genes.expand_idx[i], genes.depth[i])
            ok[i] = latency(arch) <= cons.latency_s
    fm = c.macs[ok].astype(np.float64)
    return SpaceStats(width_mult, resolution, samples, int(ok.sum()),
                      float(fm.mean()) if fm.size else 0.0,
                      float(np.percentile(fm, 80)) if fm.size else 0.0,
                      int(c.peak_sram.min()), int(c.flash_bytes.min()), np.sort(fm),
                      int(sram_ok.sum()), int(flash_ok.sum()))


def optimize_space(space: SearchSpace, cons: Constraints, *, samples: int = 1000, seed: int = 0,
                   min_fit_ratio: float = 0.0,
                   progress: Callable[[int, int], None] | None = None,
                   latency: Callable[[ArchConfig], float] | None = None, stream: bool = False) -> SpaceResult:
    """Score every (W, R) of ``space``; pick the largest mean MACs among spaces with enough fits.
    With ``latency`` (seconds for an ArchConfig) and ``cons.latency_s``, fitting also means fast enough.
    ``stream``: peak SRAM with fused streaming execution (``tinyengine.cost.batch_costs``)."""
    if samples < 1:
        raise SearchError(f"--samples must be at least 1, got {samples}")
    if not 0.0 <= min_fit_ratio < 1.0:
        raise SearchError(f"--min-fit must be in [0, 1), got {min_fit_ratio}")
    stats = []
    grid = [(wi, w, ri, r) for wi, w in enumerate(space.width_choices)
            for ri, r in enumerate(space.resolution_choices)]
    for i, (wi, w, ri, r) in enumerate(grid):
        rng = np.random.default_rng([seed, wi, ri])  # independent of the visiting order
        stats.append(evaluate_space(space, w, r, cons, samples, rng, latency, stream))
        if progress:
            progress(i + 1, len(grid))
    eligible = [s for s in stats if s.fit > 0 and s.fit_ratio >= min_fit_ratio]
    choice = max(eligible, key=lambda s: (s.mean_macs, s.fit_ratio)) if eligible else None
    return SpaceResult(cons, stats, choice, min_fit_ratio, seed)


def elastic_resolutions(result: SpaceResult, span: int) -> tuple[int, ...]:
    """The resolutions the supernet and the search may use around stage 1's choice (R): R and the
    ``span`` neighbouring resolutions on each side in the stage-1 grid, at the chosen W, where some
    sampled sub-network fits. Stage 1 fixes W and the space; the sub-network search then trades
    resolution against kernel, expand and depth choices under the same limits (Once-for-All's elastic
    resolution). ``span`` 0 or no choice: R alone (or nothing)."""
    c = result.choice
    if c is None:
        return ()
    row = sorted((s for s in result.stats if s.width_mult == c.width_mult), key=lambda s: s.resolution)
    i = next(k for k, s in enumerate(row) if s.resolution == c.resolution)
    return tuple(s.resolution for k, s in enumerate(row)
                 if abs(k - i) <= max(0, span) and (s.fit > 0 or k == i))


def plot_cdf(result: SpaceResult, path: str, top: int = 8) -> None:
    """FLOPs (MACs) CDF of the fitting sub-networks for the best spaces (MCUNet Fig. 3 style)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranked = sorted((s for s in result.stats if s.fit and s.fit_ratio >= result.min_fit_ratio),
                    key=lambda s: -s.mean_macs)[:top]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in ranked:
        y = np.arange(1, s.fit_macs.size + 1) / s.fit_macs.size
        best = s is result.choice
        ax.plot(s.fit_macs / 1e6, y, lw=2.6 if best else 1.2,
                label=f"w{s.width_mult:g}-r{s.resolution} (mean {s.mean_macs / 1e6:.1f}M, "
                      f"fit {100 * s.fit_ratio:.0f}%)" + ("  <- chosen" if best else ""))
    ax.set_xlabel("MACs of fitting sub-networks (M)")
    ax.set_ylabel("CDF")
    ax.set_title(f"Search spaces under {result.constraints.describe()}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
