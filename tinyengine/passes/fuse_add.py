"""Residual-add fusion: a pointwise projection followed by the ADD that sums it with the block's input
becomes one op (``conv2d_add``, the C kernel ``te_conv_pointwise_add_s8``) that feeds each requantised
projection value straight into the ADD's arithmetic and stores only the sum.

A pair fuses when the conv is 1x1, stride 1, unpadded (the pointwise kernel), its output has no other
reader and is not a graph output, the ADD comes right after it, and neither reads a window or writes a
region (patch-based inference); ops inside stream segments are not touched (this pass runs after
streaming and the layout pass). The fused op writes over the residual when the residual dies there (it
reads each element before writing it). The projection's output tensor is dropped, so the plan can only
shrink -- except that the fused kernel's scratch holds a 1 KB table of the ADD's scaling: each fusion is
kept only if the planned arena does not grow over the unfused plan (re-planned, greedy in graph order).

``fuse_residual_adds`` returns the graph and, per fused op, a record (the ops it replaces, the bytes it
saves, whether in place) that ``tinyengine analyze`` and codegen's ``lowering.json`` show.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tinyengine.ir.graph import INPLACE_ATTR, Graph, Op
from tinyml_errors import UsageError

if TYPE_CHECKING:
    from tinyengine.planner import MemoryPlan

FUSED_KIND = "conv2d_add"
MODES = ("on", "off")


def _pointwise(op: Op) -> bool:
    """A 1x1/s1 conv the fused kernel can run: it reads int8 weights, so a projection already given int16
    weights (``attrs["pw_weights"]``, tinyengine/kernels/pw_weights.py) keeps its own kernel."""
    a = op.attrs
    return (op.kind == "conv2d" and tuple(a.get("kernel", ())) == (1, 1) and tuple(a.get("stride", ())) == (1, 1)
            and tuple(a.get("padding", ())) == (0, 0, 0, 0) and a.get("pw_weights", "int8") != "int16")


def _windowed(op: Op) -> bool:
    return bool(op.attrs.get("in_regions")) or "out_region" in op.attrs


def candidates(graph: Graph) -> list[tuple[int, int]]:
    """(projection index, add index) of every pointwise conv -> ADD pair that may fuse."""
    users = graph.consumers()
    out = []
    for j, op in enumerate(graph.ops):
        if op.kind != "add" or j == 0 or len(op.inputs) != 2 or _windowed(op):
            continue
        i = j - 1
        prev = graph.ops[i]
        if not _pointwise(prev) or _windowed(prev) or prev.output not in op.inputs:
            continue
        mid = prev.output
        res = op.inputs[1] if op.inputs[0] == mid else op.inputs[0]
        t = graph.tensors
        if (res == mid or users[mid] != [j] or mid in graph.outputs
                or not (t[mid].shape == t[res].shape == t[op.output].shape)):
            continue
        out.append((i, j))
    return out


def _fuse_one(graph: Graph, i: int, j: int, last: dict[str, int], in_arena: set[str] | None) -> Op:
    proj, add = graph.ops[i], graph.ops[j]
    mid = proj.output
    res = add.inputs[1] if add.inputs[0] == mid else add.inputs[0]
    attrs = {k: v for k, v in proj.attrs.items() if k != INPLACE_ATTR}
    attrs["fused_add"] = {"project": proj.name, "add": add.name, "mid": mid, "residual": res,
                          "act_min": add.attrs.get("act_min", -128), "act_max": add.attrs.get("act_max", 127),
                          "saved_bytes": graph.tensors[mid].nbytes}
    attrs["covers"] = [proj.name, add.name]
    if (in_arena is not None and last.get(res) == j and res in in_arena and res not in graph.outputs
            and res != proj.inputs[0]):
        attrs[INPLACE_ATTR] = res
    return Op(proj.name, FUSED_KIND, (proj.inputs[0], res), add.output, attrs, proj.role, proj.block,
              proj.params)


def fuse(graph: Graph, pairs: list[tuple[int, int]], *, include_input: bool = True, inplace: bool = True) -> Graph:
    """A copy of ``graph`` with each (projection, add) pair of ``pairs`` replaced by one fused op (written
    over the residual where that dies there, unless ``inplace`` is off: ``PlanOptions.inplace_add``)."""
    from tinyengine.planner.lifetimes import last_use
    last = last_use(graph)
    in_arena = set(graph.inputs) if include_input else set()
    in_arena.update(op.output for op in graph.ops)
    by_proj = dict(pairs)
    drop = set(by_proj.values())
    ops = []
    for k, op in enumerate(graph.ops):
        if k in drop:
            continue
        ops.append(_fuse_one(graph, k, by_proj[k], last, in_arena if inplace else None) if k in by_proj else op)
    return Graph(graph.name, graph.tensors, ops, list(graph.inputs), list(graph.outputs))


def fuse_residual_adds(graph: Graph, mode: str, planner: Callable[[Graph], "MemoryPlan"], *,
                       include_input: bool = True, inplace: bool = True) -> tuple[Graph, dict[str, dict]]:
    """Fuse every candidate pair whose fusion keeps the arena at or under the unfused plan's.

    Returns the graph that runs and {fused op name: record}."""
    if mode not in MODES:
        raise UsageError(f"--fuse-add must be one of {', '.join(MODES)}, got {mode!r}")
    pairs = candidates(graph) if mode == "on" else []
    if not pairs:
        return graph, {}
    base = planner(graph).arena_bytes
    g = fuse(graph, pairs, include_input=include_input, inplace=inplace)
    kept = pairs
    if planner(g).arena_bytes > base:  # greedy: keep each fusion that does not grow the arena
        kept = []
        for p in pairs:
            trial = fuse(graph, kept + [p], include_input=include_input, inplace=inplace)
            if planner(trial).arena_bytes <= base:
                kept.append(p)
        g = fuse(graph, kept, include_input=include_input, inplace=inplace)
    arena = planner(g).arena_bytes if kept else base
    records = {}
    for op in g.ops:
        if op.kind == FUSED_KIND:
            f = op.attrs["fused_add"]
            records[op.name] = {"fused": [f["project"], f["add"]], "saved_tensor_bytes": f["saved_bytes"],
                                "inplace_of": op.attrs.get(INPLACE_ATTR), "arena_unfused": base,
                                "arena_fused": arena}
    return g, records

