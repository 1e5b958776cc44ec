"""The bit-exact NumPy reference executor of a quantised graph (the ground truth for the C kernels).

Each op runs the matching TFLite-Micro-semantics kernel of ``kernels_ref``; activations are (H, W, C)
int8, vectors (C,). ``run_graph`` returns every tensor it computed, by name.
"""
from __future__ import annotations

from collections import ChainMap

import numpy as np

from tinyengine.ir.graph import Graph, Op
from tinyengine.numerics import kernels_ref as K
from tinyengine.numerics.requant import dequantize, quantize
from tinyml_errors import GraphError


def _check_quantised(graph: Graph, op: Op) -> None:
    if op.kind == "stream_segment":
        for m in op.attrs["stream"].members:
            _check_quantised(graph, m)
        return
    for name in (*op.inputs, op.output):
        t = graph.tensors[name]
        if t.scale is None or t.zero_point is None:
            raise GraphError(f"run_graph: tensor '{name}' (op '{op.name}') is not quantised")
    if op.weight_shape is not None and "weight" not in op.params:
        raise GraphError(f"run_graph: op '{op.name}' has no int8 weights (quantize the graph first)")


def run_op(graph: Graph, op: Op, vals: dict[str, np.ndarray], *, single_rounding: bool = False) -> np.ndarray:
    t = graph.tensors
    if op.kind == "stream_segment":  # fused row-streamed ops (tinyengine.passes.stream)
        from tinyengine.numerics.stream_ref import run_segment
        return run_segment(graph, op.attrs["stream"], vals, single_rounding=single_rounding)
    if op.kind == "conv2d_add":  # pointwise projection + residual ADD (tinyengine.passes.fuse_add)
        from tinyengine.numerics.fused_ref import run_conv_add
        return run_conv_add(graph, op, vals, single_rounding=single_rounding)
    x = vals[op.inputs[0]]
    zin = t[op.inputs[0]].zero_point
    out = t[op.output]
    lo, hi = op.attrs.get("act_min", -128), op.attrs.get("act_max", 127)
    p = op.params
    if op.kind in ("conv2d", "depthwise_conv2d"):
        fn = K.conv2d if op.kind == "conv2d" else K.depthwise_conv2d
        return fn(x, zin, p["weight"], p["bias"], out.zero_point, p["mult"], p["shift"],
                  op.attrs["stride"], op.attrs["padding"], lo, hi, single_rounding=single_rounding)
    if op.kind == "fully_connected":
        return K.fully_connected(x.reshape(-1), zin, p["weight"], p["bias"], out.zero_point, p["mult"],
                                 p["shift"], lo, hi, single_rounding=single_rounding)
    if op.kind == "add":
        a, b = (t[n] for n in op.inputs)
        return K.add(x, a.zero_point, a.scale, vals[op.inputs[1]], b.zero_point, b.scale,
                     out.zero_point, out.scale, lo, hi, single_rounding=single_rounding)
    if op.kind == "global_avg_pool":
        return K.global_avg_pool(x, lo, hi).reshape(out.shape)
    if op.kind == "avg_pool2d":
        return K.avg_pool2d(x, op.attrs["kernel"], op.attrs["stride"], op.attrs["padding"], lo, hi)
    if op.kind == "pad":
        return K.pad(x, op.attrs["padding"], zin)
    if op.kind == "reshape":
        return x.reshape(out.shape)
    if op.kind in ("max_pool2d", "mean", "softmax"):  # ops of imported .tflite models
        from tinyengine.numerics.kernels_ref_tflite import run_tflite_op
        return run_tflite_op(graph, op, x)
    raise GraphError(f"run_graph: op '{op.name}' of kind '{op.kind}' is not supported")


def run_graph(graph: Graph, x: np.ndarray, *, single_rounding: bool = False) -> dict[str, np.ndarray]:
    """Execute the int8 graph on one int8 input (H, W, C); returns every tensor by name."""
    inp = graph.tensors[graph.inputs[0]]
    if not isinstance(x, np.ndarray) or x.dtype != np.int8 or tuple(x.shape) != tuple(inp.shape):
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, np.ndarray) else type(x).__name__
        raise GraphError(f"run_graph: input '{inp.name}' must be int8 of shape {inp.shape}, got {got}")
    vals = {inp.name: x}
    for op in graph.ops:
        _check_quantised(graph, op)
        y = run_op(graph, op, _windows(op, vals), single_rounding=single_rounding)
        if tuple(y.shape) != tuple(graph.write_shape(op)):
            raise AssertionError(f"run_graph: op '{op.name}' produced {y.shape}, "
                                 f"expected {graph.write_shape(op)}")
        _store(graph, op, y, vals)
    return vals


# ---- regions (patch-based inference, tinyengine.passes.patch): windowed reads and tile writes
def _windows(op: Op, vals: dict[str, np.ndarray]):
    """``vals`` as ``op`` sees it: each input cut to ``attrs['in_regions']`` (a view, no copy)."""
    regs = op.attrs.get("in_regions")
    if not regs:
        return vals
    cut = {name: vals[name][r[0]:r[1], r[2]:r[3]] for name, r in zip(op.inputs, regs) if r is not None}
    return ChainMap(cut, vals)


def _store(graph: Graph, op: Op, y: np.ndarray, vals: dict[str, np.ndarray]) -> None:
    """Keep ``op``'s result; a region writer fills its ``attrs['out_region']`` of the output tensor."""
    r = op.attrs.get("out_region")
    if r is None:
        vals[op.output] = y
        return
    if op.output not in vals:
        vals[op.output] = np.zeros(graph.tensors[op.output].shape, dtype=y.dtype)
    vals[op.output][r[0]:r[1], r[2]:r[3]] = y


def quantize_input(graph: Graph, x_float: np.ndarray) -> np.ndarray:
    """Float (C, H, W) or (H, W, C) image -> the int8 input tensor (H, W, C)."""
    inp = graph.tensors[graph.inputs[0]]
    x = np.asarray(x_float, dtype=np.float32)
    if x.ndim == 3 and x.shape[0] == inp.shape[2] and x.shape != tuple(inp.shape):
        x = x.transpose(1, 2, 0)
    if tuple(x.shape) != tuple(inp.shape):
        raise GraphError(f"quantize_input: expected an image of shape {inp.shape} (HWC) or CHW, got {x.shape}")
    return quantize(x, inp.scale, inp.zero_point)


def dequantize_output(graph: Graph, q: np.ndarray, name: str | None = None) -> np.ndarray:
    t = graph.tensors[name or graph.outputs[0]]
    return dequantize(q, t.scale, t.zero_point)


def predict(graph: Graph, images: np.ndarray) -> np.ndarray:
    """int8 logits (dequantised) for a batch of float NCHW images."""
    out = []
    for img in images:
        vals = run_graph(graph, quantize_input(graph, img))
        out.append(dequantize_output(graph, vals[graph.outputs[0]]))
    return np.stack(out)
