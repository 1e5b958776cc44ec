"""Per-layer analysis of a model: shapes, MACs, params, flash, live activation bytes and scratch."""
from __future__ import annotations

from dataclasses import dataclass, replace

from search_spaces.arch import ArchConfig
from tinyengine.cost import graph_costs
from tinyengine.ir.graph import Graph, build_graph
from tinyengine.ir.opcost import op_flash, op_macs, op_params
from tinyengine.passes.patch import PatchedGraph
from tinyengine.pipeline import plan_memory
from tinyengine.planner import MemoryPlan, PlanOptions


@dataclass
class LayerRow:
    index: int
    name: str
    kind: str
    role: str
    in_shape: tuple
    out_shape: tuple
    kernel: str
    macs: int
    params: int
    flash: int
    live_bytes: int      # activation bytes alive during this op
    scratch: int         # kernel scratch of this op
    inplace: bool

    @property
    def total(self) -> int:
        return self.live_bytes + self.scratch

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["in_shape"], d["out_shape"] = list(self.in_shape), list(self.out_shape)
        return d


@dataclass
class Analysis:
    arch: ArchConfig
    graph: Graph
    plan: MemoryPlan
    rows: list[LayerRow]
    macs: int
    params: int
    flash_bytes: int

    @property
    def peak_sram(self) -> int:
        return self.plan.peak_sram

    def to_dict(self) -> dict:
        p = self.plan
        return {"model": self.arch.name, "resolution": self.arch.resolution,
                "totals": {"macs": self.macs, "params": self.params, "flash_bytes": self.flash_bytes,
                           "peak_sram": p.peak_sram, "lower_bound": p.lower_bound,
                           "naive_bytes": p.naive_bytes, "peak_layer": self.graph.ops[p.peak_step].name,
                           "packing": p.strategy},
                "options": dict(p.options.__dict__),
                "layers": [r.to_dict() for r in self.rows],
                "arena": [{"buffer": b.name, "kind": b.kind, "offset": b.offset, "size": b.size,
                           "tensors": b.tensors, "first_step": b.start, "last_step": b.end}
                          for b in sorted(p.buffers, key=lambda b: (b.offset, b.start))],
                "published": self.arch.meta.get("published", {})}


def analyze(arch: ArchConfig, options: PlanOptions | None = None) -> Analysis:
    """Per-layer figures and the memory plan; with ``options.patches > 1`` see ``analyze_patched``."""
    if options is not None and options.patches > 1:
        return analyze_patched(arch, options)
    if options is not None and options.stream:  # fused streaming (tinyengine.analyze_stream)
        from tinyengine.analyze_stream import analyze_streamed
        return analyze_streamed(arch, options)
    return analyze_graph(build_graph(arch), arch, options)


def analyze_graph(g: Graph, arch, options: PlanOptions | None = None) -> Analysis:
    """``analyze`` of a graph already built (an imported model: ``arch`` is then a
    ``model_source.ImportedModel``)."""
    plan = plan_memory(g, options)
    g = plan.graph  # the graph that runs (a projection and its residual add may be one op: passes.fuse_add)
    rows = []
    for i, op in enumerate(g.ops):
        k = op.attrs.get("kernel")
        s = op.attrs.get("stride")
        kern = f"{k[0]}x{k[1]}/s{s[0]}" if k and s else (f"{k[0]}x{k[1]}" if k else "")
        rows.append(LayerRow(i, op.name, op.kind, op.role, g.tensors[op.inputs[0]].shape,
                             g.tensors[op.output].shape, kern, op_macs(g, op), op_params(op),
                             op_flash(op), plan.live_bytes[i], plan.scratch_bytes[i],
                             op.output in plan.inplace))
    c = graph_costs(g, plan)
    return Analysis(arch, g, plan, rows, c.macs, c.params, c.flash_bytes)


@dataclass
class PatchedAnalysis(Analysis):
    """An Analysis of the patched schedule; ``rows`` still follow the original ops, each with the
    figures of its most memory-hungry patch copy (MACs summed over the copies)."""
    patched: PatchedGraph | None = None
    original_macs: int = 0

    @property
    def extra_macs(self) -> int:
        return self.macs - self.original_macs

    def to_dict(self) -> dict:
        d = super().to_dict()
        pg = self.patched
        d["patches"] = {"n": pg.n, "split": pg.split_name, "output": pg.output,
                        "tiles": [list(t) for t in pg.tiles], "original_macs": self.original_macs,
                        "extra_macs": self.extra_macs, "patched_ops": len(self.graph.ops)}
        return d


def analyze_patched(arch: ArchConfig, options: PlanOptions) -> PatchedAnalysis:
    """Analysis with MCUNetV2 patch-based inference of the prefix (``options.patches`` x same)."""
    from tinyengine.passes.patch import patch_graph

    g = build_graph(arch)
    pg = patch_graph(g, options.patches, options.patch_split, options=options)
    # pg.graph is patched already; unfused (passes.fuse_add would drop steps pg.origin maps)
    plan = plan_memory(pg.graph, replace(options, patches=1, fuse_add="off"))
    best: dict[int, int] = {}   # original op -> patched step with the most bytes in use
    macs = [0] * len(g.ops)
    inplace = [False] * len(g.ops)
    for step, k in enumerate(pg.origin):
        tot = plan.live_bytes[step] + plan.scratch_bytes[step]
        if k not in best or tot > plan.live_bytes[best[k]] + plan.scratch_bytes[best[k]]:
            best[k] = step
        macs[k] += op_macs(pg.graph, pg.graph.ops[step])
        inplace[k] |= pg.graph.ops[step].output in plan.inplace
    rows = []
    for i, op in enumerate(g.ops):
        k, s = op.attrs.get("kernel"), op.attrs.get("stride")
        kern = f"{k[0]}x{k[1]}/s{s[0]}" if k and s else (f"{k[0]}x{k[1]}" if k else "")
        rows.append(LayerRow(i, op.name, op.kind, op.role, g.tensors[op.inputs[0]].shape,
                             g.tensors[op.output].shape, kern, macs[i], op_params(op), op_flash(op),
                             plan.live_bytes[best[i]], plan.scratch_bytes[best[i]], inplace[i]))
    plan.options = options
    c = graph_costs(g, plan)  # params and flash: the weights are shared by the patches
    return PatchedAnalysis(arch, pg.graph, plan, rows, pg.macs, c.params, c.flash_bytes, pg,
                           pg.original_macs)


def plot_memory_profile(analyses: dict[str, Analysis], path: str, sram_limit: int | None = None) -> None:
    """Bytes alive per layer (activations + scratch) for one or more plans of the same model."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(8, len(next(iter(analyses.values())).rows) * 0.12), 4.5))
    for label, a in analyses.items():
        tot = [r.total / 1024 for r in a.rows]
        ax.step(range(len(tot)), tot, where="mid", lw=1.6,
                label=f"{label}: peak {a.peak_sram / 1024:.1f} KB")
    if sram_limit:
        ax.axhline(sram_limit / 1024, color="red", ls="--", lw=1, label=f"SRAM limit {sram_limit / 1024:g} KB")
    a0 = next(iter(analyses.values()))
    ticks = [r.index for r in a0.rows if r.role in ("stem", "expand", "pool", "classifier")]
    ax.set_xticks(ticks, [a0.rows[i].name.split(".")[0] for i in ticks], rotation=90, fontsize=6)
    ax.set_ylabel("SRAM in use (KB)")
    ax.set_title(f"{a0.arch.name or 'model'}: memory per layer (activations + kernel scratch)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
