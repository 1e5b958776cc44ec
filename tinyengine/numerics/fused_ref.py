"""NumPy reference of the fused ops of ``tinyengine.passes.fuse_add``: the two reference kernels composed,
so the fused C kernel is held to exactly what the unfused pair computes."""
from __future__ import annotations

import numpy as np

from tinyengine.ir.graph import Graph, Op
from tinyengine.numerics import kernels_ref as K


def conv_pointwise_add(x: np.ndarray, x_zp: int, w: np.ndarray, bias, mid_zp: int, mult, shift, act_min: int,
                       act_max: int, mid_scale: float, res: np.ndarray, res_zp: int, res_scale: float, out_zp: int,
                       out_scale: float, add_min: int = -128, add_max: int = 127, *,
                       single_rounding: bool = False) -> np.ndarray:
    """``add(conv2d(x) [1x1, stride 1], res)``: the projection (output zero point ``mid_zp``, clamp
    [act_min, act_max], scale ``mid_scale``) summed with ``res`` by TFLM's int8 ADD."""
    mid = K.conv2d(x, x_zp, w, bias, mid_zp, mult, shift, 1, 0, act_min, act_max, single_rounding=single_rounding)
    return K.add(mid, mid_zp, mid_scale, res, res_zp, res_scale, out_zp, out_scale, add_min, add_max,
                 single_rounding=single_rounding)


def run_conv_add(graph: Graph, op: Op, vals, *, single_rounding: bool = False) -> np.ndarray:
    """One ``conv2d_add`` op of a graph (attrs['fused_add'] names the projection's dropped tensor)."""
    t = graph.tensors
    f = op.attrs["fused_add"]
    mid, res, out = t[f["mid"]], t[op.inputs[1]], t[op.output]
    p = op.params
    return conv_pointwise_add(vals[op.inputs[0]], t[op.inputs[0]].zero_point, p["weight"], p["bias"],
                              mid.zero_point, p["mult"], p["shift"], op.attrs.get("act_min", -128),
                              op.attrs.get("act_max", 127), mid.scale, vals[op.inputs[1]], res.zero_point,
                              res.scale, out.zero_point, out.scale, f["act_min"], f["act_max"],
                              single_rounding=single_rounding)
