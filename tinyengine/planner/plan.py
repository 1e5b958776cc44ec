"""Static memory planner: tensor lifetimes over the op schedule, packed into ONE arena.

* A tensor lives from the step of the op that writes it (the graph input from step 0) to the last
  step that reads it (graph outputs to the end).
* In-place depthwise: the output overwrites its input channel by channel (channel-major view), so
  the two share one buffer whose size drops from the input's to the output's after the op. The op
  needs a per-channel padded temp buffer (scratch) instead of a second activation.
* In-place add: the sum is written over the one input that dies at the add (elementwise, same shape).
* Kernel scratch (im2col columns, depthwise temp) is a buffer that lives for its op's step only, and
  is packed into the same arena.
* Packing: first-fit at the lowest offset that clears every buffer alive at the same time, tried in
  several orders (largest first, by start step, by size x lifetime); the smallest arena wins. The
  lower bound is the largest sum of bytes alive at one step; ``naive`` is no reuse at all.
* Patch-based inference (``PlanOptions.patches > 1``, see ``tinyengine.passes.patch``): the graph is first
  rewritten so that its high-resolution prefix runs in n x n spatial patches. A tensor assembled by
  several region writers (``attrs['out_region']``) is one buffer, born at its first writer and alive
  until its last reader; region writers and windowed reads (``attrs['in_regions']``) are never
  in-place. Windowed reads are strided views: they cost no bytes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tinyengine.ir.graph import Graph, Op
from tinyengine.kernels.registry import planned_scratch_bytes


@dataclass
class PlanOptions:
    inplace_depthwise: bool = True
    inplace_add: bool = True
    include_input: bool = True  # the input image lives in the arena (it does on a real board)
    alignment: int = 4          # every buffer starts at a multiple of this (int16/int32 scratch, SIMD loads)
    patches: int = 1            # n: run the early high-resolution layers in n x n patches (1 = off)
    patch_split: str | int | None = None  # last op of the patched prefix (None: patch.default_split)


@dataclass
class Buffer:
    name: str
    tensors: list[str]
    intervals: list[tuple[int, int, int]]  # (first step, last step, bytes) at one fixed offset
    kind: str = "activation"              # activation | scratch
    offset: int = -1

    @property
    def size(self) -> int:
        return max(s for _, _, s in self.intervals)

    @property
    def start(self) -> int:
        return self.intervals[0][0]

    @property
    def end(self) -> int:
        return self.intervals[-1][1]


@dataclass
class MemoryPlan:
    graph: Graph
    options: PlanOptions
    buffers: list[Buffer]
    arena_bytes: int
    lower_bound: int
    naive_bytes: int
    strategy: str
    live_bytes: list[int]        # activation bytes alive at each step
    scratch_bytes: list[int]     # scratch bytes of each step's op
    tensor_offset: dict[str, int] = field(default_factory=dict)
    inplace: dict[str, str] = field(default_factory=dict)  # output tensor -> input tensor it overwrites

    @property
    def peak_sram(self) -> int:
        """Arena bytes: activations + scratch, the figure the search constrains and codegen allocates."""
        return self.arena_bytes

    @property
    def peak_step(self) -> int:
        tot = [a + s for a, s in zip(self.live_bytes, self.scratch_bytes)]
        return max(range(len(tot)), key=tot.__getitem__)


def scratch_bytes(graph: Graph, op: Op, inplace: bool) -> int:
    """Kernel working memory of one op: the registry's kernel for it (``tinyengine.kernels.registry``)."""
    return planned_scratch_bytes(graph, op, inplace)


def plan_memory(graph: Graph, options: PlanOptions | None = None) -> MemoryPlan:
    opts = options or PlanOptions()
    if opts.patches > 1:
        from tinyengine.passes.patch import patch_graph  # the patched graph is what runs, so it is what is planned
        graph = patch_graph(graph, opts.patches, opts.patch_split, options=opts).graph
    t = graph.tensors
    n = len(graph.ops)
    users = graph.consumers()
    born = {x: 0 for x in graph.inputs}
    for i, op in enumerate(graph.ops):
        born.setdefault(op.output, i)  # region writers: born at the first one
    last = {name: (max(u) if u else (n - 1 if name in graph.outputs else born[name]))
            for name, u in users.items() if name in born}
    for o in graph.outputs:
        last[o] = n - 1

    # Decide aliasing, then build buffers (one per alias chain).
    buffer_of: dict[str, Buffer] = {}
    buffers: list[Buffer] = []
    inplace: dict[str, str] = {}
    for name in graph.inputs:
        if opts.include_input:
            buf = Buffer(name, [name], [(0, last[name], t[name].nbytes)])
            buffers.append(buf)
            buffer_of[name] = buf
    scratch: list[int] = []
    for i, op in enumerate(graph.ops):
        src = None
        windowed = op.attrs.get("in_regions") or (None,) * len(op.inputs)
        if "out_region" in op.attrs:
            pass  # one of several writers of a shared tensor: never in-place
        elif op.kind == "depthwise_conv2d" and opts.inplace_depthwise:
            cand = op.inputs[0]
            if (len(users[cand]) == 1 and cand in buffer_of and cand not in graph.outputs
                    and windowed[0] is None):
                src = cand
        elif op.kind == "add" and opts.inplace_add:
            for k, cand in enumerate(op.inputs):
                if (len(users[cand]) == 1 and cand in buffer_of and last[cand] == i
                        and t[cand].nbytes == t[op.output].nbytes and windowed[k] is None):
                    src = cand
                    break
        if op.output in buffer_of:
            pass  # a later region writer of a tensor whose buffer exists already
        elif src is not None:
            buf = buffer_of[src]
            buf.intervals.append((i + 1, last[op.output], t[op.output].nbytes)) if last[op.output] > i else None
            buf.tensors.append(op.output)
            buffer_of[op.output] = buf
            inplace[op.output] = src
        else:
            buf = Buffer(op.output, [op.output], [(i, last[op.output], t[op.output].nbytes)])
            buffers.append(buf)
            buffer_of[op.output] = buf
        s = scratch_bytes(graph, op, src is not None and op.kind == "depthwise_conv2d")
        scratch.append(s)
        if s:
            buffers.append(Buffer(f"{op.name}.scratch", [], [(i, i, s)], kind="scratch"))

    live = [0] * n
    for buf in buffers:
        if buf.kind == "scratch":
            continue
        for a, b, s in buf.intervals:
            for k in range(a, b + 1):
                live[k] += s
    lower = max(a + s for a, s in zip(live, scratch)) if n else 0
    naive = sum(b.size for b in buffers)

    best = None
    for strategy, key in _ORDERS.items():
        offsets = _first_fit(sorted(buffers, key=key), opts.alignment)
        arena = max((offsets[id(b)] + b.size for b in buffers), default=0)
        if best is None or arena < best[0]:
            best = (arena, strategy, offsets)
        if arena == lower:
            break
    arena, strategy, offsets = best
    for b in buffers:
        b.offset = offsets[id(b)]
    tensor_offset = {name: b.offset for b in buffers for name in b.tensors}
    return MemoryPlan(graph, opts, buffers, arena, lower, naive, strategy, live, scratch,
                      tensor_offset, inplace)


_ORDERS = {
    "largest-first": lambda b: (-b.size, b.start),
    "by-start": lambda b: (b.start, -b.size),
    "size-x-lifetime": lambda b: (-b.size * (b.end - b.start + 1), b.start),
}


def _first_fit(order: list[Buffer], align: int = 1) -> dict[int, int]:
    """Place each buffer at the lowest ``align``-multiple offset clear of every placed buffer alive
    at the same step."""
    placed: list[tuple[Buffer, int]] = []
    out: dict[int, int] = {}
    for buf in order:
        busy = []  # (lo, hi) address ranges that conflict with some interval of buf
        for other, off in placed:
            for a1, b1, s1 in buf.intervals:
                for a2, b2, s2 in other.intervals:
                    if a1 <= b2 and a2 <= b1:
                        busy.append((off, off + s2, s1))
        need = buf.size
        busy.sort()
        offset = 0
        for lo, hi, _ in busy:
            if lo >= offset + need:
                break
            offset = max(offset, -(-hi // align) * align)
        # Interval sizes differ over time: the test above uses the buffer's largest size, which is
        # conservative and keeps the arena layout simple (one offset, one extent per buffer).
        out[id(buf)] = offset
        placed.append((buf, offset))
    return out
