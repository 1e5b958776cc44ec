"""The engine's graph IR: tensors with NHWC shapes and a schedule of ops (int8 inference).

Op kinds: ``conv2d`` (pointwise included), ``depthwise_conv2d``, ``add``, ``avg_pool2d``,
``global_avg_pool``, ``fully_connected``, ``pad``, ``reshape``. ReLU/ReLU6 are fused into the producing
op as ``attrs['activation']``. Activation tensors are (H, W, C); vectors are (C,). The op list is the
execution order. A graph built from an ArchConfig carries shapes only; ``tinyengine.quantize``
fills in the int8 side: each tensor's ``scale``/``zero_point`` and each weighted op's ``params``
(``weight`` int8 in the layout of ``attrs['weight_shape']``, ``bias`` int32, per-channel ``mult``
int32 and ``shift`` int32) plus ``attrs['act_min']``/``attrs['act_max']`` (the fused clamp).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from search_spaces.arch import ArchConfig, BlockSpec, conv_out

OP_KINDS = ("conv2d", "depthwise_conv2d", "add", "avg_pool2d", "global_avg_pool",
            "fully_connected", "pad", "reshape")
WEIGHTED = ("conv2d", "depthwise_conv2d", "fully_connected")


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    itemsize: int = 1  # int8 activations
    scale: float | None = None       # int8 quantisation: real = scale * (q - zero_point)
    zero_point: int | None = None

    @property
    def nbytes(self) -> int:
        n = self.itemsize
        for d in self.shape:
            n *= d
        return n


@dataclass
class Op:
    name: str
    kind: str
    inputs: tuple[str, ...]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)
    role: str = ""             # stem / expand / depthwise / project / add / feature_mix / pool / classifier
    block: int | None = None   # index of the inverted-residual block the op belongs to
    params: dict[str, np.ndarray] = field(default_factory=dict)  # int8 weights etc. (see module doc)

    @property
    def weight_shape(self) -> tuple[int, ...] | None:
        """OHWI for conv2d, HWC for depthwise, (out, in) for fully_connected."""
        return self.attrs.get("weight_shape")


@dataclass
class Graph:
    name: str
    tensors: dict[str, Tensor]
    ops: list[Op]
    inputs: list[str]
    outputs: list[str]

    def consumers(self) -> dict[str, list[int]]:
        use: dict[str, list[int]] = {t: [] for t in self.tensors}
        for i, op in enumerate(self.ops):
            for t in op.inputs:
                use[t].append(i)
        return use

    def validate(self) -> None:
        """Every tensor is produced once before it is used; shapes agree with the op attributes."""
        produced = set(self.inputs)
        for i, op in enumerate(self.ops):
            if op.kind not in OP_KINDS:
                raise ValueError(f"graph {self.name}: op {i} '{op.name}': unknown kind {op.kind!r}")
            for t in op.inputs:
                if t not in produced:
                    raise ValueError(f"graph {self.name}: op {i} '{op.name}' reads '{t}' before it is produced")
            if op.output in produced:
                raise ValueError(f"graph {self.name}: op {i} '{op.name}' writes '{op.output}' a second time")
            produced.add(op.output)
        for t in self.outputs:
            if t not in produced:
                raise ValueError(f"graph {self.name}: output '{t}' is never produced")


class _Builder:
    def __init__(self, name: str):
        self.g = Graph(name, {}, [], [], [])

    def tensor(self, name: str, shape: tuple[int, ...]) -> str:
        self.g.tensors[name] = Tensor(name, tuple(int(s) for s in shape))
        return name

    def conv(self, name: str, x: str, cout: int, k: int, stride: int, *, depthwise: bool = False,
             act: str | None = "relu6", role: str, block: int | None) -> str:
        h, w, cin = self.g.tensors[x].shape
        ho, wo = conv_out(h, k, stride), conv_out(w, k, stride)
        p = k // 2
        # PyTorch-style symmetric padding k//2; the bottom/right pad actually read may be smaller.
        pad_b = max(0, (ho - 1) * stride + k - h - p)
        pad_r = max(0, (wo - 1) * stride + k - w - p)
        out = self.tensor(name, (ho, wo, cin if depthwise else cout))
        attrs = {"kernel": (k, k), "stride": (stride, stride), "padding": (p, pad_b, p, pad_r),
                 "activation": act,
                 "weight_shape": (k, k, cin) if depthwise else (cout, k, k, cin), "bias": True}
        self.g.ops.append(Op(name, "depthwise_conv2d" if depthwise else "conv2d", (x,), out, attrs,
                             role, block))
        return out


def build_graph(arch: ArchConfig) -> Graph:
    """Lower an ArchConfig to the op schedule the engine executes (in this order)."""
    b = _Builder(arch.name or "model")
    x = b.tensor("input", (arch.resolution, arch.resolution, arch.in_channels))
    b.g.inputs.append(x)
    x = b.conv("stem", x, arch.stem_channels, arch.stem_kernel, arch.stem_stride, role="stem", block=None)
    for blk in arch.blocks():
        x = _block(b, x, blk)
    if arch.feature_mix_channels:
        x = b.conv("feature_mix", x, arch.feature_mix_channels, 1, 1, role="feature_mix", block=None)
    c = b.g.tensors[x].shape[2]
    pooled = b.tensor("pool", (c,))
    h, w, _ = b.g.tensors[x].shape
    b.g.ops.append(Op("pool", "global_avg_pool", (x,), pooled, {"kernel": (h, w)}, "pool"))
    logits = b.tensor("logits", (arch.num_classes,))
    b.g.ops.append(Op("classifier", "fully_connected", (pooled,), logits,
                      {"weight_shape": (arch.num_classes, c), "bias": True, "activation": None},
                      "classifier"))
    b.g.outputs.append(logits)
    b.g.validate()
    return b.g


def _block(b: _Builder, x: str, blk: BlockSpec) -> str:
    pre = f"b{blk.index}"
    inp = x
    if blk.expand:
        x = b.conv(f"{pre}.expand", x, blk.mid_channels, 1, 1, role="expand", block=blk.index)
    x = b.conv(f"{pre}.dw", x, 0, blk.kernel_size, blk.stride, depthwise=True, role="depthwise",
               block=blk.index)
    x = b.conv(f"{pre}.project", x, blk.out_channels, 1, 1, act=None, role="project", block=blk.index)
    if blk.residual:
        out = b.tensor(f"{pre}.add", b.g.tensors[x].shape)
        b.g.ops.append(Op(f"{pre}.add", "add", (x, inp), out, {"activation": None}, "add", blk.index))
        x = out
    return x


def block_graph(blk: BlockSpec, size: int) -> Graph:
    """The ops of one block alone, its input an (size, size, in) tensor: the unit the cost cache keys on."""
    b = _Builder(f"block{blk.index}")
    x = b.tensor("input", (size, size, blk.in_channels))
    b.g.inputs.append(x)
    b.g.outputs.append(_block(b, x, blk))
    return b.g
