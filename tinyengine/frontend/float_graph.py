"""Float models of other frameworks (ONNX, PyTorch ``nn.Module``) as the engine's graph, then our
post-training quantisation: the shared half of ``onnx_import`` and ``torch_import``.

``FloatGraphBuilder`` takes NCHW-framework layers one at a time and writes engine ops (NHWC tensors,
float weights ``weight_f``/``bias_f`` in the engine layouts). BatchNorm is folded into the conv before
it with PyTorch's ONNX-export arithmetic in float32 (``s = gamma / sqrt(var + eps)``, ``w' = w * s``,
``b' = (b - mean) * s + beta``), so a model imported directly and its ``torch.onnx.export`` file give
the same float weights, bit for bit. ReLU/ReLU6/Clip(0, 6) fuse into the op that produces their input.
A Flatten of an (H, W, C) map is an NHWC reshape; the FC after it gets its weight columns permuted
from PyTorch's (C, H, W) order. Op and tensor names follow the schedule (``op{i}_{kind}``), so two
importers that see the same layers produce the same graph.

``run_float`` executes such a graph in float (PyTorch functional ops, batched), ``quantize_float_graph``
calibrates every tensor's range on images and quantises with ``tinyengine.frontend.quantize.quantize_graph``.
"""
from __future__ import annotations

import numpy as np

from tinyengine.ir.graph import Graph, Op, Tensor
from tinyml_errors import ModelImportError

FOLDABLE = ("conv2d", "depthwise_conv2d", "fully_connected", "add")


def fold_bn_like_onnx_export(w: np.ndarray, b: np.ndarray | None, gamma, beta, mean, var, eps: float):
    """Conv weights (OIHW) and bias with BatchNorm folded in, float32 arithmetic as PyTorch's ONNX
    exporter does it (torch ops on float32 tensors)."""
    import torch
    with torch.no_grad():
        tw = torch.as_tensor(np.asarray(w, np.float32))
        tb = torch.zeros(tw.shape[0]) if b is None else torch.as_tensor(np.asarray(b, np.float32))
        g, bt, m, v = (torch.as_tensor(np.asarray(a, np.float32)) for a in (gamma, beta, mean, var))
        s = g / torch.sqrt(v + float(eps))
        return (tw * s.reshape(-1, 1, 1, 1)).numpy(), ((tb - m) * s + bt).numpy()


class FloatGraphBuilder:
    """Accumulates engine ops for a float model; ``where`` prefixes every error message."""

    def __init__(self, name: str, input_chw: tuple[int, int, int], where: str):
        c, h, w = (int(d) for d in input_chw)
        self.where = where
        self.g = Graph(name, {"input": Tensor("input", (h, w, c))}, [], ["input"], [])
        self.flat_from: dict[str, tuple[int, int, int]] = {}  # flattened tensor -> its (H, W, C)
        self.uses: dict[str, int] = {}  # how many source nodes read each engine tensor (for fusion)

    def _new(self, kind: str, inputs: tuple[str, ...], shape: tuple[int, ...], attrs: dict,
             params: dict | None = None, role: str = "") -> str:
        name = f"op{len(self.g.ops)}_{kind}"
        self.g.tensors[name] = Tensor(name, tuple(int(d) for d in shape))
        self.g.ops.append(Op(name, kind, inputs, name, attrs, role, None, params or {}))
        return name

    def shape(self, t: str) -> tuple[int, ...]:
        return self.g.tensors[t].shape

    def conv(self, x: str, w_oihw: np.ndarray, b: np.ndarray | None, stride, pads, group: int,
             what: str) -> str:
        """pads = (top, left, bottom, right) as ONNX writes them."""
        h, wd, cin = self.shape(x)
        cout, cin_g, kh, kw = w_oihw.shape
        t, l, bo, r = (int(p) for p in pads)
        sh, sw = (int(s) for s in stride)
        ho, wo = (h + t + bo - kh) // sh + 1, (wd + l + r - kw) // sw + 1
        if ho < 1 or wo < 1:
            raise ModelImportError(f"{self.where}: {what}: kernel {kh}x{kw} larger than the padded input")
        bias = np.zeros(cout, np.float32) if b is None else np.asarray(b, np.float32)
        attrs = {"kernel": (kh, kw), "stride": (sh, sw), "padding": (t, bo, l, r), "activation": None,
                 "bias": True}
        if group == 1 and cin_g == cin:
            attrs["weight_shape"] = (cout, kh, kw, cin)
            wf = np.ascontiguousarray(np.asarray(w_oihw, np.float32).transpose(0, 2, 3, 1))
            return self._new("conv2d", (x,), (ho, wo, cout), attrs, {"weight_f": wf, "bias_f": bias},
                             "stem" if not self.g.ops else "conv")
        if group == cin == cout and cin_g == 1:
            attrs["weight_shape"] = (kh, kw, cin)
            wf = np.ascontiguousarray(np.asarray(w_oihw, np.float32)[:, 0].transpose(1, 2, 0))
            return self._new("depthwise_conv2d", (x,), (ho, wo, cout), attrs, {"weight_f": wf, "bias_f": bias},
                             "depthwise")
        raise ModelImportError(f"{self.where}: {what}: grouped convolution (group {group}, {cin} -> {cout} "
                               "channels) is not supported; only group 1 and depthwise (group = channels, "
                               "multiplier 1)")

    def activation(self, x: str, kind: str, what: str) -> str:
        """Fuse ReLU/ReLU6 into the op producing ``x`` (its only reader must be this activation)."""
        op = next((o for o in self.g.ops if o.output == x), None)
        if op is None or op.kind not in FOLDABLE or op.attrs.get("activation") is not None or self.uses.get(x, 0) > 1:
            raise ModelImportError(f"{self.where}: {what}: a {kind} that cannot be fused into the op before it "
                                   "(it must directly follow a single-use Conv, Gemm/Linear or Add)")
        op.attrs["activation"] = kind
        return x

    def add(self, a: str, b: str, what: str) -> str:
        if self.shape(a) != self.shape(b):
            raise ModelImportError(f"{self.where}: {what}: broadcasting Add ({self.shape(a)} + {self.shape(b)}) "
                                   "is not supported")
        return self._new("add", (a, b), self.shape(a), {"activation": None}, role="add")

    def pool(self, x: str, kind: str, kernel, stride, pads, what: str) -> str:
        h, w, c = self.shape(x)
        kh, kw = (int(k) for k in kernel)
        sh, sw = (int(s) for s in stride)
        t, l, bo, r = (int(p) for p in pads)
        ho, wo = (h + t + bo - kh) // sh + 1, (w + l + r - kw) // sw + 1
        if ho < 1 or wo < 1:
            raise ModelImportError(f"{self.where}: {what}: window larger than the padded input")
        return self._new(kind, (x,), (ho, wo, c), {"kernel": (kh, kw), "stride": (sh, sw),
                                                    "padding": (t, bo, l, r), "activation": None}, role="pool")

    def global_pool(self, x: str, keepdims: bool, what: str) -> str:
        h, w, c = self.shape(x)
        return self._new("global_avg_pool", (x,), (1, 1, c) if keepdims else (c,), {"kernel": (h, w)},
                         role="pool")

    def flatten(self, x: str, what: str) -> str:
        s = self.shape(x)
        n = int(np.prod(s))
        if len(s) == 1:
            return x
        y = self._new("reshape", (x,), (n,), {}, role="reshape")
        if len(s) == 3 and s[0] * s[1] > 1:
            self.flat_from[y] = s
        return y

    def linear(self, x: str, w: np.ndarray, b: np.ndarray | None, what: str) -> str:
        n_in = int(np.prod(self.shape(x)))
        w = np.asarray(w, np.float32)
        if w.ndim != 2 or w.shape[1] != n_in:
            raise ModelImportError(f"{self.where}: {what}: weights {w.shape} do not take the {n_in} inputs")
        if len(self.shape(x)) != 1:
            x = self.flatten(x, what)
        if x in self.flat_from:  # PyTorch flattens (C, H, W); the engine's tensor is (H, W, C)
            h, wd, c = self.flat_from[x]
            w = w.reshape(-1, c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
        bias = np.zeros(w.shape[0], np.float32) if b is None else np.asarray(b, np.float32)
        return self._new("fully_connected", (x,), (w.shape[0],),
                         {"weight_shape": tuple(w.shape), "bias": True, "activation": None},
                         {"weight_f": np.ascontiguousarray(w), "bias_f": bias}, role="classifier")

    def finish(self, out: str) -> Graph:
        self.g.outputs.append(out)
        try:
            self.g.validate()
        except ValueError as e:
            raise ModelImportError(f"{self.where}: {e}") from None
        return self.g


# --------------------------------------------------------------------------- float execution
def _t(a: np.ndarray):
    import torch
    return torch.from_numpy(np.array(a, dtype=np.float32, copy=True))


def run_float(graph: Graph, x_nchw: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of a float graph for a batch of NCHW images (tensors NHWC / (N, C))."""
    import torch
    import torch.nn.functional as F

    vals = {graph.inputs[0]: torch.as_tensor(np.asarray(x_nchw, np.float32)).permute(0, 2, 3, 1)}
    with torch.no_grad():
        for op in graph.ops:
            x = vals[op.inputs[0]]
            a = op.attrs
            if op.kind in ("conv2d", "depthwise_conv2d"):
                w = _t(op.params["weight_f"])
                w = w.permute(0, 3, 1, 2) if op.kind == "conv2d" else w.permute(2, 0, 1).unsqueeze(1)
                t, b, l, r = a["padding"]
                y = F.conv2d(F.pad(x.permute(0, 3, 1, 2), (l, r, t, b)), w, _t(op.params["bias_f"]),
                             a["stride"], groups=1 if op.kind == "conv2d" else w.shape[0]).permute(0, 2, 3, 1)
            elif op.kind == "fully_connected":
                y = x.reshape(x.shape[0], -1) @ _t(op.params["weight_f"]).T \
                    + _t(op.params["bias_f"])
            elif op.kind == "add":
                y = x + vals[op.inputs[1]]
            elif op.kind == "global_avg_pool":
                y = x.mean((1, 2), keepdim=len(graph.tensors[op.output].shape) == 3)
            elif op.kind in ("avg_pool2d", "max_pool2d"):
                t, b, l, r = a["padding"]
                xc = x.permute(0, 3, 1, 2)
                if op.kind == "max_pool2d":
                    y = F.max_pool2d(F.pad(xc, (l, r, t, b), value=float("-inf")), a["kernel"], a["stride"])
                else:  # average of the taps inside the input (TFLite's count), as the int8 kernel does
                    ones = F.pad(torch.ones_like(xc[:, :1]), (l, r, t, b))
                    s = F.avg_pool2d(F.pad(xc, (l, r, t, b)), a["kernel"], a["stride"], divisor_override=1)
                    y = s / F.avg_pool2d(ones, a["kernel"], a["stride"], divisor_override=1)
                y = y.permute(0, 2, 3, 1)
            elif op.kind == "reshape":
                y = x.reshape(x.shape[0], *graph.tensors[op.output].shape)
            else:
                raise ModelImportError(f"run_float: op '{op.name}' ({op.kind}) has no float implementation")
            act = a.get("activation")
            if act == "relu":
                y = torch.clamp(y, min=0.0)
            elif act == "relu6":
                y = torch.clamp(y, 0.0, 6.0)
            vals[op.output] = y
    return {k: v.numpy() for k, v in vals.items()}


def calibration_ranges(graph: Graph, images: np.ndarray, batch: int = 32) -> dict[str, tuple[float, float]]:
    """(min, max) of every tensor over ``images`` (float NCHW)."""
    ranges: dict[str, list[float]] = {}
    for i in range(0, len(images), batch):
        for name, v in run_float(graph, images[i:i + batch]).items():
            lo, hi = float(v.min()), float(v.max())
            r = ranges.setdefault(name, [lo, hi])
            r[0], r[1] = min(r[0], lo), max(r[1], hi)
    return {k: (v[0], v[1]) for k, v in ranges.items()}


def calibration_images_for(graph: Graph, calib_data: str, n: int, seed: int, datasets: dict | None = None) -> np.ndarray:
    """``n`` float NCHW images for the graph's input: random in [0, 1), an .npy file, or a named data set
    whose loader ``datasets[name](h, w, c, n)`` the caller provides (the engine imports no data sets)."""
    from pathlib import Path
    h, w, c = graph.tensors[graph.inputs[0]].shape
    if calib_data == "random":
        return np.random.default_rng(seed).random((n, c, h, w), dtype=np.float32)
    if datasets and calib_data in datasets:
        return np.asarray(datasets[calib_data](h, w, c, n), dtype=np.float32)
    p = Path(calib_data)
    if p.suffix != ".npy" or not p.is_file():
        names = ", ".join(["'random'", *(f"'{k}'" for k in (datasets or {}))])
        raise ModelImportError(f"--calib-data {calib_data}: give {names} or an existing .npy file")
    x = np.load(p, allow_pickle=False)
    if x.ndim != 4 or x.shape[1:] != (c, h, w):
        raise ModelImportError(f"--calib-data {calib_data}: shape {x.shape}, the model takes (N, {c}, {h}, {w})")
    return x[:n].astype(np.float32)


def quantize_float_graph(graph: Graph, images: np.ndarray) -> Graph:
    """Calibrate on ``images`` and quantise in place (our TFLite-convention PTQ); returns the graph."""
    from tinyengine.frontend.quantize import quantize_graph
    return quantize_graph(graph, calibration_ranges(graph, images))
