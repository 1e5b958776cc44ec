"""Kernel choice for a planned graph: per op, the registry's kernel, its layout and reason, its buffers
at the plan's offsets and its scratch (aligned). Works on an unquantised graph, so ``tinyengine
analyze`` and the latency model see what the generated code will call; codegen adds the numbers."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyengine.ir.graph import Graph, Op
from tinyengine.ir.opcost import op_macs
from tinyengine.kernels.registry import SCRATCH_ALIGN, SUPPORTED_KINDS, Context, KernelSpec, select
from tinyengine.planner import MemoryPlan
from tinyml_errors import LoweringError


class AlignmentError(LoweringError):
    """A scratch buffer's planned offset is misaligned for its element type and cannot be nudged."""


@dataclass
class KernelChoice:
    """The decision for one op: kernel, layout, buffers and the shape arguments of the C call."""

    index: int
    name: str
    kind: str
    role: str
    kernel: str
    layout: str
    reason: str
    inputs: list[tuple[str, int]]          # (tensor, arena offset)
    output: tuple[str, int]
    out_bytes: int
    in_shapes: list[tuple[int, ...]]
    out_shape: tuple[int, ...]
    macs: int
    inplace_of: str | None = None
    scratch_bytes: int = 0                 # bytes the plan reserved for this op
    scratch_offset: int | None = None      # where the generated code puts them
    scratch_type: str | None = None        # int8 / int16 / int32
    scratch_nudge: int = 0                 # bytes moved from the plan's offset for alignment
    scratch_fn: str | None = None          # C expression of what the kernel needs (checked at run time)
    args: dict | None = None               # everything the template needs for the call
    spec: KernelSpec | None = None
    layout_choice: dict | None = None      # depthwise: the layout pass's record (tinyengine.passes.layout)

    def summary(self) -> dict:
        """JSON-friendly record (``tinyengine analyze``, the generated comments, lowering.json)."""
        return {"index": self.index, "name": self.name, "kind": self.kind, "kernel": self.kernel,
                "layout": self.layout, "reason": self.reason,
                "scratch_bytes": self.scratch_bytes, "scratch_offset": self.scratch_offset,
                "scratch_type": self.scratch_type, "scratch_nudge": self.scratch_nudge,
                "inplace_of": self.inplace_of, "inputs": [list(i) for i in self.inputs],
                "output": list(self.output), "macs": self.macs,
                "weight_bytes": self.weight_bytes(),
                "in_shapes": [[int(d) for d in s] for s in self.in_shapes],
                "out_shape": [int(d) for d in self.out_shape],
                "args": plain(self.args or {}),
                **({"layout_choice": self.layout_choice} if self.layout_choice else {})}

    def weight_bytes(self) -> int:
        return 0


def plain(v):
    """JSON-ready copy of a call's arguments (numpy integers -> int)."""
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return int(v) if isinstance(v, (int, np.integer)) else v


def check_plan(plan: MemoryPlan) -> Graph:
    """The graph that runs (the plan's), checked for what the generated code supports."""
    graph = plan.graph
    if not plan.options.include_input:
        raise LoweringError("codegen: the plan keeps the input outside the arena "
                            "(PlanOptions.include_input=False); generate from a plan that includes it")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise LoweringError(f"codegen: graph '{graph.name}' has {len(graph.inputs)} inputs and "
                            f"{len(graph.outputs)} outputs; one of each is supported")
    return graph


def check_supported(g: Graph, op: Op) -> None:
    """Refuse, by name, what no kernel takes (before any choice is made)."""
    where = f"codegen: op '{op.name}' ({op.kind})"
    if op.kind not in SUPPORTED_KINDS:
        raise LoweringError(f"{where} has no C kernel (supported: {', '.join(SUPPORTED_KINDS)})")
    if op.attrs.get("in_regions") or "out_region" in op.attrs:
        raise LoweringError(f"{where} reads a window or writes a region (patch-based inference); the C "
                            "kernels take compact NHWC tensors only, so generate from an unpatched plan")
    if op.kind == "depthwise_conv2d" and g.tensors[op.inputs[0]].shape[2] != g.tensors[op.output].shape[2]:
        raise LoweringError(f"{where}: depth multiplier != 1 is not supported")
    if op.kind == "add" and g.tensors[op.inputs[0]].shape != g.tensors[op.inputs[1]].shape:
        raise LoweringError(f"{where}: broadcasting add is not supported (shapes "
                            f"{g.tensors[op.inputs[0]].shape} and {g.tensors[op.inputs[1]].shape})")


def choose(plan: MemoryPlan, i: int, *, winograd: bool = False, cls=KernelChoice) -> KernelChoice:
    """The registry's kernel for op ``i`` of the plan's graph, bound to the plan's offsets."""
    g = plan.graph
    op = g.ops[i]
    check_supported(g, op)
    t = g.tensors
    off = plan.tensor_offset
    planned = plan.scratch_bytes[i]
    ctx = Context(inplace=op.output in plan.inplace, winograd=winograd, planned_scratch=planned,
                  same_offset=off[op.inputs[0]] == off[op.output])
    s, reason = select(g, op, ctx)
    y = t[op.output]
    c = cls(index=i, name=op.name, kind=op.kind, role=op.role, kernel=s.name, layout=s.layout, reason=reason,
            inputs=[(n, off[n]) for n in op.inputs], output=(op.output, off[op.output]), out_bytes=y.nbytes,
            in_shapes=[t[n].shape for n in op.inputs], out_shape=y.shape, macs=op_macs(g, op),
            inplace_of=plan.inplace.get(op.output), scratch_bytes=planned, scratch_type=s.scratch_type,
            scratch_fn=s.scratch_c(g, op) if s.scratch_c else None, args=s.args(g, op), spec=s,
            layout_choice=plan.layout.get(op.name))
    if op.kind == "add" and c.inplace_of:
        c.layout += f", in place over '{c.inplace_of}'"
    if c.scratch_type is not None and planned <= 0:
        raise LoweringError(f"codegen: op '{op.name}' ({c.kernel}) needs scratch but the plan reserved none")
    _place_scratch(plan, c)
    return c


def kernel_choices(plan: MemoryPlan, *, winograd: bool = False) -> list[dict]:
    """Every op's decision as a summary dict (what ``analyze`` shows and the latency model reads)."""
    check_plan(plan)
    return [choose(plan, i, winograd=winograd).summary() for i in range(len(plan.graph.ops))]


def _occupied(plan: MemoryPlan, step: int, skip: str) -> list[tuple[int, int]]:
    """Address ranges [lo, hi) in use at ``step`` by every buffer but ``skip``."""
    out = []
    for b in plan.buffers:
        if b.name == skip:
            continue
        for a, e, s in b.intervals:
            if a <= step <= e and s:
                out.append((b.offset, b.offset + s))
    return out


def _place_scratch(plan: MemoryPlan, c: KernelChoice) -> None:
    """Bind the op's scratch to the plan's buffer, nudging it to its element alignment if needed."""
    if c.scratch_type is None:
        return
    name = f"{c.name}.scratch"
    buf = next((b for b in plan.buffers if b.name == name and b.kind == "scratch"), None)
    if buf is None:
        raise LoweringError(f"codegen: the plan has no scratch buffer '{name}' for {c.kernel}")
    align = SCRATCH_ALIGN[c.scratch_type]
    off, size = buf.offset, buf.size
    if off % align == 0:
        c.scratch_offset = off
        return
    busy = _occupied(plan, c.index, name)
    for d in (align - off % align, -(off % align)):
        new = off + d
        if new < 0 or new + size > plan.arena_bytes:
            continue
        if all(new + size <= a or new >= b for a, b in busy):
            c.scratch_offset, c.scratch_nudge = new, d
            return
    raise AlignmentError(
        f"codegen: scratch '{name}' ({c.scratch_type}, {size} B) is planned at offset {off}, which is "
        f"not a multiple of {align}, and the bytes next to it are in use at step {c.index}. The planner "
        f"must align scratch buffers: plan with PlanOptions(alignment=4) (tinyengine/planner/packing.py "
        f"rounds every offset up to that multiple), so that ARENA_BYTES stays the plan's arena size")
