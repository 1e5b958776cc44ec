"""Stage 1 for small budgets and small inputs: (variant, W, R) instead of (W, R).

The ImageNet MobileNetV2 space (widths from 0.2, stride 2 in the first stage) cannot serve 16-64 KB
budgets or 28-64 px inputs: the narrowest network already needs ~75 KB of flash and the stride
pattern shrinks a 28 px image to 1 x 1. ``search_space_variants`` adds

* width multipliers below 0.2 (0.1, 0.15);
* per-stage width profiles on top of W (``uniform``; ``slim-late``: the last three stages at half
  width, where most of the flash is; ``slim-early``: the first two stages at half width, where most
  of the SRAM is);
* for small inputs (R <= 64), a stride-1 first stage (``s1``), so that a 28-64 px input keeps some
  spatial resolution deep into the network.

Every variant is scored with MCUNet's rule (``space_opt.optimize_space``: largest mean MACs of the
fitting sub-networks); the report says which limit (SRAM, flash) rejects samples of the chosen
space and of the grid, i.e. which limit binds.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from search_spaces.space import SearchSpace
from tinynas.constraints import Constraints
from tinynas.space_opt import SpaceResult, SpaceStats, binding_limits, optimize_space

SMALL_WIDTHS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0)
WIDTH_PROFILES = {
    "uniform": None,
    "slim-late": (1.0, 1.0, 1.0, 0.5, 0.5, 0.5),
    "slim-early": (0.5, 0.5, 1.0, 1.0, 1.0, 1.0),
}
STRIDES = {"s2": (2, 2, 2, 1, 2, 1), "s1": (1, 2, 2, 1, 2, 1)}
SMALL_INPUT = 64  # inputs up to this side also get the stride-1 first stage


@dataclass(frozen=True)
class Variant:
    name: str
    space: SearchSpace


def search_space_variants(base: SearchSpace, *, small_widths: bool = True) -> list[Variant]:
    """The variants of ``base`` that stage 1 compares (base's strides/widths stay the first one)."""
    widths = SMALL_WIDTHS if small_widths else base.width_choices
    strides = {"s2": base.strides}
    if max(base.resolution_choices) <= SMALL_INPUT and len(base.strides) == 6:
        strides["s1"] = STRIDES["s1"]
    out = []
    for sn, st in strides.items():
        for pn, prof in WIDTH_PROFILES.items():
            if prof is not None and len(prof) != len(base.strides):
                continue
            out.append(Variant(f"{sn}-{pn}", replace(base, strides=st, stage_width_mults=prof,
                                                     width_choices=widths)))
    return out


@dataclass
class Stage1Result:
    variant: str
    space: SearchSpace
    result: SpaceResult               # the chosen variant's (W, R) grid
    per_variant: dict[str, SpaceResult]

    @property
    def choice(self) -> SpaceStats | None:
        return self.result.choice

    def binding(self) -> dict:
        """Which limits reject samples: in the chosen space, and summed over every space tried."""
        tot = {"samples": 0, "sram_rejects": 0, "flash_rejects": 0}
        for r in self.per_variant.values():
            for s in r.stats:
                tot["samples"] += s.samples
                tot["sram_rejects"] += s.samples - s.sram_ok
                tot["flash_rejects"] += s.samples - s.flash_ok
        return {"chosen": binding_limits(self.choice) if self.choice else [], **tot}

    def describe_binding(self) -> str:
        b = self.binding()
        c = self.choice
        here = ", ".join(b["chosen"]) or "neither limit"
        return (f"in the chosen space {here} binds ({c.samples - c.sram_ok}/{c.samples} samples over "
                f"SRAM, {c.samples - c.flash_ok}/{c.samples} over flash); over all spaces "
                f"{100 * b['sram_rejects'] / max(1, b['samples']):.0f}% of samples exceed SRAM, "
                f"{100 * b['flash_rejects'] / max(1, b['samples']):.0f}% exceed flash")

    def to_dict(self) -> dict:
        return {"variant": self.variant, "strides": list(self.space.strides),
                "stage_width_mults": None if self.space.stage_width_mults is None
                else list(self.space.stage_width_mults),
                "binding": self.binding(), **self.result.to_dict(),
                "variants": {k: {"choice": v.to_dict()["choice"],
                                 "mean_macs": v.choice.mean_macs if v.choice else 0.0}
                             for k, v in self.per_variant.items()}}


def optimize_variants(base: SearchSpace, cons: Constraints, *, samples: int = 500, seed: int = 0,
                      min_fit_ratio: float = 0.01, small_widths: bool = True,
                      latency: Callable | None = None) -> Stage1Result:
    """MCUNet's stage-1 rule over every variant's (W, R) grid; the variant with the best choice wins."""
    per: dict[str, SpaceResult] = {}
    spaces: dict[str, SearchSpace] = {}
    for v in search_space_variants(base, small_widths=small_widths):
        per[v.name] = optimize_space(v.space, cons, samples=samples, seed=seed, min_fit_ratio=min_fit_ratio,
                                     latency=latency)
        spaces[v.name] = v.space
    ok = [k for k, r in per.items() if r.choice is not None]
    best = max(ok, key=lambda k: (per[k].choice.mean_macs, per[k].choice.fit_ratio)) if ok else next(iter(per))
    return Stage1Result(best, spaces[best], per[best], per)
