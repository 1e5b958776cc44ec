"""Per-op layout choice for depthwise convolutions, by predicted cost and the memory plan together.

A depthwise op can run
* in place (``te_depthwise_inplace_s8``): the output overwrites its input channel by channel through a
  padded channel-major plane in scratch; no second activation buffer, SMLAD on pixel pairs, but a
  per-channel copy and set-up that dominate at small spatial sizes;
* out of place (``te_depthwise_s8``): reads the NHWC input directly, four channels per pass, writes a
  buffer of its own; no copy and no scratch, but the output needs its own bytes while the input lives.

The in-place pass (``tinyengine.passes.inplace``) marks every depthwise that may run in place. This pass
then plans that graph and, for each marked depthwise whose predicted instructions out of place (the
registry's instruction terms of both kernels with the shipped latency model's coefficients, fitted on
QEMU Cortex-M4 counts) are lower,
drops the mark and re-plans: the change is kept only if the arena does not grow (``layout_choice=
"memory"``, the default) or grows by at most ``layout_extra_sram`` bytes over the first plan
(``"speed"``; 0 there means no limit). ``"off"`` keeps every in-place mark. Decisions are greedy in
graph order, each on the plan with the earlier ones applied.

``choose_layouts`` returns the graph and, per depthwise op, a record: the choice, its reason and the
cost of each alternative (predicted instructions and arena bytes) -- what ``MemoryPlan.layout``,
``tinyengine analyze`` and codegen's ``lowering.json`` show.
"""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib.resources import files
from typing import TYPE_CHECKING, Callable

from tinyengine.ir.graph import INPLACE_ATTR, Graph
from tinyengine.kernels.registry import latency_terms, spec
from tinyml_errors import UsageError

if TYPE_CHECKING:
    from tinyengine.planner import MemoryPlan, PlanOptions

IN_PLACE, OUT_OF_PLACE = "te_depthwise_inplace_s8", "te_depthwise_s8"
MODES = ("off", "memory", "speed")
# Out of place must be predicted this much cheaper: the fits' own error is ~4% (RMS), and a layer must
# not end up slower than in place because of a prediction within the noise.
MARGIN = 0.05


@lru_cache(maxsize=1)
def _fits() -> dict:
    """The shipped QEMU Cortex-M4 instruction fits (``tinyengine/latency/data/qemu-m4.json``), read as
    data: the latency package sits above the passes and is not imported here."""
    return json.loads((files("tinyengine") / "latency" / "data" / "qemu-m4.json").read_text())["kernels"]


def predicted_instructions(g: Graph, op, kernel: str) -> float | None:
    """The shipped instruction model's prediction for ``kernel`` on ``op`` (None: no fit for it)."""
    key, terms = latency_terms(kernel, spec(kernel).args(g, op))
    fit = _fits().get(key)
    if fit is None or list(fit["terms"]) != list(terms):
        return None
    return max(0.0, sum(float(c) * v for c, v in zip(fit["coef"], terms.values())))


def _without_inplace(g: Graph, name: str) -> Graph:
    ops = []
    for op in g.ops:
        if op.name == name:
            op = copy.copy(op)
            op.attrs = {k: v for k, v in op.attrs.items() if k != INPLACE_ATTR}
        ops.append(op)
    return Graph(g.name, g.tensors, ops, list(g.inputs), list(g.outputs))


def choose_layouts(g: Graph, options: "PlanOptions",
                   plan: Callable[[Graph], "MemoryPlan"]) -> tuple[Graph, dict[str, dict]]:
    """(graph with the chosen in-place marks, per depthwise op its layout record). ``plan`` plans a
    graph as it is (``plan_graph`` with the options)."""
    mode = options.layout_choice
    if mode not in MODES:
        raise UsageError(f"layout choice: '{mode}' is not one of {', '.join(MODES)}")
    if options.layout_extra_sram < 0:
        raise UsageError(f"layout choice: layout_extra_sram must be >= 0 bytes, got {options.layout_extra_sram}")
    dws = [op for op in g.ops if op.kind == "depthwise_conv2d" and "out_region" not in op.attrs
           and not op.attrs.get("in_regions")]
    if not dws:
        return g, {}
    base = plan(g).arena_bytes
    limit = base
    if mode == "speed":
        limit = float("inf") if options.layout_extra_sram == 0 else base + options.layout_extra_sram
    records: dict[str, dict] = {}
    current = base
    for op in dws:
        inplace = INPLACE_ATTR in next(o for o in g.ops if o.name == op.name).attrs
        cost_in = predicted_instructions(g, op, IN_PLACE) if inplace else None
        cost_out = predicted_instructions(g, op, OUT_OF_PLACE)
        alt = {OUT_OF_PLACE: {"predicted_instructions": _r(cost_out), "arena_bytes": None}}
        if not inplace:
            alt[OUT_OF_PLACE]["arena_bytes"] = current
            records[op.name] = {"choice": "out of place", "kernel": OUT_OF_PLACE, "alternatives": alt,
                                "reason": "in place not possible (the input has another reader, is a graph "
                                          "output or in-place depthwise is off)"}
            continue
        alt[IN_PLACE] = {"predicted_instructions": _r(cost_in), "arena_bytes": current}
        keep = {"choice": "in place", "kernel": IN_PLACE, "alternatives": alt}
        if mode == "off":
            records[op.name] = {**keep, "reason": "layout choice off"}
            continue
        if cost_in is None or cost_out is None:
            records[op.name] = {**keep, "reason": "no instruction prediction for both kernels: kept in place"}
            continue
        trial = _without_inplace(g, op.name)
        arena = plan(trial).arena_bytes
        alt[OUT_OF_PLACE]["arena_bytes"] = arena
        if cost_out >= cost_in * (1 - MARGIN):
            records[op.name] = {**keep, "reason": f"in place is cheaper or within {MARGIN:.0%} ({cost_in:,.0f} vs "
                                                  f"{cost_out:,.0f} predicted instructions) and needs no second "
                                                  "buffer"}
        elif arena > limit:
            records[op.name] = {**keep, "reason": f"out of place would save {cost_in - cost_out:,.0f} predicted "
                                                  f"instructions but grow the arena to {arena:,} B "
                                                  f"(limit {limit:,} B): the layer is at the peak"}
        else:
            g, current = trial, arena
            records[op.name] = {"choice": "out of place", "kernel": OUT_OF_PLACE, "alternatives": alt,
                                "reason": f"the plan has slack here (arena {arena:,} B <= limit {limit:,} B): "
                                          f"out of place saves {cost_in - cost_out:,.0f} predicted instructions"}
    return g, records


def _r(v: float | None) -> int | None:
    return None if v is None else int(round(v))
