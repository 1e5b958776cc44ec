"""Post-training int8 quantisation of an imported graph (TFLite conventions).

* Activations: int8, asymmetric, per tensor; (scale, zero point) from the min/max seen on
  calibration data (``calibrate``), widened to include 0 (``requant.choose_qparams``).
* Weights: int8, symmetric, per output channel (zero point 0, values in [-127, 127]).
* Bias: int32 with scale ``s_in * s_w[c]``.
* Requantisation: per channel, ``eff = s_in * s_w[c] / s_out`` in double, turned into an int32
  multiplier and a shift (``requant.quantize_multipliers``); the kernels apply it with
  double rounding (see ``requant`` for the exact arithmetic).
* ReLU6 / ReLU are the clamp ``[act_min, act_max]`` (``requant.activation_range``).
* Average and max pooling and reshape keep their input's scale and zero point (TFLM requires it).
"""
from __future__ import annotations

import numpy as np
import torch

from search_spaces.arch import ArchConfig
from tinyengine.frontend.archnet import import_torch
from tinyengine.ir.graph import Graph
from tinyengine.numerics.requant import (
    activation_range,
    choose_qparams,
    effective_scales,
    quantize_bias,
    quantize_multipliers,
    quantize_weights,
)
from tinyml_errors import ModelImportError


def calibrate(model: torch.nn.Module, data, batch_size: int = 64) -> dict[str, tuple[float, float]]:
    """Min/max of every graph tensor over ``data`` (float NCHW images), model in eval mode."""
    model.eval()
    x = torch.as_tensor(np.asarray(data), dtype=torch.float32)
    if x.ndim != 4:
        raise ModelImportError(f"calibration data must be NCHW images, got shape {tuple(x.shape)}")
    ranges: dict[str, list[float]] = {}
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            for name, t in model.forward_collect(x[i:i + batch_size]).items():
                lo, hi = float(t.min()), float(t.max())
                r = ranges.setdefault(name, [lo, hi])
                r[0], r[1] = min(r[0], lo), max(r[1], hi)
    return {k: (v[0], v[1]) for k, v in ranges.items()}


def quantize_graph(graph: Graph, ranges: dict[str, tuple[float, float]]) -> Graph:
    """Fill in tensor qparams and int8 op params in place (the graph must carry float weights)."""
    t = graph.tensors
    for name in graph.inputs:
        _set_qparams(graph, name, ranges)
    for op in graph.ops:
        if op.kind in ("global_avg_pool", "avg_pool2d", "max_pool2d", "reshape"):  # qparams pass through
            src = t[op.inputs[0]]
            t[op.output].scale, t[op.output].zero_point = src.scale, src.zero_point
        else:
            _set_qparams(graph, op.output, ranges)
        out = t[op.output]
        act = op.attrs.get("activation")
        op.attrs["act_min"], op.attrs["act_max"] = activation_range(act, out.scale, out.zero_point)
        if op.weight_shape is None:
            continue
        if "weight_f" not in op.params:
            raise ModelImportError(f"quantize: op '{op.name}' has no float weights (import the model first)")
        w_f, b_f = op.params["weight_f"], op.params["bias_f"]
        axis = 2 if op.kind == "depthwise_conv2d" else 0
        w_q, s_w = quantize_weights(w_f, axis=axis)
        s_in = t[op.inputs[0]].scale
        mult, shift = quantize_multipliers(effective_scales(s_in, s_w, out.scale))
        op.params.update(weight=w_q, weight_scale=s_w, bias=quantize_bias(b_f, s_in, s_w),
                         mult=mult.astype(np.int32), shift=shift.astype(np.int32))
    return graph


def _set_qparams(graph: Graph, name: str, ranges: dict[str, tuple[float, float]]) -> None:
    if name not in ranges:
        raise ModelImportError(f"quantize: no calibration range for tensor '{name}'")
    lo, hi = ranges[name]
    scale, zp = choose_qparams(lo, hi)
    graph.tensors[name].scale, graph.tensors[name].zero_point = float(scale), int(zp)


def quantize_model(arch: ArchConfig, model: torch.nn.Module, calib_data) -> Graph:
    """Import (BN folded), calibrate and quantise: the int8 graph the engine executes."""
    model.eval()
    g = import_torch(arch, model)
    return quantize_graph(g, calibrate(model, calib_data))
