"""The engine's pipeline before code generation: graph -> passes -> memory plan.

Passes (``tinyengine.passes``) rewrite the graph and return a new one: patch-based inference when
``PlanOptions.patches > 1``, then the in-place aliasing decisions, then fused streaming
(``PlanOptions.stream``: segments that run row by row, chosen on the planned arena). The planner then plans
the result as it is, and the layout pass (``tinyengine.passes.layout``) moves the depthwise ops left in
place out of place where that is predicted cheaper and the arena does not grow (re-planning each trial).
Last, the residual-add fusion (``tinyengine.passes.fuse_add``, ``PlanOptions.fuse_add``) merges each
pointwise projection with the ADD after it where the arena does not grow.
``MemoryPlan.graph`` is the graph that runs: codegen lowers it, nothing else.
"""
from __future__ import annotations

from tinyengine.ir.graph import Graph
from tinyengine.passes.fuse_add import fuse_residual_adds
from tinyengine.passes.inplace import annotate_inplace
from tinyengine.passes.layout import choose_layouts
from tinyengine.passes.patch import patch_graph
from tinyengine.planner import MemoryPlan, PlanOptions, plan_graph


def prepare(graph: Graph, options: PlanOptions) -> Graph:
    """The passes ``options`` ask for, in order; the input graph is left as it was."""
    if options.patches > 1:
        graph = patch_graph(graph, options.patches, options.patch_split, options=options).graph
    graph = annotate_inplace(graph, depthwise=options.inplace_depthwise, add=options.inplace_add,
                             include_input=options.include_input)
    if options.stream:
        from tinyengine.passes.stream import choose_segments
        graph = choose_segments(graph, options).graph
    return graph


def plan_memory(graph: Graph, options: PlanOptions | None = None) -> MemoryPlan:
    """Run the passes, then plan: the peak SRAM the search constrains and the arena codegen allocates."""
    opts = options or PlanOptions()
    g, layout = choose_layouts(prepare(graph, opts), opts, lambda x: plan_graph(x, opts))
    g, fused = fuse_residual_adds(g, opts.fuse_add, lambda x: plan_graph(x, opts), include_input=opts.include_input,
                                  inplace=opts.inplace_add)
    plan = plan_graph(g, opts)
    plan.layout = layout
    plan.fused = fused
    return plan
