"""The hand-scaled baseline as a grid, not one point: uniformly scaled MobileNetV2 that fit.

Every point is the ImageNet MobileNetV2 layout (stride-2 first stage, uniform widths, every
depthwise 3x3) scaled uniformly by width W, input resolution R, one depth for every stage and one
expand ratio for every block. ``baseline_grid`` lists every point tried with its costs and whether
it fits (the report shows them all); ``top_fitting`` picks the ones worth training (most MACs
first, the usual hand-scaling heuristic), the benchmark trains them all with the winner's recipe
and keeps the best.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from search_spaces.arch import ArchConfig
from search_spaces.space import SearchSpace
from tinyengine.cost import fast_costs
from tinynas.constraints import Constraints

MBV2_STRIDES = (2, 2, 2, 1, 2, 1)
GRID_WIDTHS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.75, 1.0)


@dataclass
class GridPoint:
    arch: ArchConfig
    width_mult: float
    resolution: int
    depth: int
    expand: int
    macs: int
    peak_sram: int
    flash_bytes: int
    fits: bool
    reason: str          # "fits", or which limit it exceeds

    def to_dict(self) -> dict:
        return {"name": self.arch.name, "width_mult": self.width_mult, "resolution": self.resolution,
                "depth": self.depth, "expand": self.expand, "macs": self.macs, "peak_sram": self.peak_sram,
                "flash_bytes": self.flash_bytes, "fits": self.fits, "reason": self.reason}


def mbv2_space(num_classes: int, in_channels: int, resolutions: tuple[int, ...]) -> SearchSpace:
    return SearchSpace(num_classes=num_classes, in_channels=in_channels, resolution_choices=resolutions,
                       strides=MBV2_STRIDES, width_choices=GRID_WIDTHS)


def baseline_grid(num_classes: int, in_channels: int, resolutions: tuple[int, ...], cons: Constraints,
                  *, widths: tuple[float, ...] = GRID_WIDTHS, depths: tuple[int, ...] = (1, 2, 3, 4),
                  expands: tuple[int, ...] = (3, 4, 6)) -> list[GridPoint]:
    """Every (W, R, depth, expand) uniformly scaled MobileNetV2 (k3), with costs and fit."""
    sp = SearchSpace(num_classes=num_classes, in_channels=in_channels, resolution_choices=resolutions,
                     strides=MBV2_STRIDES, width_choices=widths, expand_choices=tuple(sorted(set(expands))),
                     depth_choices=tuple(sorted(set(depths))), kernel_choices=(3,))
    pts = []
    for w in widths:
        for r in resolutions:
            for d in depths:
                for e in expands:
                    k = np.zeros((sp.n_stages, sp.max_depth), int)
                    ei = np.full((sp.n_stages, sp.max_depth), sp.expand_choices.index(e))
                    depth = [sp.fixed_depths.get(s, d) for s in range(sp.n_stages)]
                    a = sp.build(w, r, k, ei, depth, name=f"mbv2-w{w:g}-r{r}-d{d}-e{e}")
                    c = fast_costs(a, stream=cons.stream)  # the search's SRAM count: a fair grid
                    over = [n for n, v, lim in (("SRAM", c.peak_sram, cons.sram_bytes),
                                                ("flash", c.flash_bytes, cons.flash_bytes)) if v > lim]
                    pts.append(GridPoint(a, w, r, d, e, int(c.macs), int(c.peak_sram), int(c.flash_bytes),
                                         not over, "fits" if not over else "exceeds " + " and ".join(over)))
    return pts


def top_fitting(points: list[GridPoint], k: int) -> list[GridPoint]:
    """The ``k`` fitting points with the most MACs, at most one per (W, R) resolution pair so the
    candidates cover different trade-offs (resolution vs width) rather than depth/expand twins."""
    fit = sorted((p for p in points if p.fits), key=lambda p: -p.macs)
    out, seen = [], set()
    for p in fit:
        if (p.width_mult, p.resolution) in seen:
            continue
        seen.add((p.width_mult, p.resolution))
        out.append(p)
        if len(out) == k:
            break
    return out


def grid_summary(points: list[GridPoint]) -> dict:
    """How many points fit and what rejected the others (does SRAM bind the baseline?)."""
    n_sram = sum("SRAM" in p.reason for p in points)
    n_flash = sum("flash" in p.reason for p in points)
    return {"points": len(points), "fit": sum(p.fits for p in points), "over_sram": n_sram,
            "over_flash": n_flash}
