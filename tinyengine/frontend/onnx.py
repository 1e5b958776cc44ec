"""Import a float ONNX model (e.g. from ``torch.onnx.export``) into the engine's graph, then quantise it
with our post-training quantisation (``float_graph``).

Read with the ``onnx`` package (protobuf; nothing executed). One NCHW input of static shape (batch 1).
Supported nodes (``SUPPORTED``): Conv (group 1 or depthwise), BatchNormalization (folded into the Conv
before it), Relu, Clip (0..6 or 0..inf: fused into the op before), Add, GlobalAveragePool, ReduceMean
over H and W, Flatten, Reshape to (1, -1), Gemm, MaxPool, AveragePool, and the pass-throughs Identity,
Dropout and Constant. Anything else is one ModelImportError line naming the node, its index and this list.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyengine.frontend.float_graph import (
    FloatGraphBuilder,
    calibration_images_for,
    fold_bn_like_onnx_export,
    quantize_float_graph,
)
from tinyengine.ir.graph import Graph
from tinyml_errors import ModelImportError

SUPPORTED = ("Conv", "BatchNormalization", "Relu", "Clip", "Add", "GlobalAveragePool", "ReduceMean", "Flatten",
             "Reshape", "Gemm", "MaxPool", "AveragePool", "Identity", "Dropout", "Constant")


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModelImportError(f"reading .onnx needs the PyPI package 'onnx' (pip install onnx): {e}") from None
    return onnx, numpy_helper


class _Reader:
    def __init__(self, path: Path):
        onnx, self.nh = _onnx()
        self.path = path
        try:
            self.model = onnx.load(str(path))
        except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError and others for a bad file
            raise ModelImportError(f"{path}: corrupt or truncated .onnx (protobuf does not parse: "
                                   f"{type(e).__name__})") from None
        g = self.model.graph
        if not g.node:
            raise ModelImportError(f"{path}: not an ONNX model (no graph nodes)")
        self.consts = {i.name: self.nh.to_array(i) for i in g.initializer}
        self.nodes = list(g.node)
        self.consumers: dict[str, list[int]] = {}
        for i, n in enumerate(self.nodes):
            for v in n.input:
                if v:
                    self.consumers.setdefault(v, []).append(i)
        ins = [v for v in g.input if v.name not in self.consts]
        if len(ins) != 1 or len(g.output) != 1:
            raise ModelImportError(f"{path}: {len(ins)} inputs and {len(g.output)} outputs; one of each is supported")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in ins[0].type.tensor_type.shape.dim]
        if len(dims) != 4 or None in dims[1:] or dims[0] not in (1, None):
            raise ModelImportError(f"{path}: input '{ins[0].name}' has shape {dims}; a static N x C x H x W "
                                   "image input (batch 1) is supported")
        self.input, self.output = ins[0].name, g.output[0].name
        self.b = FloatGraphBuilder(path.stem, tuple(dims[1:]), str(path))
        self.env = {self.input: "input"}
        self.skip: set[int] = set()

    def attrs(self, n) -> dict:
        import onnx
        return {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}

    def const(self, name: str, where: str) -> np.ndarray:
        if name not in self.consts:
            raise ModelImportError(f"{where}: input '{name}' must be a constant (initializer or Constant node)")
        return self.consts[name]

    def val(self, name: str, where: str) -> str:
        if name not in self.env:
            raise ModelImportError(f"{where}: input '{name}' is not produced by a supported node before it")
        return self.env[name]

    def set(self, onnx_name: str, t: str) -> None:
        self.env[onnx_name] = t
        self.b.uses[t] = len(self.consumers.get(onnx_name, []))

    def build(self) -> Graph:
        for i, n in enumerate(self.nodes):
            if i in self.skip:
                continue
            where = f"{self.path}: node {i} '{n.name or n.output[0]}' ({n.op_type})"
            if n.op_type not in SUPPORTED:
                raise ModelImportError(f"{where} is not supported; supported: {', '.join(SUPPORTED)}")
            getattr(self, f"_{n.op_type.lower()}")(n, i, where)
        return self.b.finish(self.val(self.output, f"{self.path}: graph output"))

    # ---- nodes
    def _constant(self, n, i, where):
        a = self.attrs(n)
        if "value" not in a:
            raise ModelImportError(f"{where}: only 'value' Constants are supported (got {sorted(a)})")
        self.consts[n.output[0]] = self.nh.to_array(a["value"])

    def _identity(self, n, i, where):
        if n.input[0] in self.consts:
            self.consts[n.output[0]] = self.consts[n.input[0]]
        else:
            self.set(n.output[0], self.val(n.input[0], where))

    _dropout = _identity

    def _conv(self, n, i, where):
        a = self.attrs(n)
        w = self.const(n.input[1], where)
        b = self.const(n.input[2], where) if len(n.input) > 2 and n.input[2] else None
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            raise ModelImportError(f"{where}: dilations {a['dilations']} are not supported (only 1)")
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise ModelImportError(f"{where}: auto_pad {a['auto_pad']!r} is not supported (explicit pads only)")
        out = n.output[0]
        cons = self.consumers.get(out, [])
        if len(cons) == 1 and self.nodes[cons[0]].op_type == "BatchNormalization":
            bn = self.nodes[cons[0]]
            g_, be, m, v = (self.const(x, where) for x in bn.input[1:5])
            w, b = fold_bn_like_onnx_export(w, b, g_, be, m, v, self.attrs(bn).get("epsilon", 1e-5))
            self.skip.add(cons[0])
            out = bn.output[0]
        pads = a.get("pads", [0, 0, 0, 0])
        t = self.b.conv(self.val(n.input[0], where), w, b, a.get("strides", [1, 1]),
                        (pads[0], pads[1], pads[2], pads[3]), int(a.get("group", 1)), where)
        self.set(out, t)

    def _batchnormalization(self, n, i, where):
        raise ModelImportError(f"{where}: a BatchNormalization that does not directly follow a single-use Conv "
                               "cannot be folded")

    def _relu(self, n, i, where):
        self.set(n.output[0], self.b.activation(self.val(n.input[0], where), "relu", where))

    def _clip(self, n, i, where):
        a = self.attrs(n)
        lo = float(self.const(n.input[1], where)) if len(n.input) > 1 and n.input[1] else a.get("min", -np.inf)
        hi = float(self.const(n.input[2], where)) if len(n.input) > 2 and n.input[2] else a.get("max", np.inf)
        if lo == 0.0 and hi == 6.0:
            kind = "relu6"
        elif lo == 0.0 and hi == np.inf:
            kind = "relu"
        else:
            raise ModelImportError(f"{where}: Clip({lo:g}, {hi:g}) is not supported (only 0..6 and 0..inf)")
        self.set(n.output[0], self.b.activation(self.val(n.input[0], where), kind, where))

    def _add(self, n, i, where):
        self.set(n.output[0], self.b.add(self.val(n.input[0], where), self.val(n.input[1], where), where))

    def _globalaveragepool(self, n, i, where):
        self.set(n.output[0], self.b.global_pool(self.val(n.input[0], where), True, where))

    def _reducemean(self, n, i, where):
        a = self.attrs(n)
        axes = a.get("axes")
        if axes is None and len(n.input) > 1:
            axes = self.const(n.input[1], where).tolist()
        if sorted(int(x) % 4 for x in (axes or [])) != [2, 3]:
            raise ModelImportError(f"{where}: ReduceMean over axes {axes}; only over H and W (2, 3) is supported")
        self.set(n.output[0], self.b.global_pool(self.val(n.input[0], where), bool(a.get("keepdims", 1)), where))

    def _flatten(self, n, i, where):
        if int(self.attrs(n).get("axis", 1)) != 1:
            raise ModelImportError(f"{where}: Flatten axis {self.attrs(n)['axis']} is not supported (only 1)")
        self.set(n.output[0], self.b.flatten(self.val(n.input[0], where), where))

    def _reshape(self, n, i, where):
        shape = [int(s) for s in self.const(n.input[1], where).reshape(-1)]
        if len(shape) != 2 or shape[0] not in (1, -1, 0):
            raise ModelImportError(f"{where}: Reshape to {shape} is not supported (only flattening to (1, -1))")
        self.set(n.output[0], self.b.flatten(self.val(n.input[0], where), where))

    def _gemm(self, n, i, where):
        a = self.attrs(n)
        if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0:
            raise ModelImportError(f"{where}: Gemm with transA/alpha/beta other than 0/1/1 is not supported")
        w = self.const(n.input[1], where)
        w = w if a.get("transB", 0) else w.T
        b = self.const(n.input[2], where).reshape(-1) if len(n.input) > 2 and n.input[2] else None
        self.set(n.output[0], self.b.linear(self.val(n.input[0], where), w, b, where))

    def _pool(self, n, where, kind):
        a = self.attrs(n)
        if a.get("ceil_mode", 0):
            raise ModelImportError(f"{where}: ceil_mode=1 is not supported")
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            raise ModelImportError(f"{where}: dilations {a['dilations']} are not supported")
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise ModelImportError(f"{where}: auto_pad {a['auto_pad']!r} is not supported (explicit pads only)")
        pads = a.get("pads", [0, 0, 0, 0])
        if kind == "avg_pool2d" and any(pads) and a.get("count_include_pad", 0):
            raise ModelImportError(f"{where}: padded AveragePool with count_include_pad=1 is not supported (the "
                                   "int8 kernel averages over the taps inside the input)")
        k = a["kernel_shape"]
        t = self.b.pool(self.val(n.input[0], where), kind, k, a.get("strides", [1, 1]),
                        (pads[0], pads[1], pads[2], pads[3]), where)
        self.set(n.output[0], t)

    def _maxpool(self, n, i, where):
        if len(n.output) > 1 and n.output[1]:
            raise ModelImportError(f"{where}: MaxPool with an Indices output is not supported")
        self._pool(n, where, "max_pool2d")

    def _averagepool(self, n, i, where):
        self._pool(n, where, "avg_pool2d")


def import_onnx(path: str | Path) -> Graph:
    """The float graph (BN folded, activations fused) of an ONNX file."""
    p = Path(path)
    if not p.is_file():
        raise ModelImportError(f"{p}: no such file")
    return _Reader(p).build()


def quantize_onnx(path: str | Path, *, calib_data: str = "random", calib: int = 16, seed: int = 0,
                  datasets: dict | None = None) -> Graph:
    """Import and quantise (post-training, ``calib`` calibration images): the int8 graph."""
    if calib < 1:
        raise ModelImportError(f"--calib must be >= 1, got {calib}")
    g = import_onnx(path)
    return quantize_float_graph(g, calibration_images_for(g, calib_data, calib, seed, datasets))
