"""Static memory planner: lifetimes over the schedule, then packing into one arena. Never rewrites the graph."""
from tinyengine.planner.plan import Buffer, MemoryPlan, PlanOptions, plan_memory, scratch_bytes

__all__ = ["Buffer", "MemoryPlan", "PlanOptions", "plan_memory", "scratch_bytes"]
