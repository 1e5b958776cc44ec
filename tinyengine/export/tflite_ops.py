"""TFLite operators for the ops imported ``.tflite`` and ONNX models bring (``max_pool2d``, ``mean``,
``softmax``), written by ``export.export_tflite`` with its writer: an imported model exports back to an
int8 .tflite that TFLite Micro runs bit-exactly like our reference."""
from __future__ import annotations

import numpy as np

from tinyengine.ir.graph import Op
from tinyengine.numerics.kernels_ref import same_padding
from tinyml_errors import ExportError

VERSIONS = {"MAX_POOL_2D": 2, "MEAN": 2, "SOFTMAX": 2}


def write_op(w, op: Op, fused) -> None:
    """Append ``op`` to the export writer ``w`` (``export._Writer``); ``fused`` maps the fused clamp."""
    fb, g = w.fb, w.g
    src = op.inputs[0]
    if op.kind == "max_pool2d":
        in_shape = g.tensors[src].shape
        k, s = tuple(op.attrs["kernel"]), tuple(op.attrs["stride"])
        pad = tuple(op.attrs.get("padding", (0, 0, 0, 0)))
        if pad == (0, 0, 0, 0):
            mode = "VALID"
        elif pad == same_padding(in_shape[:2], k, s):
            mode = "SAME"
        else:
            raise ExportError(f"export: max pool '{op.name}' has padding {pad}, which is neither TFLite's SAME "
                             "nor VALID")
        opts = fb.Pool2DOptionsT()
        opts.padding = getattr(fb.Padding, mode)
        opts.strideH, opts.strideW = s
        opts.filterHeight, opts.filterWidth = k
        opts.fusedActivationFunction = fused(w, op, op.output)
        w.op("MAX_POOL_2D", [w.activation(src)], [w.activation(op.output)], "Pool2DOptions", opts)
    elif op.kind == "mean":
        axes = w.const_int32(f"{op.name}/axes", np.array([1, 2]))
        opts = fb.ReducerOptionsT()
        opts.keepDims = len(g.tensors[op.output].shape) == 3
        w.op("MEAN", [w.activation(src), axes], [w.activation(op.output)], "ReducerOptions", opts)
    elif op.kind == "softmax":
        opts = fb.SoftmaxOptionsT()
        opts.beta = float(op.attrs.get("beta", 1.0))
        w.op("SOFTMAX", [w.activation(src)], [w.activation(op.output)], "SoftmaxOptions", opts)
    else:  # pragma: no cover - export_tflite only routes these kinds here
        raise ExportError(f"export: op '{op.name}' of kind '{op.kind}' has no TFLite mapping")
