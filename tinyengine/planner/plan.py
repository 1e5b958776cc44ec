"""Static memory planner (the interface: options, buffers, the plan; ``lifetimes`` and ``packing`` do
the work): tensor lifetimes over the op schedule, packed into ONE arena.

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

from tinyengine.ir.graph import Graph
from tinyengine.planner import lifetimes, packing


@dataclass
class PlanOptions:
    inplace_depthwise: bool = True
    inplace_add: bool = True
    include_input: bool = True  # the input image lives in the arena (it does on a real board)
    alignment: int = 4          # every buffer starts at a multiple of this (int16/int32 scratch, SIMD loads)
    patches: int = 1            # n: run the early high-resolution layers in n x n patches (1 = off)
    patch_split: str | int | None = None  # last op of the patched prefix (None: patch.default_split)
    stream: bool = False        # fused streaming execution of the segments that lower the arena (passes.stream)
    layout_choice: str = "memory"  # depthwise in/out of place by cost (tinyengine.passes.layout): off | memory | speed
    layout_extra_sram: int = 0     # "speed": bytes the arena may grow by for it (0 = no limit)
    fuse_add: str = "on"           # pointwise projection + residual ADD as one op where the arena does not grow (passes.fuse_add): on | off


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
    layout: dict[str, dict] = field(default_factory=dict)  # depthwise op -> layout choice record (passes.layout)
    fused: dict[str, dict] = field(default_factory=dict)   # fused projection + add -> record (passes.fuse_add)

    @property
    def peak_sram(self) -> int:
        """Arena bytes: activations + scratch, the figure the search constrains and codegen allocates."""
        return self.arena_bytes

    @property
    def peak_step(self) -> int:
        tot = [a + s for a, s in zip(self.live_bytes, self.scratch_bytes)]
        return max(range(len(tot)), key=tot.__getitem__)


def plan_graph(graph: Graph, options: PlanOptions | None = None) -> MemoryPlan:
    """Plan ``graph`` as it is (its in-place annotations included): lifetimes, then packing. Never
    rewrites the graph; ``tinyengine.pipeline.plan_memory`` runs the passes first."""
    opts = options or PlanOptions()
    bufs, live, scratch, inplace = lifetimes.buffers(graph, opts)
    lower = max(a + s for a, s in zip(live, scratch)) if graph.ops else 0
    naive = sum(b.size for b in bufs)
    arena, strategy, offsets = packing.pack(bufs, opts.alignment, lower)
    for b in bufs:
        b.offset = offsets[id(b)]
    tensor_offset = {name: b.offset for b in bufs for name in b.tensors}
    return MemoryPlan(graph, opts, bufs, arena, lower, naive, strategy, live, scratch, tensor_offset, inplace)
