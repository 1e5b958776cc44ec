"""Fused streaming execution, as a pass: segments of consecutive ops run row by row, so that their
intermediate tensors never exist whole (``tinyengine.ir.stream`` has the row geometry and schedule).

A segment is a run of consecutive *units* (the stem conv; one inverted-residual block: expand,
depthwise, project, residual add) made only of conv2d / depthwise_conv2d / add ops, whose intermediate
tensors are read only inside it. It becomes one op of kind ``stream_segment``: its inputs are the
tensors it reads from before it (whole), its output is its last op's output (written whole, row by row),
and ``attrs['stream']`` holds the :class:`~tinyengine.ir.stream.Schedule` (members, rings, row order).
Its working memory is planned as the op's scratch (``attrs['stream_layout']``): one ring of rows per
intermediate tensor (rows x W x C, just enough rows for its consumers' windows) and the work area of the
member kernels (pointwise / im2col int16 columns), used by one member at a time. A segment writes its
output over an input it is the last reader of (``inplace_of``) when the schedule shows that every output
row lands on rows of that input that nothing reads any more (a residual block's output over its input;
the prefix's output over the image it consumes).

A general (k > 1 or strided) conv2d may only be a segment's first op (it reads a whole tensor: the C
im2col kernel needs contiguous rows); pointwise convs, depthwise convs and adds may be anywhere.

Choice (``choose_segments``): local search on the planned arena. Each round tries every move (add a candidate span of up to
``max_units`` units, dropping the segments it overlaps; drop a segment; split one in two) and keeps the one that lowers the
arena most, ties broken by the per-step memory profile, then by fewer fused ops; it stops when nothing
helps. Then every chosen segment that the arena does not need is dropped again: memory first, and no
instruction is spent where it buys no memory (streaming costs instructions: ``overhead_estimate``).
Each kept segment is explained: bytes it saves, its rings, its row calls, its estimated overhead.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace

from tinyengine.ir.graph import INPLACE_ATTR, Graph, Op
from tinyengine.ir.opcost import op_macs
from tinyengine.ir.stream import STREAMABLE, Schedule, build_schedule
from tinyengine.planner import PlanOptions, plan_graph
from tinyengine.planner.lifetimes import last_use
from tinyml_errors import PlanError

Span = tuple[int, int]  # op indices [first, last] of the unfused graph
ALIGN = 4
MAX_UNITS = 6
# Instruction overhead of a segment over its ops run layer by layer, a least-squares fit to 15 segments of
# mcunet-vww1/in1/in3 on QEMU Cortex-M4 (DSP path; benchmarks/stream_memory.py's method, within ~30%):
# the depthwise row kernel's extra cost per MAC, the stem's row-range im2col's, and per row step.
OVERHEAD_PER_DW_MAC = 2.12
OVERHEAD_PER_CONV_MAC = 0.44
OVERHEAD_PER_ROW_STEP = 1910


@dataclass
class SegmentInfo:
    name: str
    ops: list[str]
    rings: dict[str, tuple[int, int]]   # tensor -> (rows, bytes)
    work_bytes: int
    scratch_bytes: int
    row_calls: int
    layer_calls: int
    inplace_of: str | None
    saved_bytes: int = 0                # arena without this segment (others kept) - arena with it
    overhead_insn: float = 0.0          # estimated extra instructions (OVERHEAD_* fit, QEMU Cortex-M4)

    def explain(self) -> str:
        rings = ", ".join(f"{t} {r} rows = {b} B" for t, (r, b) in self.rings.items()) or "none"
        inplace = f"; output over '{self.inplace_of}'" if self.inplace_of else ""
        return (f"{self.name}: saves {self.saved_bytes} B of arena; rings {rings}; work {self.work_bytes} B"
                f"{inplace}; {self.row_calls} row calls instead of {self.layer_calls} layer calls, "
                f"about +{self.overhead_insn / 1e6:.2f}M instructions (Cortex-M4 estimate)")


def is_general_conv(op: Op) -> bool:
    a = op.attrs
    return op.kind == "conv2d" and not (tuple(a["kernel"]) == (1, 1) and tuple(a["stride"]) == (1, 1)
                                        and tuple(a["padding"]) == (0, 0, 0, 0))


def member_work_bytes(graph: Graph, op: Op) -> int:
    """Scratch of the member's row kernel (mirrors te_pointwise/te_im2col/te_depthwise_row_scratch_bytes)."""
    if op.kind == "depthwise_conv2d":
        return 8 * graph.tensors[op.output].shape[2]  # int32 constant + accumulator per channel
    if op.kind != "conv2d":
        return 0
    cin = graph.tensors[op.inputs[0]].shape[2]
    kh, kw = op.attrs["kernel"]
    return 4 * cin * (kh * kw if is_general_conv(op) else 1)


def _up(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def layout(graph: Graph, sch: Schedule) -> dict:
    """Offsets inside the segment's scratch: one ring per intermediate, then the kernels' work area."""
    rings, off = {}, 0
    for name in sch.rings:
        rings[name] = off
        off += _up(sch.ring_bytes(graph, name))
    work = max((member_work_bytes(graph, m) for m in sch.members), default=0)
    return {"rings": rings, "work": off, "work_bytes": work, "bytes": off + work}


# --------------------------------------------------------------------------- spans
def units(graph: Graph) -> list[Span]:
    """The graph's ops grouped into units: consecutive ops of one block, or a single op."""
    out: list[Span] = []
    for i, op in enumerate(graph.ops):
        if out and op.block is not None and graph.ops[out[-1][1]].block == op.block:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def span_ok(graph: Graph, span: Span, users: dict[str, list[int]] | None = None) -> bool:
    """The ops of ``span`` can stream as one segment (module doc)."""
    a, b = span
    users = users if users is not None else graph.consumers()
    ops = graph.ops[a:b + 1]
    if len(ops) < 2 or not all(op.kind in STREAMABLE for op in ops):
        return False
    for k, op in enumerate(ops):
        if op.attrs.get("in_regions") or "out_region" in op.attrs or op.attrs.get("patch_of"):
            return False
        if any(len(graph.tensors[x].shape) != 3 for x in (*op.inputs, op.output)):
            return False
        if k > 0 and is_general_conv(op):
            return False
        if op.kind == "depthwise_conv2d" and op.attrs["kernel"][0] > 16:  # te_depthwise_row_s8's limit
            return False
        if k < len(ops) - 1 and (op.output in graph.outputs or any(u > b for u in users[op.output])):
            return False
    return True


def candidate_spans(graph: Graph, max_units: int = MAX_UNITS) -> list[Span]:
    us = units(graph)
    users = graph.consumers()
    out = []
    for i in range(len(us)):
        for j in range(i, min(len(us), i + max_units)):
            span = (us[i][0], us[j][1])
            if span_ok(graph, span, users):
                out.append(span)
    return out


# --------------------------------------------------------------------------- the rewrite
def fuse(graph: Graph, spans: list[Span], *, include_input: bool = True,
         schedules: dict[Span, Schedule] | None = None) -> Graph:
    """A copy of ``graph`` in which each span of ops is one ``stream_segment`` op."""
    spans = sorted(spans)
    for (a, b), (c, _) in zip(spans, spans[1:]):
        if c <= b:
            raise PlanError(f"stream: segments {a}..{b} and {c}.. overlap")
    users = graph.consumers()
    starts = {a: b for a, b in spans}
    ops: list[Op] = []
    i = 0
    while i < len(graph.ops):
        if i not in starts:
            op = copy.copy(graph.ops[i])
            op.attrs = dict(op.attrs)
            ops.append(op)
            i += 1
            continue
        b = starts[i]
        if not span_ok(graph, (i, b), users):
            names = ", ".join(op.name for op in graph.ops[i:b + 1])
            raise PlanError(f"stream: ops {names} cannot stream as one segment (only conv2d/depthwise/add "
                            "ops whose intermediates stay inside; a k>1 conv only first)")
        members = []
        for op in graph.ops[i:b + 1]:
            m = copy.copy(op)
            m.attrs = {k: v for k, v in op.attrs.items() if k != INPLACE_ATTR}
            members.append(m)
        sch = (schedules or {}).get((i, b)) or build_schedule(graph, members)
        sch = replace(sch, members=members)
        name = f"stream:{members[0].name}..{members[-1].name}"
        ops.append(Op(name, "stream_segment", tuple(sch.external), sch.output,
                      {"stream": sch, "stream_layout": layout(graph, sch)}, "stream", members[-1].block))
        i = b + 1
    g = Graph(graph.name, graph.tensors, ops, list(graph.inputs), list(graph.outputs))
    _decide_inplace(g, include_input)
    g.validate()
    return g


def _decide_inplace(g: Graph, include_input: bool) -> None:
    """Each segment writes its output over the largest input it may (schedule) and is the last reader of."""
    users = g.consumers()
    last = last_use(g)
    for i, op in enumerate(g.ops):
        if op.kind != "stream_segment":
            continue
        sch: Schedule = op.attrs["stream"]
        ok = [x for x in sch.inplace_candidates
              if users[x] == [i] and last[x] == i and x not in g.outputs
              and (include_input or x not in g.inputs)]
        src = max(ok, key=lambda x: g.tensors[x].nbytes, default=None)
        op.attrs["stream"] = replace(sch, inplace_of=src)
        if src is not None:
            op.attrs[INPLACE_ATTR] = src


# --------------------------------------------------------------------------- the choice
@dataclass
class StreamResult:
    graph: Graph
    spans: list[Span]
    segments: list[SegmentInfo]
    arena_before: int
    arena_after: int


def _key(plan) -> tuple:
    tot = sorted((a + s for a, s in zip(plan.live_bytes, plan.scratch_bytes)), reverse=True)
    return (plan.arena_bytes, tuple(tot[:8]))


def choose_segments(graph: Graph, options: PlanOptions | None = None, max_units: int = MAX_UNITS) -> StreamResult:
    """Pick the segments that lower the planned arena (module doc); ``graph`` is the annotated graph."""
    opts = options or PlanOptions()
    cache: dict[Span, Schedule] = {}

    def plan(spans):
        for s in spans:
            if s not in cache:
                cache[s] = build_schedule(graph, graph.ops[s[0]:s[1] + 1])
        return plan_graph(fuse(graph, spans, include_input=opts.include_input, schedules=cache), opts)

    base = plan_graph(graph, opts)
    cands = candidate_spans(graph, max_units)
    ok = set(cands)
    bounds = {b for _, b in units(graph)}
    chosen: list[Span] = []
    cur = (*_key(base), 0)
    for _ in range(4 * len(cands) + 1):
        best = None
        for spans in _moves(chosen, cands, ok, bounds):
            k = (*_key(plan(spans)), sum(b - a + 1 for a, b in spans))
            if k < cur and (best is None or k < best[0]):
                best = (k, sorted(spans))
        if best is None:
            break
        cur, chosen = best
    arena = plan(chosen).arena_bytes if chosen else base.arena_bytes
    for s in list(chosen):  # drop what the arena does not need
        rest = [x for x in chosen if x != s]
        if (plan(rest).arena_bytes if rest else base.arena_bytes) <= arena:
            chosen = rest
    g = fuse(graph, chosen, include_input=opts.include_input, schedules=cache) if chosen else graph
    final = plan_graph(g, opts).arena_bytes
    infos = []
    for s in chosen:
        rest = [x for x in chosen if x != s]
        without = plan(rest).arena_bytes if rest else base.arena_bytes
        op = next(o for o in g.ops if o.kind == "stream_segment" and o.attrs["stream"].members[0].name
                  == graph.ops[s[0]].name)
        infos.append(segment_info(g, op, without - final))
    return StreamResult(g, chosen, infos, base.arena_bytes, final)


def _moves(chosen: list[Span], cands: list[Span], ok: set[Span], bounds: set[int]):
    """Neighbours of a choice: add a span (dropping the ones it overlaps), drop one, split one at a
    unit boundary (keeping both halves or one)."""
    for c in cands:
        if c not in chosen:
            yield [s for s in chosen if s[1] < c[0] or s[0] > c[1]] + [c]
    for s in chosen:
        rest = [x for x in chosen if x != s]
        yield rest
        for cut in sorted(b for b in bounds if s[0] <= b < s[1]):
            left, right = (s[0], cut), (cut + 1, s[1])
            for part in ([left, right], [left], [right]):
                if all(p in ok for p in part):
                    yield rest + part


def overhead_estimate(g: Graph, sch: Schedule) -> float:
    """Extra instructions of streaming ``sch`` over layer by layer (the OVERHEAD_* fit)."""
    dw = sum(op_macs(g, m) for m in sch.members if m.kind == "depthwise_conv2d")
    conv = sum(op_macs(g, m) for m in sch.members if is_general_conv(m))
    return OVERHEAD_PER_DW_MAC * dw + OVERHEAD_PER_CONV_MAC * conv + OVERHEAD_PER_ROW_STEP * sch.row_calls


def segment_info(g: Graph, op: Op, saved: int = 0) -> SegmentInfo:
    sch: Schedule = op.attrs["stream"]
    lay = op.attrs["stream_layout"]
    return SegmentInfo(op.name, [m.name for m in sch.members],
                       {t: (r, sch.ring_bytes(g, t)) for t, r in sch.rings.items()}, lay["work_bytes"],
                       lay["bytes"], sch.row_calls, len(sch.members), sch.inplace_of, saved,
                       overhead_estimate(g, sch))


def segment_macs(g: Graph, op: Op) -> int:
    return sum(op_macs(g, m) for m in op.attrs["stream"].members)
