"""The cost model tinynas optimises (and the only one): MACs, parameters, flash and peak SRAM.

Flash counts what the generated C keeps in flash per weighted op: int8 weights, an int32 bias per
output channel and the per-channel requantisation parameters (int32 multiplier + int32 shift).
Peak SRAM is the planner's arena (``planner.plan_memory``): activations with lifetimes, in-place
depthwise, kernel scratch, and the input image.

``batch_costs`` scores many sub-networks of one (W, R) at once. It is the same arithmetic: a
network is a chain of blocks and only a block's input/output cross its boundary, so the network's
live bytes at any step are those of the block running then. Each distinct block is planned once
(``plan_memory`` on ``block_graph``, cached) and the network's figures are sums/maxima over its
blocks. ``tests/test_cost.py`` checks that this equals planning the whole graph.

With ``stream=True`` (fused streaming execution, ``tinyengine.passes.stream``) each block is planned
with streaming on (the block alone: its expanded tensor in rings of rows when that lowers its peak),
and the stem is planned together with the first block (the stem streams into it, the image is
overwritten as it is consumed). Segments spanning several later blocks are not modelled: the figure
is what per-block streaming reaches, which the whole-graph choice of ``gen --stream`` usually beats.
MACs, parameters and flash do not change.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from search_spaces.arch import ArchConfig, BlockSpec, conv_out, mid_channels_for
from search_spaces.space import Genes, SearchSpace
from tinyengine.ir.graph import Graph, block_graph, build_graph
from tinyengine.ir.opcost import op_flash, op_macs, op_params
from tinyengine.pipeline import plan_memory
from tinyengine.planner import MemoryPlan, PlanOptions


@dataclass(frozen=True)
class Costs:
    macs: int
    params: int          # float-model parameters, BN counted (as published)
    flash_bytes: int
    peak_sram: int

    def fits(self, sram: int, flash: int) -> bool:
        return self.peak_sram <= sram and self.flash_bytes <= flash


def graph_costs(graph: Graph, plan: MemoryPlan | None = None) -> Costs:
    plan = plan or plan_memory(graph)
    return Costs(sum(op_macs(graph, o) for o in graph.ops), sum(op_params(o) for o in graph.ops),
                 sum(op_flash(o) for o in graph.ops), plan.peak_sram)


def network_costs(arch: ArchConfig, options: PlanOptions | None = None) -> Costs:
    g = build_graph(arch)
    return graph_costs(g, plan_memory(g, options))


# ---------------------------------------------------------------------------- cached per block
@lru_cache(maxsize=200_000)
def _block_costs(blk: BlockSpec, size: int, stream: bool = False) -> tuple[int, int, int, int]:
    g = block_graph(blk, size)
    c = graph_costs(g, plan_memory(g, PlanOptions(stream=True)) if stream else None)
    return c.macs, c.params, c.flash_bytes, c.peak_sram


@lru_cache(maxsize=4096)
def _stem_first_peak(resolution: int, in_channels: int, stem_channels: int, first: BlockSpec,
                     stem_kernel: int = 3, stem_stride: int = 2) -> int:
    """Streamed peak of the stem (3x3/s2 unless told) followed by the first block (what ``stream=True``
    counts)."""
    from tinyengine.ir.graph import _block, _Builder
    b = _Builder("stem+first")
    x = b.tensor("input", (resolution, resolution, in_channels))
    b.g.inputs.append(x)
    x = b.conv("stem", x, stem_channels, stem_kernel, stem_stride, role="stem", block=None)
    b.g.outputs.append(_block(b, x, first))
    return plan_memory(b.g, PlanOptions(stream=True)).peak_sram


@lru_cache(maxsize=4096)
def _stem_head_costs(arch_key: tuple) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """(stem, head) costs; the head is feature-mix + pool + classifier on the last feature map."""
    res, cin, stem_c, stem_k, stem_s, last_c, last_hw, fm, ncls = arch_key
    from tinyengine.ir.graph import head_graph, stem_graph
    stem = graph_costs(stem_graph(res, cin, stem_c, stem_k, stem_s))
    head = graph_costs(head_graph(last_hw, last_c, fm, ncls))
    return ((stem.macs, stem.params, stem.flash_bytes, stem.peak_sram),
            (head.macs, head.params, head.flash_bytes, head.peak_sram))


def stem_head_key(arch: ArchConfig) -> tuple:
    """What the stem and head costs depend on (the per-part caches' key)."""
    sizes = arch.spatial_sizes()
    return (arch.resolution, arch.in_channels, arch.stem_channels, arch.stem_kernel, arch.stem_stride,
            list(arch.blocks())[-1].out_channels, sizes[-1], arch.feature_mix_channels, arch.num_classes)


def fast_costs(arch: ArchConfig, stream: bool = False) -> Costs:
    """network_costs through the per-block cache (what batch_costs uses), for one network; ``stream``:
    the same streamed peak as ``batch_costs(..., stream=True)`` (per block, stem with the first block)."""
    sizes = arch.spatial_sizes()
    blocks = list(arch.blocks())
    parts = [_block_costs(b, sizes[b.index], stream) for b in blocks]
    stem, head = _stem_head_costs(stem_head_key(arch))
    parts += [stem, head]
    peak = max(p[3] for p in parts)
    if stream:
        pre = _stem_first_peak(arch.resolution, arch.in_channels, arch.stem_channels, blocks[0],
                               arch.stem_kernel, arch.stem_stride)
        peak = max([p[3] for p in parts[1:-2]] + [pre, head[3]])
    return Costs(sum(p[0] for p in parts), sum(p[1] for p in parts), sum(p[2] for p in parts), peak)


@dataclass
class BatchCosts:
    macs: np.ndarray
    params: np.ndarray
    flash_bytes: np.ndarray
    peak_sram: np.ndarray


def batch_costs(space: SearchSpace, width_mult: float, resolution: int, genes: Genes,
                stream: bool = False) -> BatchCosts:
    """Costs of many sub-networks of one (W, R), vectorised over the batch of genes (``stream``: peak
    SRAM with fused streaming execution, see the module doc)."""
    w = space.widths(width_mult)
    n_s, n_d = space.n_stages, space.max_depth
    nk, ne = len(space.kernel_choices), len(space.expand_choices)
    # table[s, first?, k, e] -> (macs, params, flash, peak) for the block in that slot
    table = np.zeros((n_s, 2, nk, ne, 4), dtype=np.int64)
    h = conv_out(resolution, 3, 2)
    first = BlockSpec(0, -1, w[0], w[0], w[1], 3, 1, False, False)
    fixed = np.array(_block_costs(first, h, stream), dtype=np.int64)
    h = conv_out(h, 3, 1)
    sizes = []
    cin = w[1]
    for s in range(n_s):
        cout, stride = w[s + 2], space.strides[s]
        sizes.append(h)
        for ki, k in enumerate(space.kernel_choices):
            h_out = conv_out(h, k, stride)
            for ei, e in enumerate(space.expand_choices):
                b0 = BlockSpec(1, s, cin, mid_channels_for(cin, e), cout, k, stride, True, False)
                table[s, 0, ki, ei] = _block_costs(b0, h, stream)
                b1 = BlockSpec(2, s, cout, mid_channels_for(cout, e), cout, k, 1, True, True)
                table[s, 1, ki, ei] = _block_costs(b1, h_out, stream)
        # conv_out(h, k, s) with padding k//2 does not depend on k for odd k
        h, cin = conv_out(h, 3, stride), cout
    stem, head = _stem_head_costs((resolution, space.in_channels, w[0], 3, 2, w[-1], h,
                                   space.feature_mix_channels, space.num_classes))

    slot_first = (np.arange(n_d) > 0).astype(int)               # slot j: 0 = stage's first block
    active = np.arange(n_d)[None, None, :] < genes.depth[:, :, None]   # (n, S, D)
    vals = table[np.arange(n_s)[None, :, None], slot_first[None, None, :],
                 genes.kernel_idx, genes.expand_idx]           # (n, S, D, 4)
    vals = np.where(active[..., None], vals, 0)
    base = fixed + np.array(stem) + np.array(head)
    macs = vals[..., 0].sum((1, 2)) + base[0]
    params = vals[..., 1].sum((1, 2)) + base[1]
    flash = vals[..., 2].sum((1, 2)) + base[2]
    pre = (_stem_first_peak(resolution, space.in_channels, w[0], first) if stream
           else max(fixed[3], stem[3]))
    peak = np.maximum(vals[..., 3].max((1, 2)), max(pre, head[3]))
    return BatchCosts(macs, params, flash, peak)
