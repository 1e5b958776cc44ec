"""The MobileNetV2/ProxylessNAS-like search space, scaled by a width multiplier W and a resolution R.

A sub-network is encoded as genes: for every stage ``s`` and block slot ``j`` a kernel index and an
expand index, plus a depth per stage. Genes are plain integer arrays so that stage 1 can sample and
score tens of thousands of sub-networks at once; ``SearchSpace.build`` turns genes into an ArchConfig.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from search_spaces.arch import ArchConfig, ArchError, BlockConfig, StageConfig, make_divisible


def _frange(lo: float, hi: float, step: float) -> tuple[float, ...]:
    n = int(round((hi - lo) / step))
    return tuple(round(lo + i * step, 4) for i in range(n + 1))


@dataclass(frozen=True)
class Genes:
    """Choices of one sub-network: indices into the space's kernel/expand choices, and depths."""

    kernel_idx: np.ndarray  # (n_stages, max_depth) int
    expand_idx: np.ndarray  # (n_stages, max_depth) int
    depth: np.ndarray       # (n_stages,) int
    # elastic resolution (``tinynas.evolution.Feasibility.resolutions``): the input side, an int for
    # one network or an (n,) array for a batch; None: the search's one fixed resolution
    resolution: np.ndarray | int | None = None


@dataclass(frozen=True)
class SearchSpace:
    base_widths: tuple[int, ...] = (32, 16, 24, 40, 80, 96, 192, 320)  # stem, first block, 6 stages
    strides: tuple[int, ...] = (2, 2, 2, 1, 2, 1)
    kernel_choices: tuple[int, ...] = (3, 5, 7)
    expand_choices: tuple[int, ...] = (3, 4, 5, 6)
    depth_choices: tuple[int, ...] = (2, 3, 4)
    fixed_depths: dict[int, int] = field(default_factory=lambda: {5: 1})  # last stage: one block
    width_choices: tuple[float, ...] = _frange(0.2, 1.0, 0.1)
    resolution_choices: tuple[int, ...] = tuple(range(48, 225, 16))
    divisor: int = 8
    num_classes: int = 1000
    in_channels: int = 3
    feature_mix_channels: int | None = None
    # per-stage width factors on top of W (one per stage; None: uniform), e.g. narrow early stages
    stage_width_mults: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.base_widths) != len(self.strides) + 2:
            raise ArchError(f"search space: base_widths needs {len(self.strides) + 2} entries "
                            f"(stem, first block, one per stage), got {len(self.base_widths)}")
        for name in ("kernel_choices", "expand_choices", "depth_choices", "width_choices",
                     "resolution_choices"):
            if not getattr(self, name):
                raise ArchError(f"search space: {name} must not be empty")
        if any(k % 2 == 0 for k in self.kernel_choices):
            raise ArchError(f"search space: kernel_choices must be odd, got {self.kernel_choices}")
        if any(w <= 0 for w in self.width_choices) or any(r < 8 for r in self.resolution_choices):
            raise ArchError("search space: width multipliers must be > 0 and resolutions >= 8")
        if self.stage_width_mults is not None and (len(self.stage_width_mults) != len(self.strides)
                                                   or any(f <= 0 for f in self.stage_width_mults)):
            raise ArchError(f"search space: stage_width_mults needs {len(self.strides)} factors > 0, "
                            f"got {self.stage_width_mults}")

    @property
    def n_stages(self) -> int:
        return len(self.strides)

    @property
    def max_depth(self) -> int:
        return max(max(self.depth_choices), *self.fixed_depths.values()) if self.fixed_depths \
            else max(self.depth_choices)

    def widths(self, width_mult: float) -> tuple[int, ...]:
        """Channel counts (stem, first block, stage 1..n) at width multiplier W."""
        f = (1.0, 1.0) + tuple(self.stage_width_mults or (1.0,) * len(self.strides))
        return tuple(make_divisible(c * width_mult * fi, self.divisor) for c, fi in zip(self.base_widths, f))

    def stage_depth_choices(self, s: int) -> tuple[int, ...]:
        return (self.fixed_depths[s],) if s in self.fixed_depths else self.depth_choices

    # ------------------------------------------------------------------ genes
    def sample_genes(self, rng: np.random.Generator, n: int) -> Genes:
        """n sub-networks drawn uniformly: every kernel/expand/depth choice independently."""
        shape = (n, self.n_stages, self.max_depth)
        k = rng.integers(0, len(self.kernel_choices), size=shape)
        e = rng.integers(0, len(self.expand_choices), size=shape)
        d = np.stack([rng.choice(self.stage_depth_choices(s), size=n) for s in range(self.n_stages)], 1)
        return Genes(k, e, d)

    def build(self, width_mult: float, resolution: int, kernel_idx, expand_idx, depth,
              name: str | None = None) -> ArchConfig:
        """ArchConfig for one sub-network (genes of a single network, not a batch)."""
        w = self.widths(width_mult)
        kernel_idx, expand_idx = np.asarray(kernel_idx), np.asarray(expand_idx)
        stages = []
        for s in range(self.n_stages):
            d = int(depth[s])
            if d not in self.stage_depth_choices(s):
                raise ArchError(f"stage {s}: depth {d} not in {self.stage_depth_choices(s)}")
            blocks = tuple(BlockConfig(self.kernel_choices[int(kernel_idx[s, j])],
                                       self.expand_choices[int(expand_idx[s, j])]) for j in range(d))
            stages.append(StageConfig(w[s + 2], self.strides[s], blocks))
        return ArchConfig(resolution=int(resolution), stem_channels=w[0], first_channels=w[1],
                          stages=tuple(stages), num_classes=self.num_classes,
                          in_channels=self.in_channels, feature_mix_channels=self.feature_mix_channels,
                          name=name, width_mult=float(width_mult))

    def sample(self, rng: np.random.Generator, width_mult: float, resolution: int) -> ArchConfig:
        g = self.sample_genes(rng, 1)
        return self.build(width_mult, resolution, g.kernel_idx[0], g.expand_idx[0], g.depth[0])

    def largest(self, width_mult: float, resolution: int) -> ArchConfig:
        k = np.full((self.n_stages, self.max_depth), len(self.kernel_choices) - 1)
        e = np.full((self.n_stages, self.max_depth), len(self.expand_choices) - 1)
        d = [max(self.stage_depth_choices(s)) for s in range(self.n_stages)]
        return self.build(width_mult, resolution, k, e, d, name="largest")

    def smallest(self, width_mult: float, resolution: int) -> ArchConfig:
        z = np.zeros((self.n_stages, self.max_depth), dtype=int)
        d = [min(self.stage_depth_choices(s)) for s in range(self.n_stages)]
        return self.build(width_mult, resolution, z, z, d, name="smallest")

    def contains(self, arch: ArchConfig) -> bool:
        """True when ``arch`` is a sub-network of this space at some listed W (ignoring R)."""
        if len(arch.stages) != self.n_stages:
            return False
        for wm in self.width_choices:
            w = self.widths(wm)
            if (arch.stem_channels, arch.first_channels) != w[:2]:
                continue
            ok = all(st.out_channels == w[s + 2] and st.stride == self.strides[s]
                     and len(st.blocks) in self.stage_depth_choices(s)
                     and all(b.kernel_size in self.kernel_choices and b.expand_ratio in self.expand_choices
                             and b.mid_channels is None for b in st.blocks)
                     for s, st in enumerate(arch.stages))
            if ok:
                return True
        return False

    # ------------------------------------------------------------------ evolution operators
    def mutate(self, rng: np.random.Generator, genes: Genes, prob: float = 0.1) -> Genes:
        """Resample each choice with probability ``prob`` (genes of a single network)."""
        k, e, d = genes.kernel_idx.copy(), genes.expand_idx.copy(), genes.depth.copy()
        mk = rng.random(k.shape) < prob
        k[mk] = rng.integers(0, len(self.kernel_choices), size=mk.sum())
        me = rng.random(e.shape) < prob
        e[me] = rng.integers(0, len(self.expand_choices), size=me.sum())
        for s in range(self.n_stages):
            if rng.random() < prob:
                d[s] = rng.choice(self.stage_depth_choices(s))
        return Genes(k, e, d, genes.resolution)

    def crossover(self, rng: np.random.Generator, a: Genes, b: Genes) -> Genes:
        """Uniform crossover: each choice comes from either parent."""
        mk = rng.random(a.kernel_idx.shape) < 0.5
        me = rng.random(a.expand_idx.shape) < 0.5
        md = rng.random(a.depth.shape) < 0.5
        return Genes(np.where(mk, a.kernel_idx, b.kernel_idx), np.where(me, a.expand_idx, b.expand_idx),
                     np.where(md, a.depth, b.depth),
                     a.resolution if b.resolution is None or rng.random() < 0.5 else b.resolution)
