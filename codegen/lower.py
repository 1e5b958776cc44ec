"""Lowering of a quantised, planned graph to kernel calls: one ``te_*`` call per op, fixed geometry,
fixed arena offsets (the plan's), weights in the layout each kernel reads.

Kernel choice (the registry, ``tinyengine/kernels/registry.py``; C in ``firmware/include/tinyengine.h``):

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

from codegen.stem import stem_weights
from codegen.winograd import transform_weights
from tinyengine.ir.graph import Graph, Op
from tinyengine.kernels.choice import AlignmentError, KernelChoice, check_plan, choose
from tinyengine.kernels.specialize import SpecDecision
from tinyengine.numerics.kernels_ref import add_params
from tinyengine.planner import MemoryPlan
from tinyml_errors import LoweringError

__all__ = ["AlignmentError", "CArray", "LoweredOp", "Lowering", "LoweringError", "lower"]


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
class LoweredOp(KernelChoice):
    """The registry's choice for one op plus its numbers: weights in the kernel's layout, quantisation."""

    arrays: list[CArray] = field(default_factory=list)
    specialisation: SpecDecision | None = None  # --specialize (tinyengine/kernels/specialize.py)

    def weight_bytes(self) -> int:
        return sum(a.nbytes for a in self.arrays)

    def summary(self) -> dict:
        d = super().summary()
        if self.specialisation is not None:
            d["specialisation"] = self.specialisation.summary()
        return d


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
def lower(plan: MemoryPlan, *, winograd: bool = False) -> Lowering:
    """Bind the registry's kernel for every op of ``plan.graph`` (the graph that runs) to the plan's
    offsets, with its weights, requantisation and call arguments."""
    graph = check_plan(plan)
    names = _c_names(graph)
    ops = []
    for i, op in enumerate(graph.ops):
        _check_quantised(graph, op)
        lo = choose(plan, i, winograd=winograd, cls=LoweredOp)
        _bind(graph, op, names[op.name], lo)
        if op.kind == "stream_segment":  # fused row-streamed ops: the loop and every member's weights
            from codegen.stream_lower import bind_segment
            bind_segment(plan, op, names[op.name], lo)
        ops.append(lo)
    off = plan.tensor_offset
    inp, outp = graph.inputs[0], graph.outputs[0]
    low = Lowering(graph.name, graph, plan, ops, plan.arena_bytes, (inp, off[inp]), (outp, off[outp]),
                   winograd)
    _check_bounds(low)
    return low


# --------------------------------------------------------------------------- per op: numbers
def _bind(g: Graph, op: Op, cname: str, lo: LoweredOp) -> None:
    """Weights in the chosen kernel's layout, requantisation and ADD parameters."""
    t = g.tensors
    x, y = t[op.inputs[0]], t[op.output]
    act = (int(op.attrs.get("act_min", -128)), int(op.attrs.get("act_max", 127)))
    p = op.params
    layout = lo.spec.weights
    if op.weight_shape is not None:
        w = p["weight"]
        if layout == "oi":
            lo.arrays = [CArray(f"{cname}_w", "int8_t", w.reshape(w.shape[0], -1))]
        elif layout == "oi16":  # te_conv_pointwise_w16_s8 (gen --pw-weights): int16 in the tile's order
            from codegen.pw_weights import pw16_weights
            lo.arrays = [CArray(f"{cname}_w", "int32_t", pw16_weights(w))]
        elif layout == "winograd":
            lo.arrays = [CArray(f"{cname}_u", "int32_t", transform_weights(w))]
        elif layout == "stem":  # te_conv_stem_s8: rows zero-padded to a multiple of 4, int16 pairs
            lo.arrays = [CArray(f"{cname}_w", "int32_t", stem_weights(w))]
        else:
            lo.arrays = [CArray(f"{cname}_w", "int8_t", w)]
        lo.arrays += _bias_mult_shift(op, cname)
        yq = t[op.attrs["fused_add"]["mid"]] if op.kind == "conv2d_add" else y  # the conv's own output
        lo.args["quant"] = {"mult": f"{cname}_mult", "shift": f"{cname}_shift", "in_zp": int(x.zero_point),
                            "out_zp": int(yq.zero_point), "act_min": act[0], "act_max": act[1]}
    if op.kind == "conv2d_add":  # the fused ADD: input a is the projection's output, b the residual
        f = op.attrs["fused_add"]
        _bind_add(t[f["mid"]], t[op.inputs[1]], y, (int(f["act_min"]), int(f["act_max"])), lo)
    elif op.kind == "add":
        _bind_add(x, t[op.inputs[1]], y, act, lo)
    elif op.kind in ("max_pool2d", "mean", "softmax", "pad"):
        _bind_tflite_op(op, x, y, act, lo)
    elif op.kind in ("global_avg_pool", "avg_pool2d"):
        if x.zero_point != y.zero_point or x.scale != y.scale:
            raise LoweringError(f"codegen: op '{op.name}': average pooling needs the same scale and zero "
                                "point in and out (TFLM AVERAGE_POOL_2D)")
        lo.args.update(act_min=act[0], act_max=act[1])


def _bind_add(x, b, y, act, lo: LoweredOp) -> None:
    """TFLM ADD parameters of ``x`` + ``b`` -> ``y`` (te_add_params_t)."""
    ap = add_params(x.scale, b.scale, y.scale)
    lo.args["params"] = {
        "a_zp": x.zero_point, "b_zp": b.zero_point, "out_zp": y.zero_point,
        "a_mult": ap.input1_multiplier, "a_shift": ap.input1_shift,
        "b_mult": ap.input2_multiplier, "b_shift": ap.input2_shift,
        "out_mult": ap.output_multiplier, "out_shift": ap.output_shift,
        "left_shift": ap.left_shift, "act_min": act[0], "act_max": act[1]}


def _bind_tflite_op(op: Op, x, y, act, lo: LoweredOp) -> None:
    from tinyengine.numerics.kernels_ref_tflite import mean_params, softmax_params
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


def _bias_mult_shift(op: Op, cname: str) -> list[CArray]:
    p = op.params
    n = len(p["mult"])
    bias = p.get("bias")
    bias = np.zeros(n, np.int32) if bias is None else np.asarray(bias, np.int32)
    return [CArray(f"{cname}_bias", "int32_t", bias),
            CArray(f"{cname}_mult", "int32_t", np.asarray(p["mult"], np.int32)),
            CArray(f"{cname}_shift", "int32_t", np.asarray(p["shift"], np.int32))]


# --------------------------------------------------------------------------- checks
def _check_quantised(g: Graph, op: Op) -> None:
    where = f"codegen: op '{op.name}' ({op.kind})"
    for name in (*op.inputs, op.output):
        tt = g.tensors[name]
        if tt.scale is None or tt.zero_point is None:
            raise LoweringError(f"{where}: tensor '{name}' is not quantised (run tinyengine.frontend.quantize first)")
    if op.weight_shape is not None:
        missing = [k for k in ("weight", "mult", "shift") if k not in op.params]
        if missing:
            raise LoweringError(f"{where} has no int8 {', '.join(missing)} (quantise the graph first)")


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
