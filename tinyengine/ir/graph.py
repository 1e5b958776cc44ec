"""The engine's graph IR: tensors with NHWC shapes and a schedule of ops (int8 inference).

Op kinds: ``conv2d`` (pointwise included), ``depthwise_conv2d``, ``add``, ``avg_pool2d``,
``global_avg_pool``, ``fully_connected``, ``pad``, ``reshape``. ReLU/ReLU6 are fused into the producing
op as ``attrs['activation']``. Activation tensors are (H, W, C); vectors are (C,). The op list is the
execution order. A graph built from an ArchConfig carries shapes only; ``tinyengine.frontend.quantize``
fills in the int8 side: each tensor's ``scale``/``zero_point`` and each weighted op's ``params``
(``weight`` int8 in the layout of ``attrs['weight_shape']``, ``bias`` int32, per-channel ``mult``
int32 and ``shift`` int32) plus ``attrs['act_min']``/``attrs['act_max']`` (the fused clamp).

Regions (patch-based inference, ``tinyengine.passes.patch``): a region is ``(y0, y1, x0, x1)``, half-open, in
the coordinates of the full tensor. ``attrs['in_regions']`` (one region or None per input) makes an op
read only that window of its input, as a strided view (no copy); ``attrs['out_region']`` makes it
write its result into that window of its output tensor. A tensor may have several writers only if
every one of them writes a region; their regions must tile the tensor exactly (no gap, no overlap)
and every reader runs after the last writer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from search_spaces.arch import ArchConfig, BlockSpec, conv_out
from tinyml_errors import GraphError

OP_KINDS = ("conv2d", "depthwise_conv2d", "add", "avg_pool2d", "global_avg_pool",
            "fully_connected", "pad", "reshape",
            "max_pool2d", "mean", "softmax",  # these three come from imported .tflite models
            "stream_segment",  # fused row-streamed ops (tinyengine.passes.stream; attrs['stream'])
            "conv2d_add")  # pointwise projection + residual ADD (tinyengine.passes.fuse_add; attrs['fused_add'])
WEIGHTED = ("conv2d", "depthwise_conv2d", "fully_connected")
INPLACE_ATTR = "inplace_of"  # set by the in-place pass: the input tensor an op writes its output over


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

    def read_shape(self, op: Op, k: int = 0) -> tuple[int, ...]:
        """Shape of what ``op`` reads from its k-th input: the window ``attrs['in_regions'][k]`` or all."""
        regs = op.attrs.get("in_regions")
        shape = self.tensors[op.inputs[k]].shape
        if regs is None or regs[k] is None:
            return shape
        return region_shape(regs[k], shape)

    def write_shape(self, op: Op) -> tuple[int, ...]:
        """Shape of what ``op`` computes: its ``attrs['out_region']`` of the output, or the whole output."""
        shape = self.tensors[op.output].shape
        reg = op.attrs.get("out_region")
        return shape if reg is None else region_shape(reg, shape)

    def writers(self) -> dict[str, list[int]]:
        """Op indices writing each tensor (one, or several region writers)."""
        w: dict[str, list[int]] = {}
        for i, op in enumerate(self.ops):
            w.setdefault(op.output, []).append(i)
        return w

    def consumers(self) -> dict[str, list[int]]:
        use: dict[str, list[int]] = {t: [] for t in self.tensors}
        for i, op in enumerate(self.ops):
            for t in op.inputs:
                use[t].append(i)
        return use

    def validate(self) -> None:
        """Every tensor is produced once (or tiled exactly by region writers) before it is used."""
        writers = self.writers()
        produced = set(self.inputs)
        for i, op in enumerate(self.ops):
            where = f"graph {self.name}: op {i} '{op.name}'"
            if op.kind not in OP_KINDS:
                raise GraphError(f"{where}: unknown kind {op.kind!r}")
            regs = op.attrs.get("in_regions")
            if regs is not None and len(regs) != len(op.inputs):
                raise GraphError(f"{where}: in_regions has {len(regs)} entries for {len(op.inputs)} inputs")
            for k, t in enumerate(op.inputs):
                if t not in produced:
                    raise GraphError(f"{where} reads '{t}' before it is produced")
                if regs is not None and regs[k] is not None:
                    _check_region(regs[k], self.tensors[t].shape, f"{where}: in_regions[{k}] of '{t}'")
            w = writers[op.output]
            if op.output in self.inputs or (len(w) > 1 and "out_region" not in op.attrs):
                raise GraphError(f"{where} writes '{op.output}' a second time")
            if "out_region" in op.attrs:
                _check_region(op.attrs["out_region"], self.tensors[op.output].shape,
                              f"{where}: out_region of '{op.output}'")
            if i == w[-1]:
                if len(w) > 1 or "out_region" in op.attrs:
                    self._check_tiling(op.output, w)
                produced.add(op.output)
        for t in self.outputs:
            if t not in produced:
                raise GraphError(f"graph {self.name}: output '{t}' is never produced")

    def _check_tiling(self, name: str, writers: list[int]) -> None:
        """The regions written into ``name`` cover it exactly once."""
        h, w = self.tensors[name].shape[:2]
        cover = np.zeros((h, w), dtype=np.int32)
        for i in writers:
            y0, y1, x0, x1 = self.ops[i].attrs["out_region"]
            cover[y0:y1, x0:x1] += 1
        if cover.min() != 1 or cover.max() != 1:
            what = "overlaps" if cover.max() > 1 else "gaps"
            raise GraphError(f"graph {self.name}: the regions written into '{name}' by "
                             f"{len(writers)} ops leave {what} (they must tile it exactly once)")


def region_shape(region: tuple[int, int, int, int], shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of the window ``region`` = (y0, y1, x0, x1) of an (H, W, C) tensor."""
    y0, y1, x0, x1 = region
    return (y1 - y0, x1 - x0, *shape[2:])


def _check_region(region, shape: tuple[int, ...], where: str) -> None:
    if len(shape) != 3 or len(region) != 4:
        raise GraphError(f"{where}: a region (y0, y1, x0, x1) needs an (H, W, C) tensor, got {shape}")
    y0, y1, x0, x1 = region
    if not (0 <= y0 < y1 <= shape[0] and 0 <= x0 < x1 <= shape[1]):
        raise GraphError(f"{where}: region {tuple(region)} is empty or outside {shape[0]}x{shape[1]}")


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
    b.g.outputs.append(head(b, x, arch.feature_mix_channels, arch.num_classes))
    b.g.validate()
    return b.g


def head(b: "_Builder", x: str, feature_mix: int | None, num_classes: int) -> str:
    """Feature-mix 1x1 conv (optional), global average pool and classifier after tensor ``x``;
    returns the logits tensor (shared by build_graph and the cost model's per-part cache)."""
    if feature_mix:
        x = b.conv("feature_mix", x, feature_mix, 1, 1, role="feature_mix", block=None)
    h, w, c = b.g.tensors[x].shape
    pooled = b.tensor("pool", (c,))
    b.g.ops.append(Op("pool", "global_avg_pool", (x,), pooled, {"kernel": (h, w)}, "pool"))
    logits = b.tensor("logits", (num_classes,))
    b.g.ops.append(Op("classifier", "fully_connected", (pooled,), logits,
                      {"weight_shape": (num_classes, c), "bias": True, "activation": None},
                      "classifier"))
    return logits


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


def stem_graph(resolution: int, in_channels: int, channels: int, kernel: int, stride: int) -> Graph:
    """The stem conv alone (the cost and latency caches' unit for it)."""
    b = _Builder("stem")
    x = b.tensor("input", (resolution, resolution, in_channels))
    b.g.inputs.append(x)
    b.g.outputs.append(b.conv("stem", x, channels, kernel, stride, role="stem", block=None))
    return b.g


def head_graph(size: int, channels: int, feature_mix: int | None, num_classes: int) -> Graph:
    """Feature mix, pool and classifier on a (size, size, channels) map (the caches' unit for them)."""
    b = _Builder("head")
    x = b.tensor("input", (size, size, channels))
    b.g.inputs.append(x)
    b.g.outputs.append(head(b, x, feature_mix, num_classes))
    return b.g


def block_graph(blk: BlockSpec, size: int) -> Graph:
    """The ops of one block alone, its input an (size, size, in) tensor: the unit the cost cache keys on."""
    b = _Builder(f"block{blk.index}")
    x = b.tensor("input", (size, size, blk.in_channels))
    b.g.inputs.append(x)
    b.g.outputs.append(_block(b, x, blk))
    return b.g
