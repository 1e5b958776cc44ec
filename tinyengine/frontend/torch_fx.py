"""Import a float PyTorch ``nn.Module`` into the engine's graph through ``torch.fx`` (symbolic tracing),
then quantise it with our post-training quantisation (``float_graph``): the same graph, op for op and
bit for bit, as importing its ``torch.onnx.export`` file with ``onnx_import``.

Supported (``SUPPORTED``): modules Conv2d (group 1 or depthwise), BatchNorm2d (folded into the Conv2d
before it), ReLU, ReLU6, Hardtanh(0, 6), Linear, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), Flatten,
Dropout, Identity; functions/methods ``+`` / ``torch.add``, ``F.relu``/``F.relu6``, ``torch.flatten``,
``.flatten``/``.view``/``.reshape`` to (N, -1), ``.mean((2, 3))``, ``F.adaptive_avg_pool2d(x, 1)``.
"""
from __future__ import annotations

import operator

import numpy as np

from tinyengine.frontend.float_graph import (
    FloatGraphBuilder,
    calibration_images_for,
    fold_bn_like_onnx_export,
    quantize_float_graph,
)
from tinyengine.ir.graph import Graph
from tinyml_errors import ModelImportError

SUPPORTED = ("Conv2d", "BatchNorm2d", "ReLU", "ReLU6", "Hardtanh(0, 6)", "Linear", "MaxPool2d", "AvgPool2d",
             "AdaptiveAvgPool2d(1)", "Flatten", "Dropout", "Identity", "add", "relu", "relu6", "flatten",
             "view/reshape(N, -1)", "mean((2, 3))", "adaptive_avg_pool2d(x, 1)")


def _np(t) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().numpy().astype(np.float32)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


class _Tracer:
    def __init__(self, module, input_chw: tuple[int, int, int], name: str):
        import torch
        import torch.fx
        self.torch = torch
        self.nn = torch.nn
        self.m = module.eval()
        try:
            self.gm = torch.fx.symbolic_trace(self.m)
        except Exception as e:  # noqa: BLE001 - data-dependent control flow and the like
            raise ModelImportError(f"{name}: torch.fx cannot trace the module ({type(e).__name__}: "
                                   f"{str(e).splitlines()[0][:200]})") from None
        self.nodes = list(self.gm.graph.nodes)
        self.b = FloatGraphBuilder(name, input_chw, name)
        self.env: dict = {}
        self.skip: set = set()
        self.name = name

    def mod(self, n):
        return self.gm.get_submodule(n.target)

    def set(self, n, t: str) -> None:
        self.env[n] = t
        self.b.uses[t] = len(n.users)

    def val(self, a, where: str) -> str:
        if a not in self.env:
            raise ModelImportError(f"{where}: argument {a} is not produced by a supported layer before it")
        return self.env[a]

    def build(self) -> Graph:
        F = self.torch.nn.functional
        nn = self.nn
        placeholders = [n for n in self.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise ModelImportError(f"{self.name}: forward takes {len(placeholders)} inputs; one image is supported")
        out = None
        for i, n in enumerate(self.nodes):
            if n in self.skip:
                continue
            where = f"{self.name}: node {i} '{n.name}'"
            if n.op == "placeholder":
                self.env[n] = "input"
                self.b.uses["input"] = len(n.users)
            elif n.op == "output":
                out = n.args[0]
            elif n.op == "call_module":
                self._module(n, self.mod(n), where, nn)
            elif n.op in ("call_function", "call_method"):
                self._function(n, where, F)
            else:
                raise ModelImportError(f"{where} ({n.op} {n.target}) is not supported; supported: "
                                       f"{', '.join(SUPPORTED)}")
        if isinstance(out, (tuple, list)):
            if len(out) != 1:
                raise ModelImportError(f"{self.name}: the module returns {len(out)} tensors; one is supported")
            out = out[0]
        return self.b.finish(self.val(out, f"{self.name}: output"))

    def _module(self, n, m, where, nn):
        where = f"{where} ({type(m).__name__})"
        x = self.val(n.args[0], where)
        if isinstance(m, nn.Conv2d):
            if m.padding_mode != "zeros" or isinstance(m.padding, str) or _pair(m.dilation) != (1, 1):
                raise ModelImportError(f"{where}: padding mode '{m.padding_mode}', padding {m.padding!r} or "
                                       f"dilation {m.dilation} is not supported (zeros, explicit, 1)")
            w, b = _np(m.weight), _np(m.bias)
            out_node = n
            users = list(n.users)
            if len(users) == 1 and users[0].op == "call_module" and isinstance(self.mod(users[0]), nn.BatchNorm2d):
                bn = self.mod(users[0])
                w, b = fold_bn_like_onnx_export(w, b, _np(bn.weight) if bn.affine else np.ones(bn.num_features),
                                                _np(bn.bias) if bn.affine else np.zeros(bn.num_features),
                                                _np(bn.running_mean), _np(bn.running_var), bn.eps)
                self.skip.add(users[0])
                out_node = users[0]
            p = _pair(m.padding)
            self.set(out_node, self.b.conv(x, w, b, _pair(m.stride), (p[0], p[1], p[0], p[1]), m.groups, where))
        elif isinstance(m, nn.BatchNorm2d):
            raise ModelImportError(f"{where}: a BatchNorm2d that does not directly follow a single-use Conv2d "
                                   "cannot be folded")
        elif isinstance(m, nn.ReLU):
            self.set(n, self.b.activation(x, "relu", where))
        elif isinstance(m, nn.ReLU6) or (isinstance(m, nn.Hardtanh) and (m.min_val, m.max_val) == (0.0, 6.0)):
            self.set(n, self.b.activation(x, "relu6", where))
        elif isinstance(m, nn.Linear):
            self.set(n, self.b.linear(x, _np(m.weight), _np(m.bias), where))
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            if m.ceil_mode or (isinstance(m, nn.MaxPool2d) and _pair(m.dilation) != (1, 1)):
                raise ModelImportError(f"{where}: ceil_mode or dilation is not supported")
            if isinstance(m, nn.AvgPool2d) and any(_pair(m.padding)) and m.count_include_pad:
                raise ModelImportError(f"{where}: padded AvgPool2d with count_include_pad=True is not supported")
            p = _pair(m.padding)
            k = _pair(m.kernel_size)
            s = _pair(m.stride if m.stride is not None else m.kernel_size)
            kind = "max_pool2d" if isinstance(m, nn.MaxPool2d) else "avg_pool2d"
            self.set(n, self.b.pool(x, kind, k, s, (p[0], p[1], p[0], p[1]), where))
        elif isinstance(m, nn.AdaptiveAvgPool2d) and _pair(m.output_size) == (1, 1):
            self.set(n, self.b.global_pool(x, True, where))
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1:
                raise ModelImportError(f"{where}: Flatten(start_dim={m.start_dim}) is not supported (only 1)")
            self.set(n, self.b.flatten(x, where))
        elif isinstance(m, (nn.Dropout, nn.Identity)):
            self.set(n, x)
        else:
            raise ModelImportError(f"{where} is not supported; supported: {', '.join(SUPPORTED)}")

    def _function(self, n, where, F):
        torch = self.torch
        t = n.target
        label = t if isinstance(t, str) else getattr(t, "__name__", str(t))
        where = f"{where} ({label})"
        args = n.args
        if t in (operator.add, torch.add) or t == "add":
            self.set(n, self.b.add(self.val(args[0], where), self.val(args[1], where), where))
        elif t in (F.relu, torch.relu) or t == "relu":
            self.set(n, self.b.activation(self.val(args[0], where), "relu", where))
        elif t is F.relu6:
            self.set(n, self.b.activation(self.val(args[0], where), "relu6", where))
        elif t is torch.flatten or t == "flatten":
            start = args[1] if len(args) > 1 else n.kwargs.get("start_dim", 0 if t is torch.flatten else 0)
            if start != 1:
                raise ModelImportError(f"{where}: flatten from dim {start} is not supported (only 1)")
            self.set(n, self.b.flatten(self.val(args[0], where), where))
        elif t in ("view", "reshape"):
            shape = args[1:] if not isinstance(args[1], (tuple, list)) else tuple(args[1])
            if len(shape) != 2 or shape[1] != -1:
                raise ModelImportError(f"{where}: {t}{tuple(shape)} is not supported (only (N, -1))")
            self.set(n, self.b.flatten(self.val(args[0], where), where))
        elif t == "mean" or t is torch.mean:
            dims = args[1] if len(args) > 1 else n.kwargs.get("dim")
            keep = n.kwargs.get("keepdim", args[2] if len(args) > 2 else False)
            if sorted(int(d) % 4 for d in (dims if isinstance(dims, (tuple, list)) else [dims])) != [2, 3]:
                raise ModelImportError(f"{where}: mean over {dims} is not supported (only over H and W: (2, 3))")
            self.set(n, self.b.global_pool(self.val(args[0], where), bool(keep), where))
        elif t is F.adaptive_avg_pool2d and _pair(args[1]) == (1, 1):
            self.set(n, self.b.global_pool(self.val(args[0], where), True, where))
        else:
            raise ModelImportError(f"{where} is not supported; supported: {', '.join(SUPPORTED)}")


def import_module(module, input_chw: tuple[int, int, int], name: str = "model") -> Graph:
    """The float graph (BN folded, activations fused) of ``module`` for a 1 x C x H x W input."""
    return _Tracer(module, input_chw, name).build()


def quantize_module(module, input_chw: tuple[int, int, int], *, name: str = "model", calib_data: str = "random",
                    calib: int = 16, seed: int = 0, datasets: dict | None = None) -> Graph:
    """Import and quantise (post-training, ``calib`` calibration images): the int8 graph."""
    g = import_module(module, input_chw, name)
    return quantize_float_graph(g, calibration_images_for(g, calib_data, calib, seed, datasets))
