"""Import a float PyTorch model (built from an ArchConfig) into the engine's graph, BN folded.

Folding, per output channel c of a conv followed by BatchNorm (eval statistics):
``g = gamma / sqrt(running_var + eps)``, ``w'[c] = w[c] * g``, ``b'[c] = beta - running_mean * g``.
Weights are stored in the engine layouts: OHWI for conv2d, (kH, kW, C) for depthwise, (out, in) for
fully-connected, as ``op.params['weight_f']`` / ``op.params['bias_f']`` (float32).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from search_spaces.arch import ArchConfig
from tinyengine.ir.graph import Graph, build_graph
from tinyml_errors import ModelImportError


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    """Float weights (PyTorch OIHW) and bias with the BatchNorm folded in."""
    with torch.no_grad():
        g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        w = conv.weight * g.reshape(-1, 1, 1, 1)
        b = bn.bias - bn.running_mean * g
        if conv.bias is not None:
            b = b + conv.bias * g
    return w.double().numpy().astype(np.float32), b.double().numpy().astype(np.float32)


def import_torch(arch: ArchConfig, model: nn.Module, state_dict: dict | None = None) -> Graph:
    """Graph of ``arch`` with folded float weights taken from ``model`` (an ArchNet)."""
    if state_dict is not None:
        model.load_state_dict(state_dict)
    mods = model.weighted_modules()
    g = build_graph(arch)
    for op in g.ops:
        if op.weight_shape is None:
            continue
        if op.name not in mods:
            raise ModelImportError(f"import: the model has no module for graph op '{op.name}'")
        m = mods[op.name]
        if op.kind == "fully_connected":
            w = m.weight.detach().double().numpy().astype(np.float32)
            b = (m.bias.detach().double().numpy().astype(np.float32) if m.bias is not None
                 else np.zeros(w.shape[0], np.float32))
        else:
            w, b = fold_bn(m.conv, m.bn)
            w = w.transpose(2, 3, 0, 1)[:, :, :, 0] if op.kind == "depthwise_conv2d" else w.transpose(0, 2, 3, 1)
        if tuple(w.shape) != tuple(op.weight_shape):
            raise ModelImportError(f"import: op '{op.name}' expects weights {op.weight_shape}, model has {w.shape}")
        op.params["weight_f"] = np.ascontiguousarray(w)
        op.params["bias_f"] = b
    return g
