"""Row-streaming schedules (fused streaming execution, ``tinyengine.passes.stream``): the geometry of a
segment of consecutive ops that runs row by row, so that its intermediate tensors never exist whole.

A segment's members are conv2d / depthwise_conv2d / add ops in execution order; the last one writes the
segment's output tensor (whole, row by row); every other member's output is an *intermediate* read only
inside the segment, kept in a ring of rows (row ``r`` in slot ``r % rows``). Tensors from before the
segment (the *external* inputs) are read whole. The schedule is demand driven: to produce output row
``y`` of a member, the rows of its inputs that its window needs (``row_window``) are produced first,
recursively, each tensor's rows in increasing order. Every row of every tensor is computed once: no
recomputation, and the arithmetic of each element is unchanged (bit-exact by construction).

``build_schedule`` simulates that order once (a static schedule: which member computes its next row at
each step) and sizes each ring to the most rows alive at once, measured at every write. It also decides
whether the output may be written over an external input (in place, from the same start address): only
if every output row lands on bytes of that input that no member reads any more.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tinyengine.ir.graph import Graph, Op
from tinyml_errors import GraphError

STREAMABLE = ("conv2d", "depthwise_conv2d", "add")


@dataclass
class Schedule:
    members: list[Op]
    external: list[str]              # tensors from before the segment, read whole
    output: str                      # written whole, row by row
    rings: dict[str, int]            # intermediate tensor -> rows in its ring
    events: list[int]                # member index computing its next output row, in order
    inplace_candidates: list[str] = field(default_factory=list)  # external inputs the output may overwrite
    inplace_of: str | None = None    # the one it does overwrite (same start address; set by the pass)

    def ring_bytes(self, graph: Graph, name: str) -> int:
        h, w, c = graph.tensors[name].shape
        return self.rings[name] * w * c

    @property
    def row_calls(self) -> int:
        return len(self.events)


def row_window(op: Op, y: int, in_h: int) -> tuple[int, int, int, int]:
    """Rows ``[lo, hi)`` of ``op``'s input (clipped to ``in_h``) that its output row ``y`` reads, with
    the zero padding rows (top, bottom) the clipping cut off."""
    if op.kind == "add":
        return y, y + 1, 0, 0
    kh = op.attrs["kernel"][0]
    sh = op.attrs["stride"][0]
    a = y * sh - op.attrs["padding"][0]
    b = a + kh
    return max(a, 0), min(b, in_h), max(-a, 0), max(b - in_h, 0)


def check_members(graph: Graph, members: list[Op]) -> None:
    where = f"stream segment {'+'.join(m.name for m in members) or '(empty)'}"
    if not members:
        raise GraphError(f"{where}: no ops")
    inner = {m.output for m in members[:-1]}
    for k, m in enumerate(members):
        if m.kind not in STREAMABLE:
            raise GraphError(f"{where}: op '{m.name}' ({m.kind}) cannot stream (only {', '.join(STREAMABLE)})")
        if m.attrs.get("in_regions") or "out_region" in m.attrs:
            raise GraphError(f"{where}: op '{m.name}' is a patch op (regions) and cannot stream")
        for x in (*m.inputs, m.output):
            if len(graph.tensors[x].shape) != 3:
                raise GraphError(f"{where}: tensor '{x}' of op '{m.name}' is not an (H, W, C) map")
        for x in m.inputs:
            if x in inner and x not in {p.output for p in members[:k]}:
                raise GraphError(f"{where}: op '{m.name}' reads '{x}' before the segment produces it")


def build_schedule(graph: Graph, members: list[Op]) -> Schedule:
    """The static row schedule of ``members`` (see the module doc)."""
    check_members(graph, members)
    t = graph.tensors
    producer = {m.output: i for i, m in enumerate(members)}
    out = members[-1].output
    inner = [m.output for m in members[:-1]]
    external = list(dict.fromkeys(x for m in members for x in m.inputs if x not in producer))
    readers: dict[str, list[int]] = {}
    for i, m in enumerate(members):
        for x in dict.fromkeys(m.inputs):
            readers.setdefault(x, []).append(i)
    height = [t[m.output].shape[0] for m in members]
    done = [0] * len(members)
    rings = {x: 1 for x in inner}
    events: list[int] = []

    def next_lo(x: str, skip: int | None = None) -> float:
        """Lowest row of ``x`` some member still reads (its next output row's window)."""
        lo = float("inf")
        for i in readers.get(x, []):
            y = done[i] + (1 if i == skip else 0)
            if y < height[i]:
                lo = min(lo, row_window(members[i], y, t[x].shape[0])[0])
        return lo

    inplace_ok = {x: True for x in external
                  if t[x].shape[1:] and len(t[x].shape) == 3}

    def ensure(x: str, rows: int) -> None:
        i = producer.get(x)
        if i is None:
            return
        m = members[i]
        while done[i] < rows:
            y = done[i]
            for xi in m.inputs:
                lo, hi, _, _ = row_window(m, y, t[xi].shape[0])
                ensure(xi, hi)
            if x in rings:
                rings[x] = max(rings[x], y - min(next_lo(x), y) + 1)
            else:  # the output row y: may it land on bytes of an external input nobody reads any more?
                ob = t[out].shape[1] * t[out].shape[2]
                for src in list(inplace_ok):
                    sb = t[src].shape[1] * t[src].shape[2]
                    same_row = (m.kind == "add" and src in m.inputs and sb == ob)
                    lo = next_lo(src, skip=i if same_row else None)
                    if (y + 1) * ob > lo * sb:
                        inplace_ok[src] = False
            events.append(i)
            done[i] += 1

    ensure(out, height[-1])
    for i, m in enumerate(members):
        if done[i] != height[i]:
            raise GraphError(f"stream segment: op '{m.name}' computes {done[i]} of its {height[i]} rows; "
                             "its output is not on the way to the segment's output")
    cands = [x for x, ok in inplace_ok.items() if ok]
    return Schedule(list(members), external, out, rings, events, cands)
