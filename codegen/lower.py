"""Lowering of a quantised, planned graph to kernel calls: one ``te_*`` call per op, fixed geometry,
fixed arena offsets (the plan's), weights in the layout each kernel reads.

Kernel choice (``firmware/include/tinyengine.h``):

* conv2d 1x1, stride 1, no padding -> ``te_conv_pointwise_s8`` (NHWC rows are the GEMM rows);
* conv2d 3x3 stride 1, only with ``winograd=True`` and when the planned scratch is big enough ->
  ``te_conv_winograd3x3_s8`` (int32 ``U`` weights, see ``codegen.winograd``);
* any other conv2d (stem, k > 1, strided 1x1) -> ``te_conv_im2col_s8``;
* depthwise -> ``te_depthwise_inplace_s8`` when the plan aliased its output onto its input
  (``plan.inplace``), else ``te_depthwise_s8``;
* add -> ``te_add_s8`` (TFLM ADD multipliers from ``kernels_ref.add_params``);
* global_avg_pool / avg_pool2d -> ``te_avg_pool_s8``; fully_connected -> ``te_fully_connected_s8``;
* reshape -> a ``memmove`` (or nothing when the plan put both tensors at one offset).

Codegen executes the plan, it does not re-plan: every tensor and scratch buffer sits at its plan
offset, and the arena is exactly ``plan.arena_bytes``. The one liberty taken is alignment: an int16 or
int32 scratch buffer at an offset that is not a multiple of 4 (SIMD word loads) is moved up (or down) by
a few bytes *if* the bytes it moves into are free at that step and stay inside the arena; otherwise
lowering fails and names the planner change needed (:class:`AlignmentError`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from tinyengine.cost import op_macs
from tinyengine.graph import Graph, Op
from tinyengine.kernels_ref import add_params
from tinyengine.planner import MemoryPlan

from .winograd import transform_weights


class LoweringError(ValueError):
    """The graph or plan cannot be turned into kernel calls (unsupported op, missing quantisation...)."""


class AlignmentError(LoweringError):
    """A scratch buffer's planned offset is misaligned for its element type and cannot be nudged."""


# int16 scratch is read two halfwords at a time by the SIMD paths: word alignment for both.
SCRATCH_ALIGN = {"int8": 1, "int16": 4, "int32": 4}


WINOGRAD_MAX_IN_C = 1827  # te_winograd.c: int32 sums cannot overflow up to here; above, the kernel refuses


def winograd_scratch_bytes(in_c: int) -> int:
    """Mirror of ``te_winograd_scratch_bytes(in_c)`` (firmware/src/te_winograd.c): the transformed 4x4
    input tile of every input channel, ``16 * in_c`` int16. The generated ``te_model_check()`` compares
    it with the C function at run time, so a drift between the two is caught, not silently trusted."""
    return 16 * in_c * 2


@dataclass
class CArray:
    """One constant array for weights.c: C name, element type and the values (already in kernel layout)."""

    name: str
    ctype: str          # int8_t | int32_t
    values: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.values.size) * (1 if self.ctype == "int8_t" else 4)


@dataclass
class LoweredOp:
    """The decision for one op: kernel, layout, buffers and the C call's arguments."""

    index: int
    name: str
    kind: str
    role: str
    kernel: str
    layout: str
    reason: str
    inputs: list[tuple[str, int]]          # (tensor, arena offset)
    output: tuple[str, int]
    out_bytes: int
    in_shapes: list[tuple[int, ...]]
    out_shape: tuple[int, ...]
    macs: int
    inplace_of: str | None = None
    scratch_bytes: int = 0                 # bytes the plan reserved for this op
    scratch_offset: int | None = None      # where the generated code puts them
    scratch_type: str | None = None        # int8 / int16 / int32
    scratch_nudge: int = 0                 # bytes moved from the plan's offset for alignment
    scratch_fn: str | None = None          # C expression of what the kernel needs (checked at run time)
    arrays: list[CArray] = field(default_factory=list)
    args: dict = field(default_factory=dict)  # everything the template needs for the call

    def summary(self) -> dict:
        """JSON-friendly record (``tinyengine analyze``, the generated comments, lowering.json)."""
        return {"index": self.index, "name": self.name, "kind": self.kind, "kernel": self.kernel,
                "layout": self.layout, "reason": self.reason,
                "scratch_bytes": self.scratch_bytes, "scratch_offset": self.scratch_offset,
                "scratch_type": self.scratch_type, "scratch_nudge": self.scratch_nudge,
                "inplace_of": self.inplace_of, "inputs": [list(i) for i in self.inputs],
                "output": list(self.output), "macs": self.macs,
                "weight_bytes": sum(a.nbytes for a in self.arrays),
                "in_shapes": [[int(d) for d in s] for s in self.in_shapes],
                "out_shape": [int(d) for d in self.out_shape],
                "args": _plain(self.args)}


@dataclass
class Lowering:
    """A whole model lowered: ops in schedule order, arena size, input/output placement."""

    name: str
    graph: Graph
    plan: MemoryPlan
    ops: list[LoweredOp]
    arena_bytes: int
    input: tuple[str, int]
    output: tuple[str, int]
    winograd: bool

    @property
    def macs(self) -> int:
        return sum(o.macs for o in self.ops)

    @property
    def weight_bytes(self) -> int:
        return sum(a.nbytes for o in self.ops for a in o.arrays)

    def kernel_table(self) -> list[dict]:
        return [o.summary() for o in self.ops]


# --------------------------------------------------------------------------- entry points
def lower(graph: Graph, plan: MemoryPlan, *, winograd: bool = False) -> Lowering:
    """Choose a kernel and layout for every op of ``plan.graph`` and bind it to the plan's offsets."""
    graph = _planned_graph(graph, plan)
    names = _c_names(graph)
    ops = []
    for i, op in enumerate(graph.ops):
        _check_supported(graph, op, quantised=True)
        lo = _choose(graph, plan, i, op, winograd)
        _bind(graph, op, names[op.name], lo)
        _place_scratch(graph, plan, lo)
        ops.append(lo)
    off = plan.tensor_offset
    inp, outp = graph.inputs[0], graph.outputs[0]
    low = Lowering(graph.name, graph, plan, ops, plan.arena_bytes, (inp, off[inp]), (outp, off[outp]),
                   winograd)
    _check_bounds(low)
    return low


def kernel_choices(graph: Graph, plan: MemoryPlan, *, winograd: bool = False) -> list[dict]:
    """The per-op decisions only (kernel, layout, scratch, reason): works on an unquantised graph, so
    ``tinyengine analyze`` can show what the generated code will call for any architecture."""
    graph = _planned_graph(graph, plan)
    out = []
    for i, op in enumerate(graph.ops):
        _check_supported(graph, op, quantised=False)
        lo = _choose(graph, plan, i, op, winograd)
        _place_scratch(graph, plan, lo)
        out.append(lo.summary())
    return out


def _planned_graph(graph: Graph, plan: MemoryPlan) -> Graph:
    g = plan.graph
    if g is not graph and [o.name for o in g.ops] != [o.name for o in graph.ops]:
        graph = g  # plan_memory rewrote the graph (patch-based inference): what runs is the plan's graph
    if not plan.options.include_input:
        raise LoweringError("codegen: the plan keeps the input outside the arena "
                            "(PlanOptions.include_input=False); generate from a plan that includes it")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise LoweringError(f"codegen: graph '{graph.name}' has {len(graph.inputs)} inputs and "
                            f"{len(graph.outputs)} outputs; one of each is supported")
    return graph


# --------------------------------------------------------------------------- per op: choice
def _choose(g: Graph, plan: MemoryPlan, i: int, op: Op, winograd: bool) -> LoweredOp:
    """Kernel, layout, reason, scratch type and the shape arguments of the call (no numbers)."""
    t = g.tensors
    off = plan.tensor_offset
    x, y = t[op.inputs[0]], t[op.output]
    lo = LoweredOp(index=i, name=op.name, kind=op.kind, role=op.role, kernel="", layout="", reason="",
                   inputs=[(n, off[n]) for n in op.inputs], output=(op.output, off[op.output]),
                   out_bytes=y.nbytes, in_shapes=[t[n].shape for n in op.inputs], out_shape=y.shape,
                   macs=op_macs(g, op), inplace_of=plan.inplace.get(op.output))
    planned = plan.scratch_bytes[i]
    lo.scratch_bytes = planned
    a = op.attrs

    if op.kind == "conv2d":
        kh, kw = a["kernel"]
        sh, sw = a["stride"]
        pt, pb, pl, pr = a["padding"]
        cin = x.shape[2]
        if (kh, kw) == (1, 1) and (sh, sw) == (1, 1) and (pt, pb, pl, pr) == (0, 0, 0, 0):
            lo.kernel, lo.scratch_type = "te_conv_pointwise_s8", "int16"
            lo.layout = "NHWC pixels x in_c -> pixels x out_c; weights (out_c, in_c)"
            lo.reason = "1x1 stride-1 conv: a GEMM over NHWC pixel rows, no im2col needed"
            lo.scratch_fn = f"te_pointwise_scratch_bytes({cin})"
            lo.args = {"n_pixels": x.shape[0] * x.shape[1], "in_c": cin, "out_c": y.shape[2]}
        elif (winograd and (kh, kw) == (3, 3) and (sh, sw) == (1, 1) and cin <= WINOGRAD_MAX_IN_C
              and winograd_scratch_bytes(cin) <= planned):
            lo.kernel, lo.scratch_type = "te_conv_winograd3x3_s8", "int32"
            lo.layout = "NHWC; weights pre-transformed U = G'gG'^T int32 (out_c, 4, 4, in_c)"
            lo.reason = ("3x3 stride-1 regular conv with --winograd: F(2x2,3x3) does 16 multiplies per "
                         "4 outputs instead of 36")
            lo.scratch_fn = f"te_winograd_scratch_bytes({cin})"
            lo.args = {"geom": _geom(x.shape, y.shape, (kh, kw), (sh, sw), (pt, pl))}
        else:
            lo.kernel, lo.scratch_type = "te_conv_im2col_s8", "int16"
            lo.layout = "NHWC; weights OHWI; two int16 im2col columns in scratch"
            why = "stem" if op.role == "stem" else f"{kh}x{kw} stride-{sh} conv"
            lo.reason = f"{why}: im2col + GEMM"
            if winograd and (kh, kw) == (3, 3) and (sh, sw) == (1, 1):
                lo.reason += (f" (no Winograd: in_c {cin} > {WINOGRAD_MAX_IN_C}" if cin > WINOGRAD_MAX_IN_C
                              else f" (no Winograd: it needs {winograd_scratch_bytes(cin)} B scratch, the "
                                   f"plan reserved {planned} B") + ")"
            lo.scratch_fn = f"te_im2col_scratch_bytes({kh}, {kw}, {cin})"
            lo.args = {"geom": _geom(x.shape, y.shape, (kh, kw), (sh, sw), (pt, pl))}
    elif op.kind == "depthwise_conv2d":
        kh, kw = a["kernel"]
        sh, sw = a["stride"]
        pt, pb, pl, pr = a["padding"]
        lo.args = {"geom": _geom(x.shape, y.shape, (kh, kw), (sh, sw), (pt, pl))}
        if lo.inplace_of is not None:
            lo.kernel, lo.scratch_type = "te_depthwise_inplace_s8", "int8"
            lo.layout = "NHWC in place (output over input); weights (kH, kW, C); one padded channel in scratch"
            lo.reason = (f"the plan writes the output over its input '{lo.inplace_of}' (no second "
                         f"activation buffer: saves {y.nbytes} B)")
            lo.scratch_fn = f"te_depthwise_scratch_bytes({x.shape[0]}, {x.shape[1]}, {pt}, {pb}, {pl}, {pr})"
        else:
            lo.kernel = "te_depthwise_s8"
            lo.layout = "NHWC in -> NHWC out; weights (kH, kW, C)"
            lo.reason = "the plan gives the output its own buffer (input still needed, or in-place off)"
    elif op.kind == "add":
        lo.kernel = "te_add_s8"
        lo.layout = "elementwise over NHWC" + (f", in place over '{lo.inplace_of}'" if lo.inplace_of else "")
        lo.reason = "residual add (TFLM int8 ADD: left shift 20, two input and one output multiplier)"
        lo.args = {"n": y.nbytes}
    elif op.kind in ("global_avg_pool", "avg_pool2d"):
        h, w_, c = x.shape
        if op.kind == "global_avg_pool":
            k, s, pad, oh, ow = (h, w_), (1, 1), (0, 0, 0, 0), 1, 1
            lo.reason = "global average pool = AVERAGE_POOL_2D with a full H x W kernel"
        else:
            k, s, pad = a["kernel"], a["stride"], a["padding"]
            oh, ow = y.shape[0], y.shape[1]
            lo.reason = "average pool"
        lo.kernel, lo.layout = "te_avg_pool_s8", "NHWC"
        lo.args = {"in_h": h, "in_w": w_, "c": c, "k_h": k[0], "k_w": k[1], "stride_h": s[0],
                   "stride_w": s[1], "pad_top": pad[0], "pad_left": pad[2], "out_h": oh, "out_w": ow}
    elif op.kind == "fully_connected":
        o, n = op.weight_shape
        lo.kernel, lo.layout = "te_fully_connected_s8", "vector in -> vector out; weights (out, in)"
        lo.reason = "classifier"
        lo.args = {"in_n": n, "out_n": o}
    elif op.kind in ("max_pool2d", "mean", "softmax", "pad"):  # ops of imported models
        _choose_tflite_op(op, x, y, lo)
    elif op.kind == "reshape":
        lo.kernel = "memmove" if off[op.inputs[0]] != off[op.output] else "(none)"
        lo.layout = "bytes unchanged"
        lo.reason = "reshape: same bytes, new shape"
        lo.args = {"n": y.nbytes}
    else:  # pragma: no cover - _check_supported filters these
        raise LoweringError(f"codegen: op '{op.name}' of kind '{op.kind}' has no kernel")
    if lo.scratch_type is not None and planned <= 0:
        raise LoweringError(f"codegen: op '{op.name}' ({lo.kernel}) needs scratch but the plan reserved none")
    return lo


# --------------------------------------------------------------------------- per op: numbers
def _bind(g: Graph, op: Op, cname: str, lo: LoweredOp) -> None:
    """Weights in the chosen kernel's layout, requantisation and ADD parameters."""
    t = g.tensors
    x, y = t[op.inputs[0]], t[op.output]
    act = (int(op.attrs.get("act_min", -128)), int(op.attrs.get("act_max", 127)))
    p = op.params
    if op.weight_shape is not None:
        w = p["weight"]
        if lo.kernel == "te_conv_pointwise_s8":
            lo.arrays = [CArray(f"{cname}_w", "int8_t", w.reshape(w.shape[0], -1))]
        elif lo.kernel == "te_conv_winograd3x3_s8":
            lo.arrays = [CArray(f"{cname}_u", "int32_t", transform_weights(w))]
        else:
            lo.arrays = [CArray(f"{cname}_w", "int8_t", w)]
        lo.arrays += _bias_mult_shift(op, cname)
        lo.args["quant"] = {"mult": f"{cname}_mult", "shift": f"{cname}_shift", "in_zp": int(x.zero_point),
                            "out_zp": int(y.zero_point), "act_min": act[0], "act_max": act[1]}
    elif op.kind == "add":
        b = t[op.inputs[1]]
        ap = add_params(x.scale, b.scale, y.scale)
        lo.args["params"] = {
            "a_zp": x.zero_point, "b_zp": b.zero_point, "out_zp": y.zero_point,
            "a_mult": ap.input1_multiplier, "a_shift": ap.input1_shift,
            "b_mult": ap.input2_multiplier, "b_shift": ap.input2_shift,
            "out_mult": ap.output_multiplier, "out_shift": ap.output_shift,
            "left_shift": ap.left_shift, "act_min": act[0], "act_max": act[1]}
    elif op.kind in ("max_pool2d", "mean", "softmax", "pad"):
        _bind_tflite_op(op, x, y, act, lo)
    elif op.kind in ("global_avg_pool", "avg_pool2d"):
        if x.zero_point != y.zero_point or x.scale != y.scale:
            raise LoweringError(f"codegen: op '{op.name}': average pooling needs the same scale and zero "
                                "point in and out (TFLM AVERAGE_POOL_2D)")
        lo.args.update(act_min=act[0], act_max=act[1])


def _choose_tflite_op(op: Op, x, y, lo: LoweredOp) -> None:
    """MAX_POOL_2D, MEAN and SOFTMAX of imported .tflite models (firmware/src/te_pool_softmax.c)."""
    a = op.attrs
    if op.kind == "max_pool2d":
        k, s, pad = a["kernel"], a["stride"], a["padding"]
        lo.kernel, lo.layout, lo.reason = "te_max_pool_s8", "NHWC", "max pool (TFLM MAX_POOL_2D)"
        lo.args = {"in_h": x.shape[0], "in_w": x.shape[1], "c": x.shape[2], "k_h": k[0], "k_w": k[1],
                   "stride_h": s[0], "stride_w": s[1], "pad_top": pad[0], "pad_left": pad[2],
                   "out_h": y.shape[0], "out_w": y.shape[1]}
    elif op.kind == "pad":
        t, b, l, r = a["padding"]
        lo.kernel, lo.layout, lo.reason = "te_pad_s8", "NHWC", "PAD of H and W with the zero point"
        lo.args = {"in_h": x.shape[0], "in_w": x.shape[1], "c": x.shape[2], "pad_top": t, "pad_bottom": b,
                   "pad_left": l, "pad_right": r}
    elif op.kind == "mean":
        lo.kernel, lo.layout = "te_mean_hw_s8", "NHWC pixels x C -> C"
        lo.reason = "MEAN over H and W (TFLM QuantizedMeanOrSum: one multiplier with 1/(H*W) folded in)"
        lo.args = {"n_pixels": x.shape[0] * x.shape[1], "c": x.shape[2]}
    else:
        depth = x.shape[-1]
        lo.kernel, lo.layout = "te_softmax_s8", "rows x depth (last axis)"
        lo.reason = "softmax (TFLM int8: gemmlowp exp and reciprocal; output scale 1/256, zero point -128)"
        lo.args = {"rows": int(np.prod(x.shape)) // depth, "depth": depth}


def _bind_tflite_op(op: Op, x, y, act, lo: LoweredOp) -> None:
    from tinyengine.kernels_ref_tflite import mean_params, softmax_params
    if op.kind == "max_pool2d":
        if x.zero_point != y.zero_point or x.scale != y.scale:
            raise LoweringError(f"codegen: op '{op.name}': max pooling needs the same scale and zero point in "
                                "and out (TFLM MAX_POOL_2D)")
        lo.args.update(act_min=act[0], act_max=act[1])
    elif op.kind == "pad":
        if x.zero_point != y.zero_point or x.scale != y.scale:
            raise LoweringError(f"codegen: op '{op.name}': PAD needs the same scale and zero point in and out")
        lo.args.update(value=int(x.zero_point))
    elif op.kind == "mean":
        p = mean_params(x.scale, x.zero_point, y.scale, y.zero_point, lo.args["n_pixels"])
        lo.args.update(in_zp=int(x.zero_point), out_zp=int(y.zero_point), mult=p.mult, shift=p.shift)
    else:
        p = softmax_params(op.attrs.get("beta", 1.0), x.scale)
        lo.args.update(mult=p.input_multiplier, left_shift=p.input_left_shift, diff_min=p.diff_min)


def _plain(v):
    """JSON-ready copy of a call's arguments (numpy integers -> int)."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return int(v) if isinstance(v, (int, np.integer)) else v


def _geom(xs, ys, k, s, pad) -> dict:
    for name, v in (("input", xs), ("output", ys)):
        if max(v) > 32767:
            raise LoweringError(f"codegen: {name} shape {v} does not fit te_conv_geom_t's int16 fields")
    return {"in_h": xs[0], "in_w": xs[1], "in_c": xs[2], "out_h": ys[0], "out_w": ys[1], "out_c": ys[2],
            "k_h": k[0], "k_w": k[1], "stride_h": s[0], "stride_w": s[1], "pad_top": pad[0],
            "pad_left": pad[1]}


def _bias_mult_shift(op: Op, cname: str) -> list[CArray]:
    p = op.params
    n = len(p["mult"])
    bias = p.get("bias")
    bias = np.zeros(n, np.int32) if bias is None else np.asarray(bias, np.int32)
    return [CArray(f"{cname}_bias", "int32_t", bias),
            CArray(f"{cname}_mult", "int32_t", np.asarray(p["mult"], np.int32)),
            CArray(f"{cname}_shift", "int32_t", np.asarray(p["shift"], np.int32))]


# --------------------------------------------------------------------------- checks
_SUPPORTED = ("conv2d", "depthwise_conv2d", "add", "global_avg_pool", "avg_pool2d", "fully_connected",
              "reshape", "max_pool2d", "mean", "softmax", "pad")


def _check_supported(g: Graph, op: Op, quantised: bool) -> None:
    where = f"codegen: op '{op.name}' ({op.kind})"
    if op.kind not in _SUPPORTED:
        raise LoweringError(f"{where} has no C kernel (supported: {', '.join(_SUPPORTED)})")
    if op.attrs.get("in_regions") or "out_region" in op.attrs:
        raise LoweringError(f"{where} reads a window or writes a region (patch-based inference); the C "
                            "kernels take compact NHWC tensors only, so generate from an unpatched plan")
    for name in (*op.inputs, op.output) if quantised else ():
        tt = g.tensors[name]
        if tt.scale is None or tt.zero_point is None:
            raise LoweringError(f"{where}: tensor '{name}' is not quantised (run tinyengine.quantize first)")
    if quantised and op.weight_shape is not None:
        missing = [k for k in ("weight", "mult", "shift") if k not in op.params]
        if missing:
            raise LoweringError(f"{where} has no int8 {', '.join(missing)} (quantise the graph first)")
    if op.kind == "depthwise_conv2d" and g.tensors[op.inputs[0]].shape[2] != g.tensors[op.output].shape[2]:
        raise LoweringError(f"{where}: depth multiplier != 1 is not supported")
    if op.kind == "add" and g.tensors[op.inputs[0]].shape != g.tensors[op.inputs[1]].shape:
        raise LoweringError(f"{where}: broadcasting add is not supported (shapes "
                            f"{g.tensors[op.inputs[0]].shape} and {g.tensors[op.inputs[1]].shape})")


def _occupied(plan: MemoryPlan, step: int, skip: str) -> list[tuple[int, int]]:
    """Address ranges [lo, hi) in use at ``step`` by every buffer but ``skip``."""
    out = []
    for b in plan.buffers:
        if b.name == skip:
            continue
        for a, e, s in b.intervals:
            if a <= step <= e and s:
                out.append((b.offset, b.offset + s))
    return out


def _place_scratch(g: Graph, plan: MemoryPlan, lo: LoweredOp) -> None:
    """Bind the op's scratch to the plan's buffer, nudging it to its element alignment if needed."""
    if lo.scratch_type is None:
        return
    name = f"{lo.name}.scratch"
    buf = next((b for b in plan.buffers if b.name == name and b.kind == "scratch"), None)
    if buf is None:
        raise LoweringError(f"codegen: the plan has no scratch buffer '{name}' for {lo.kernel}")
    align = SCRATCH_ALIGN[lo.scratch_type]
    off, size = buf.offset, buf.size
    if off % align == 0:
        lo.scratch_offset = off
        return
    busy = _occupied(plan, lo.index, name)
    ups = [align - off % align]
    downs = [-(off % align)]
    for d in ups + downs:
        new = off + d
        if new < 0 or new + size > plan.arena_bytes:
            continue
        if all(new + size <= a or new >= b for a, b in busy):
            lo.scratch_offset, lo.scratch_nudge = new, d
            return
    raise AlignmentError(
        f"codegen: scratch '{name}' ({lo.scratch_type}, {size} B) is planned at offset {off}, which is "
        f"not a multiple of {align}, and the bytes next to it are in use at step {lo.index}. The planner "
        f"must align scratch buffers: plan with PlanOptions(alignment=4) (tinyengine/planner.py _first_fit "
        f"rounds every offset up to that multiple), so that ARENA_BYTES stays the plan's arena size")


def _check_bounds(low: Lowering) -> None:
    """Every access stays inside the arena (a planner or lowering bug would otherwise corrupt memory)."""
    n = low.arena_bytes
    t = low.graph.tensors
    for o in low.ops:
        for name, off in [*o.inputs, o.output]:
            if off < 0 or off + t[name].nbytes > n:
                raise LoweringError(f"codegen: tensor '{name}' at {off}+{t[name].nbytes} lies outside the "
                                    f"{n} B arena")
        if o.scratch_offset is not None and o.scratch_offset + o.scratch_bytes > n:
            raise LoweringError(f"codegen: scratch of '{o.name}' lies outside the arena")


def _c_names(g: Graph) -> dict[str, str]:
    """A unique C identifier per op (``b1.expand`` -> ``b1_expand``)."""
    out, seen = {}, set()
    for op in g.ops:
        base = re.sub(r"[^0-9A-Za-z_]", "_", op.name)
        base = "tew_" + base  # weight symbols are global: keep them in their own namespace
        name, k = base, 1
        while name in seen:
            k += 1
            name = f"{base}_{k}"
        seen.add(name)
        out[op.name] = name
    return out

