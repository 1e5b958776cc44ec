"""``tinyengine analyze --stream``: the analysis of a model with fused streaming execution
(``tinyengine.passes.stream``): the segments, their line buffers (rings) and the memory profile."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from search_spaces.arch import ArchConfig
from tinyengine.analyze import Analysis, LayerRow
from tinyengine.cost import graph_costs
from tinyengine.ir.graph import build_graph
from tinyengine.ir.opcost import op_flash, op_macs, op_params
from tinyengine.passes.inplace import annotate_inplace
from tinyengine.passes.stream import SegmentInfo, choose_segments
from tinyengine.planner import PlanOptions, plan_graph


@dataclass
class StreamAnalysis(Analysis):
    """An Analysis of the streamed schedule; ``rows`` follow the original ops, each with the figures of
    the step that runs it (a segment's step for its members)."""
    segments: list[SegmentInfo] = field(default_factory=list)
    arena_unfused: int = 0

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["stream"] = {"arena_unfused": self.arena_unfused, "arena": self.plan.arena_bytes,
                       "segments": [{"name": s.name, "ops": s.ops, "saved_bytes": s.saved_bytes,
                                     "rings": {t: {"rows": r, "bytes": b} for t, (r, b) in s.rings.items()},
                                     "work_bytes": s.work_bytes, "scratch_bytes": s.scratch_bytes,
                                     "row_calls": s.row_calls, "layer_calls": s.layer_calls,
                                     "inplace_of": s.inplace_of, "overhead_insn_estimate": s.overhead_insn,
                                     "explain": s.explain()}
                                    for s in self.segments]}
        return d


def analyze_streamed(arch: ArchConfig, options: PlanOptions, graph=None) -> StreamAnalysis:
    """``graph``: an imported model's graph (``arch`` is then its ``model_source.ImportedModel``)."""
    g = graph if graph is not None else build_graph(arch)
    opts = replace(options, stream=False)
    annotated = annotate_inplace(g, depthwise=opts.inplace_depthwise, add=opts.inplace_add,
                                 include_input=opts.include_input)
    res = choose_segments(annotated, opts)
    plan = plan_graph(res.graph, opts)
    plan.options = options
    step_of: dict[str, int] = {}
    for step, op in enumerate(res.graph.ops):
        members = op.attrs["stream"].members if op.kind == "stream_segment" else [op]
        for m in members:
            step_of[m.name] = step
    rows = []
    for i, op in enumerate(g.ops):
        k, s = op.attrs.get("kernel"), op.attrs.get("stride")
        kern = f"{k[0]}x{k[1]}/s{s[0]}" if k and s else (f"{k[0]}x{k[1]}" if k else "")
        st = step_of[op.name]
        rows.append(LayerRow(i, op.name, op.kind, op.role, g.tensors[op.inputs[0]].shape,
                             g.tensors[op.output].shape, kern, op_macs(g, op), op_params(op), op_flash(op),
                             plan.live_bytes[st], plan.scratch_bytes[st],
                             res.graph.ops[st].output in plan.inplace))
    c = graph_costs(g, plan)  # MACs, params, flash: those of the unfused ops (streaming adds none)
    return StreamAnalysis(arch, res.graph, plan, rows, c.macs, c.params, c.flash_bytes, res.segments,
                          res.arena_before)
