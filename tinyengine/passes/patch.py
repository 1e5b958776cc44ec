"""Patch-based inference (the MCUNetV2 idea): run the high-resolution prefix of the schedule in patches.

The first layers of a mobile CNN hold the largest feature maps and set the peak SRAM. ``patch_graph``
rewrites the prefix ``ops[0..split]`` so that it runs n x n times, once per spatial patch, each patch
computing one tile of the prefix's output tensor ``T`` (the output of ``ops[split]``); the ops after
the prefix are unchanged and read the assembled ``T``.

Regions (half-open ``(y0, y1, x0, x1)`` in full-tensor coordinates):

* ``T`` is cut into an n x n grid of tiles, rows at ``i * H // n`` (columns alike).
* Backwards through the prefix, the region each tensor must cover for one patch is the bounding box
  of what its readers need: a k x k / stride-s window op that outputs rows ``[a, b)`` needs input rows
  ``[a*s - top, (b-1)*s - top + k)`` (the receptive-field halo), clipped to the tensor; an add needs
  the same region from both inputs.
* Padding per patch op is explicit in ``attrs['padding']``: what the clipping cut off at the image
  border (the original zero padding there), 0 on sides inside the image, where neighbouring pixels
  are real data that the patch recomputes (the halo: the extra MACs).
* A tensor read by several ops of a patch (a block input read by the expand conv and by the residual
  add) covers the union; each reader reads its own window through ``attrs['in_regions']``, a strided
  view with no copy. The first op of a patch reads its window of the full input image the same way.
* The last op of each patch writes its tile straight into ``T`` (``attrs['out_region']``); no concat.

Memory (``planner.plan_memory``): per-patch tensors are small, live within their patch and are reused
patch after patch; in-place depthwise and in-place add still apply inside a patch. The input image
stays whole in the arena until the last patch has read it, ``T`` lives from its first tile on.
Windowed reads cost nothing; nothing is copied.

Default split (``default_split``): every cut point of the schedule (an op after which only its own
output, an (H, W, C) feature map, is read by the rest) is tried with the given n, from the input on,
as long as the recomputation stays within ``max_extra_macs`` (15% of the network's MACs); the one
whose planned peak SRAM is lowest wins (ties: the one with less recomputation). A fixed rule
(e.g. MCUNetV2's "up to the first stride-16 feature map") does not work for MCUNet's own models:
their early 5x5/7x7 depthwise kernels give a stride-16 map a receptive field of most of the image,
so every patch would recompute nearly the whole prefix.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

from tinyengine.ir.graph import Graph, Op, Tensor, region_shape
from tinyml_errors import PlanError

Region = tuple[int, int, int, int]

PATCHABLE = ("conv2d", "depthwise_conv2d", "avg_pool2d", "add")
MAX_EXTRA_MACS = 0.15  # default budget of the automatic split: recomputation <= 15% of the MACs


@dataclass
class PatchedGraph:
    graph: Graph                      # the rewritten, validated graph (plan/run this one)
    original: Graph
    n: int                            # n x n patches
    split: int                        # index in ``original`` of the prefix's last op
    output: str                       # the tensor the patches assemble (written tile by tile)
    tiles: list[Region]               # region of ``output`` each patch writes, in execution order
    regions: list[dict[str, Region]]  # per patch: region of each prefix tensor it computes
    origin: list[int] = field(default_factory=list)  # per op of ``graph``: its op index in ``original``
    macs: int = 0
    original_macs: int = 0

    @property
    def split_name(self) -> str:
        return self.original.ops[self.split].name

    @property
    def extra_macs(self) -> int:
        """Recomputation in the halos: patched MACs - original MACs."""
        return self.macs - self.original_macs

    @property
    def extra_macs_ratio(self) -> float:
        return self.extra_macs / self.original_macs if self.original_macs else 0.0


def tile_bounds(size: int, n: int) -> list[int]:
    """n + 1 cut positions splitting ``size`` into n nearly equal parts."""
    return [i * size // n for i in range(n + 1)]


def cut_points(graph: Graph) -> list[int]:
    """Op indices s where the prefix ops[0..s] can be patched: spatial ops only, and only the output
    of ops[s], an (H, W, C) tensor, is read after s."""
    users = graph.consumers()
    out: list[int] = []
    produced: set[str] = set()
    for s, op in enumerate(graph.ops):
        if (op.kind not in PATCHABLE or "out_region" in op.attrs or op.attrs.get("in_regions")
                or any(len(graph.tensors[x].shape) != 3 for x in op.inputs)):
            break
        produced.add(op.output)
        leaks = [x for x in produced if x != op.output
                 and (x in graph.outputs or any(u > s for u in users[x]))]
        if not leaks and len(graph.tensors[op.output].shape) == 3:
            out.append(s)
    return out


def default_split(graph: Graph, n: int, options=None, max_extra_macs: float = MAX_EXTRA_MACS) -> int:
    """The cut point with the lowest planned peak for n x n patches within the MAC budget (module doc)."""
    from tinyengine.passes.inplace import annotate_inplace
    from tinyengine.planner import PlanOptions, plan_graph

    opts = replace(options or PlanOptions(), patches=1, patch_split=None)
    best: tuple[int, int, int] | None = None  # (peak, extra MACs, split)
    for s in cut_points(graph):
        h, w = graph.tensors[graph.ops[s].output].shape[:2]
        if n > min(h, w):
            break
        pg = _patch(graph, n, s)
        if best is not None and pg.extra_macs_ratio > max_extra_macs:
            continue
        annotated = annotate_inplace(pg.graph, depthwise=opts.inplace_depthwise, add=opts.inplace_add,
                                     include_input=opts.include_input)
        cand = (plan_graph(annotated, opts).peak_sram, pg.extra_macs, s)
        if best is None or cand < best:
            best = cand
    if best is None:
        raise PlanError(f"graph {graph.name}: no op where the schedule can be split into {n}x{n} patches")
    return best[2]


def resolve_split(graph: Graph, split_at: str | int | None, n: int = 2, options=None,
                  max_extra_macs: float = MAX_EXTRA_MACS) -> int:
    """Index of the prefix's last op: named, indexed (negative from the end) or ``default_split``."""
    if split_at is None:
        return default_split(graph, n, options, max_extra_macs)
    if isinstance(split_at, str):
        idx = [i for i, op in enumerate(graph.ops) if op.name == split_at]
        if not idx:
            raise PlanError(f"graph {graph.name}: no op named '{split_at}' to split the patches at")
        s = idx[0]
    else:
        s = int(split_at) + (len(graph.ops) if int(split_at) < 0 else 0)
        if not 0 <= s < len(graph.ops):
            raise PlanError(f"graph {graph.name}: split index {split_at} out of range 0..{len(graph.ops) - 1}")
    if s not in cut_points(graph):
        op = graph.ops[s]
        raise PlanError(f"graph {graph.name}: cannot patch up to op {s} '{op.name}': the prefix must hold "
                         f"only {'/'.join(PATCHABLE)} ops and only its last output may be read after it "
                         f"(valid split ops: {', '.join(graph.ops[c].name for c in cut_points(graph))})")
    return s


def input_window(op: Op, out_region: Region, in_shape: tuple[int, ...]) -> tuple[Region, tuple[int, int, int, int]]:
    """The input region ``op`` reads to compute ``out_region`` (clipped to the input) and the padding
    (top, bottom, left, right) it then needs: the original zero padding where it meets the border."""
    if op.kind == "add":
        return out_region, (0, 0, 0, 0)
    kh, kw = op.attrs["kernel"]
    sh, sw = op.attrs["stride"]
    pt, _, pl, _ = op.attrs["padding"]
    y0, y1, x0, x1 = out_region

    def axis(a: int, b: int, k: int, s: int, before: int, size: int) -> tuple[int, int, int, int]:
        lo, hi = a * s - before, (b - 1) * s - before + k
        return max(lo, 0), min(hi, size), max(-lo, 0), max(hi - size, 0)

    r0, r1, top, bottom = axis(y0, y1, kh, sh, pt, in_shape[0])
    c0, c1, left, right = axis(x0, x1, kw, sw, pl, in_shape[1])
    return (r0, r1, c0, c1), (top, bottom, left, right)


def _union(a: Region | None, b: Region) -> Region:
    if a is None:
        return b
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def _relative(win: Region, base: Region) -> Region:
    return (win[0] - base[0], win[1] - base[0], win[2] - base[2], win[3] - base[2])


def patch_regions(graph: Graph, split: int, tile: Region) -> dict[str, Region]:
    """Region of every tensor of the prefix ops[0..split] that one patch computes (or reads) to
    produce ``tile`` of the prefix output: backwards through the prefix, bounding box over readers."""
    t = graph.tensors
    need: dict[str, Region] = {graph.ops[split].output: tile}
    for op in reversed(graph.ops[:split + 1]):
        r = need.get(op.output)
        if r is None:
            continue  # not on the way to this tile
        for x in op.inputs:
            win, _ = input_window(op, r, t[x].shape)
            need[x] = _union(need.get(x), win)
    return need


def patch_graph(graph: Graph, n: int, split_at: str | int | None = None, *, options=None,
                max_extra_macs: float = MAX_EXTRA_MACS) -> PatchedGraph:
    """Rewrite ops[0..split_at] of ``graph`` to run as n x n patches (see the module doc).

    ``split_at``: the prefix's last op, by name or index; None picks it with ``default_split``, which
    plans the candidates with ``options`` (a ``PlanOptions``) within the ``max_extra_macs`` budget.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise PlanError(f"patches: n must be a positive integer, got {n!r}")
    split = resolve_split(graph, split_at, n, options, max_extra_macs)
    return _patch(graph, n, split)


def _patch(graph: Graph, n: int, split: int) -> PatchedGraph:
    """The rewrite itself, for a split already checked by ``resolve_split``."""
    from tinyengine.ir.opcost import op_macs

    t = graph.tensors
    out_name = graph.ops[split].output
    H, W = t[out_name].shape[:2]
    if n > min(H, W):
        raise PlanError(f"graph {graph.name}: {n}x{n} patches do not fit the {H}x{W} output of "
                         f"'{graph.ops[split].name}' (n must be <= {min(H, W)})")
    prefix = graph.ops[:split + 1]
    inner = {op.output for op in prefix} - {out_name}   # per-patch tensors

    tensors = {k: copy.copy(v) for k, v in t.items() if k not in inner}
    ops: list[Op] = []
    origin: list[int] = []
    tiles: list[Region] = []
    regions: list[dict[str, Region]] = []
    ys, xs = tile_bounds(H, n), tile_bounds(W, n)
    for i in range(n):
        for j in range(n):
            tile = (ys[i], ys[i + 1], xs[j], xs[j + 1])
            need = patch_regions(graph, split, tile)
            tiles.append(tile)
            regions.append(need)
            tag = f"@p{i}_{j}"
            for k, op in enumerate(prefix):
                r = need.get(op.output)
                if r is None:
                    continue
                attrs = dict(op.attrs)
                ins, in_regs = [], []
                for x in op.inputs:
                    win, pad = input_window(op, r, t[x].shape)
                    if x in inner:
                        ins.append(x + tag)
                        rel = _relative(win, need[x])
                        full = (0, need[x][1] - need[x][0], 0, need[x][3] - need[x][2])
                        in_regs.append(None if rel == full else rel)
                    else:  # the input image (or another tensor from before the graph): read in place
                        ins.append(x)
                        full = (0, t[x].shape[0], 0, t[x].shape[1])
                        in_regs.append(None if win == full else win)
                    if op.kind != "add":
                        attrs["padding"] = pad
                if any(w is not None for w in in_regs):
                    attrs["in_regions"] = tuple(in_regs)
                if op.output == out_name:
                    out = out_name
                    attrs["out_region"] = r
                else:
                    src = t[op.output]
                    out = op.output + tag
                    tensors[out] = Tensor(out, region_shape(r, src.shape), src.itemsize, src.scale,
                                          src.zero_point)
                attrs["patch"] = (i, j)
                attrs["patch_of"] = op.name
                ops.append(Op(op.name + tag, op.kind, tuple(ins), out, attrs, op.role, op.block, op.params))
                origin.append(k)
    for k, op in enumerate(graph.ops[split + 1:], start=split + 1):
        ops.append(copy.copy(op))
        ops[-1].attrs = dict(op.attrs)
        origin.append(k)
    g = Graph(graph.name, tensors, ops, list(graph.inputs), list(graph.outputs))
    g.validate()
    return PatchedGraph(g, graph, n, split, out_name, tiles, regions, origin,
                        sum(op_macs(g, op) for op in g.ops), sum(op_macs(graph, op) for op in graph.ops))
