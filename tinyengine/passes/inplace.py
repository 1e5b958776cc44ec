"""In-place aliasing decisions, as a pass before planning: which op writes its output over an input.

* Depthwise: the output overwrites its input channel by channel (channel-major view) when the input
  has no other reader, is not a graph output, lives in the arena and is read whole (not a window).
* Add: the sum is written over the one input that dies at the add (same size, sole reader, whole).
* Region writers (patch-based inference) are never in place.

``annotate_inplace`` returns a new graph whose ops carry ``attrs['inplace_of']`` (the input tensor the
output overwrites); the planner reads it and never decides by itself.
"""
from __future__ import annotations

import copy

from tinyengine.ir.graph import INPLACE_ATTR, Graph
from tinyengine.planner.lifetimes import last_use


def decide_inplace(graph: Graph, *, depthwise: bool = True, add: bool = True,
                   include_input: bool = True) -> dict[str, str]:
    """Output tensor -> the input tensor it overwrites, for every op that may run in place."""
    t = graph.tensors
    users = graph.consumers()
    last = last_use(graph)
    in_arena = set(graph.inputs) if include_input else set()
    out: dict[str, str] = {}
    for i, op in enumerate(graph.ops):
        windowed = op.attrs.get("in_regions") or (None,) * len(op.inputs)
        src = None
        if "out_region" in op.attrs:
            pass  # one of several writers of a shared tensor: never in place
        elif op.kind == "depthwise_conv2d" and depthwise:
            cand = op.inputs[0]
            if (len(users[cand]) == 1 and cand in in_arena and cand not in graph.outputs
                    and windowed[0] is None):
                src = cand
        elif op.kind == "add" and add:
            for k, cand in enumerate(op.inputs):
                if (len(users[cand]) == 1 and cand in in_arena and last[cand] == i
                        and t[cand].nbytes == t[op.output].nbytes and windowed[k] is None):
                    src = cand
                    break
        if src is not None and op.output not in out:
            out[op.output] = src
        in_arena.add(op.output)
    return out


def annotate_inplace(graph: Graph, *, depthwise: bool = True, add: bool = True,
                     include_input: bool = True) -> Graph:
    """A copy of ``graph`` (ops and their attrs copied; tensors and weights shared) whose in-place ops
    carry ``attrs['inplace_of']``; every other op has none."""
    pairs = decide_inplace(graph, depthwise=depthwise, add=add, include_input=include_input)
    ops = []
    for op in graph.ops:
        new = copy.copy(op)
        new.attrs = {k: v for k, v in op.attrs.items() if k != INPLACE_ATTR}
        if op.output in pairs and "out_region" not in op.attrs:
            new.attrs[INPLACE_ATTR] = pairs[op.output]
        ops.append(new)
    return Graph(graph.name, graph.tensors, ops, list(graph.inputs), list(graph.outputs))
