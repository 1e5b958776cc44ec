"""Static memory planner: lifetimes (``lifetimes``), then packing into one arena (``packing``), behind a
small interface (``plan``). It plans the graph it is given and never rewrites it: the passes
(patching, in-place aliasing) run before, in ``tinyengine.pipeline``."""
from tinyengine.planner.plan import Buffer, MemoryPlan, PlanOptions, plan_graph

__all__ = ["Buffer", "MemoryPlan", "PlanOptions", "plan_graph"]
