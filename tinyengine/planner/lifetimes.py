"""Lifetimes: each tensor's buffer lives from the step of its writer (graph inputs from step 0) to its
last reader (graph outputs to the end). Ops annotated ``attrs['inplace_of']`` by the in-place pass share
their input's buffer, whose size drops to the output's after the op; region writers (patch-based
inference) share one buffer born at the first writer; kernel scratch (the registry's bytes) lives for
its op's step only."""
from __future__ import annotations

from typing import TYPE_CHECKING

from tinyengine.ir.graph import INPLACE_ATTR, Graph
from tinyengine.kernels.registry import planned_scratch_bytes
from tinyml_errors import PlanError

if TYPE_CHECKING:
    from tinyengine.planner.plan import PlanOptions


def last_use(graph: Graph) -> dict[str, int]:
    """The last step that reads each tensor (graph outputs: the last step)."""
    n = len(graph.ops)
    users = graph.consumers()
    born = {x: 0 for x in graph.inputs}
    for i, op in enumerate(graph.ops):
        born.setdefault(op.output, i)  # region writers: born at the first one
    last = {name: (max(u) if u else (n - 1 if name in graph.outputs else born[name]))
            for name, u in users.items() if name in born}
    for o in graph.outputs:
        last[o] = n - 1
    return last


def buffers(graph: Graph, opts: "PlanOptions"):
    """(buffers, live activation bytes per step, scratch bytes per step, in-place map)."""
    from tinyengine.planner.plan import Buffer
    t = graph.tensors
    n = len(graph.ops)
    last = last_use(graph)
    buffer_of: dict[str, Buffer] = {}
    bufs: list[Buffer] = []
    inplace: dict[str, str] = {}
    for name in graph.inputs:
        if opts.include_input:
            buf = Buffer(name, [name], [(0, last[name], t[name].nbytes)])
            bufs.append(buf)
            buffer_of[name] = buf
    scratch: list[int] = []
    for i, op in enumerate(graph.ops):
        src = op.attrs.get(INPLACE_ATTR)
        if src is not None and src not in buffer_of:
            raise PlanError(f"planner: op '{op.name}' is marked in place over '{src}', which has no buffer")
        if op.output in buffer_of:
            pass  # a later region writer of a tensor whose buffer exists already
        elif src is not None:
            buf = buffer_of[src]
            if last[op.output] > i:
                buf.intervals.append((i + 1, last[op.output], t[op.output].nbytes))
            buf.tensors.append(op.output)
            buffer_of[op.output] = buf
            inplace[op.output] = src
        else:
            buf = Buffer(op.output, [op.output], [(i, last[op.output], t[op.output].nbytes)])
            bufs.append(buf)
            buffer_of[op.output] = buf
        s = planned_scratch_bytes(graph, op, src is not None and op.kind == "depthwise_conv2d")
        scratch.append(s)
        if s:
            bufs.append(Buffer(f"{op.name}.scratch", [], [(i, i, s)], kind="scratch"))
    live = [0] * n
    for buf in bufs:
        if buf.kind == "scratch":
            continue
        for a, b, s in buf.intervals:
            for k in range(a, b + 1):
                live[k] += s
    return bufs, live, scratch, inplace
