"""The NumPy reference of fused streaming execution (``tinyengine.ir.stream``): a segment runs row by
row, its intermediate tensors in rings of exactly the planned number of rows.

Each member's output row is computed by the same ``kernels_ref`` kernel as layer by layer, on the rows
of its window (taken from the rings, or from the whole external tensors) with the vertical zero padding
the window's clipping implies: the same arithmetic per element, so the same bytes. Every ring slot
remembers which row it holds; reading a row that was overwritten (an undersized ring) raises. When the
schedule writes the output over an external input (in place), the output rows go into a copy of that
input which the members keep reading, so an unsafe order shows up as wrong bytes.
"""
from __future__ import annotations

import numpy as np

from tinyengine.ir.graph import Graph, Op
from tinyengine.ir.stream import Schedule, row_window
from tinyengine.numerics import kernels_ref as K


class _Rows:
    """Row access for one segment run: rings for intermediates, whole arrays for the rest."""

    def __init__(self, graph: Graph, sch: Schedule, vals):
        self.t = graph.tensors
        self.rings = {x: np.zeros((r, *self.t[x].shape[1:]), np.int8) for x, r in sch.rings.items()}
        self.held = {x: np.full(r, -1) for x, r in sch.rings.items()}
        self.whole = {x: vals[x] for x in sch.external}
        if sch.inplace_of is not None:
            buf = np.array(vals[sch.inplace_of], copy=True).reshape(-1)
            self.whole[sch.inplace_of] = buf[:vals[sch.inplace_of].size].reshape(self.t[sch.inplace_of].shape)
            self.out_flat = buf
        self.sch = sch

    def get(self, x: str, r: int) -> np.ndarray:
        if x in self.rings:
            slot = r % len(self.held[x])
            if self.held[x][slot] != r:
                raise AssertionError(f"stream: row {r} of '{x}' is not in its ring (slot {slot} holds "
                                     f"row {self.held[x][slot]}): the ring is too small")
            return self.rings[x][slot]
        return self.whole[x][r]

    def put(self, x: str, r: int, row: np.ndarray, out: np.ndarray) -> None:
        if x in self.rings:
            slot = r % len(self.held[x])
            self.rings[x][slot] = row
            self.held[x][slot] = r
        else:
            out[r] = row


def member_row(graph: Graph, op: Op, y: int, rows: _Rows, *, single_rounding: bool = False) -> np.ndarray:
    """Output row ``y`` of ``op`` (shape (W, C)) from the rows of its inputs."""
    t = graph.tensors
    out = t[op.output]
    lo_c, hi_c = op.attrs.get("act_min", -128), op.attrs.get("act_max", 127)
    if op.kind == "add":
        a, b = (t[n] for n in op.inputs)
        return K.add(rows.get(op.inputs[0], y), a.zero_point, a.scale, rows.get(op.inputs[1], y), b.zero_point,
                     b.scale, out.zero_point, out.scale, lo_c, hi_c, single_rounding=single_rounding)
    x = op.inputs[0]
    lo, hi, top, bottom = row_window(op, y, t[x].shape[0])
    win = np.stack([rows.get(x, r) for r in range(lo, hi)])
    _, _, left, right = op.attrs["padding"]
    fn = K.conv2d if op.kind == "conv2d" else K.depthwise_conv2d
    p = op.params
    y_row = fn(win, t[x].zero_point, p["weight"], p["bias"], out.zero_point, p["mult"], p["shift"],
               op.attrs["stride"], (top, bottom, left, right), lo_c, hi_c, single_rounding=single_rounding)
    return y_row[0]


def run_segment(graph: Graph, sch: Schedule, vals, *, single_rounding: bool = False) -> np.ndarray:
    """The segment's output tensor, computed row by row in the schedule's order."""
    rows = _Rows(graph, sch, vals)
    shape = graph.tensors[sch.output].shape
    if sch.inplace_of is not None:
        n = int(np.prod(shape))
        if rows.out_flat.size < n:
            rows.out_flat = np.concatenate([rows.out_flat, np.zeros(n - rows.out_flat.size, np.int8)])
            src = sch.inplace_of
            rows.whole[src] = rows.out_flat[:graph.tensors[src].nbytes].reshape(graph.tensors[src].shape)
        out = rows.out_flat[:n].reshape(shape)
    else:
        out = np.zeros(shape, np.int8)
    done = [0] * len(sch.members)
    for i in sch.events:
        m = sch.members[i]
        y = done[i]
        rows.put(m.output, y, member_row(graph, m, y, rows, single_rounding=single_rounding), out)
        done[i] += 1
    return np.array(out, copy=True)
