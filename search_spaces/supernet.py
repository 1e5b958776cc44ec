"""OFA-style elastic supernet over one (W, R) of the search space, with weight sharing.

Every layer holds the weights of the largest choice; a sub-network uses a slice of them:

* elastic kernel: the centre k x k of the largest (7 x 7) depthwise kernel (a plain centre crop);
* elastic width (expand ratio): the first ``mid`` channels of the largest expansion;
* elastic depth: the first ``d`` blocks of each stage;
* dynamic BatchNorm: running statistics and affine parameters of the first channels.

A sub-network is named by an ``ArchConfig`` of the space (``SearchSpace.build``); ``extract_subnet``
copies its weights into a plain ``ArchNet`` (``build_torch_model``) that the engine imports.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.arch import ArchConfig, ArchError, mid_channels_for
from search_spaces.space import SearchSpace
from search_spaces.torch_model import ArchNet, ConvBNAct, build_torch_model


def centre_crop(weight: torch.Tensor, k: int) -> torch.Tensor:
    """The centre k x k of a (..., K, K) kernel (OFA's elastic kernel without the transform matrix)."""
    big = weight.shape[-1]
    if k > big or k % 2 == 0:
        raise ArchError(f"supernet: kernel {k} is not an odd size <= {big}")
    s = (big - k) // 2
    return weight[..., s:s + k, s:s + k]


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the first C channels of the largest layer; running stats updated in place."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        training = self.training or self.running_mean is None
        momentum = self.momentum
        if training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if momentum is None:  # cumulative moving average, as nn.BatchNorm2d does
                momentum = 1.0 / float(self.num_batches_tracked)
        return F.batch_norm(x, self.running_mean[:c] if self.running_mean is not None else None,
                            self.running_var[:c] if self.running_var is not None else None,
                            self.weight[:c], self.bias[:c], training, momentum, self.eps)


class DynamicPointwise(nn.Module):
    """1x1 conv + dynamic BN (+ ReLU6) whose input and output channel counts may shrink."""

    def __init__(self, cin: int, cout: int, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = DynamicBatchNorm2d(cout)
        self.act = act

    def forward(self, x: torch.Tensor, cout: int) -> torch.Tensor:
        w = self.conv.weight[:cout, :x.shape[1]]
        y = self.bn(F.conv2d(x, w))
        return F.relu6(y) if self.act else y


class DynamicDepthwise(nn.Module):
    """k x k depthwise conv (centre of the largest kernel) + dynamic BN + ReLU6 on the first C channels."""

    def __init__(self, channels: int, max_kernel: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, max_kernel, stride, max_kernel // 2,
                              groups=channels, bias=False)
        self.bn = DynamicBatchNorm2d(channels)
        self.stride = stride

    def forward(self, x: torch.Tensor, k: int) -> torch.Tensor:
        c = x.shape[1]
        w = centre_crop(self.conv.weight[:c], k)
        return F.relu6(self.bn(F.conv2d(x, w, None, self.stride, k // 2, 1, c)))


class DynamicMBBlock(nn.Module):
    """Inverted residual with elastic kernel and expand ratio; fixed in/out channels and stride."""

    def __init__(self, cin: int, cout: int, max_mid: int, max_kernel: int, stride: int, residual: bool):
        super().__init__()
        self.cin, self.cout, self.max_mid, self.residual = cin, cout, max_mid, residual
        self.expand = DynamicPointwise(cin, max_mid)
        self.dw = DynamicDepthwise(max_mid, max_kernel, stride)
        self.project = DynamicPointwise(max_mid, cout, act=False)

    def forward(self, x: torch.Tensor, k: int, mid: int) -> torch.Tensor:
        if mid > self.max_mid:
            raise ArchError(f"supernet: {mid} mid channels > the largest {self.max_mid}")
        y = self.project(self.dw(self.expand(x, mid), k), self.cout)
        return y + x if self.residual else y


class SuperNet(nn.Module):
    """All sub-networks of ``space`` at width multiplier W (any resolution runs: convs are resolution-free)."""

    def __init__(self, space: SearchSpace, width_mult: float, dropout: float = 0.0):
        super().__init__()
        self.space, self.width_mult = space, float(width_mult)
        big = space.largest(width_mult, max(space.resolution_choices))
        self.max_arch = big
        w = space.widths(width_mult)
        self.stem = ConvBNAct(space.in_channels, w[0], 3, 2)
        self.first_dw = ConvBNAct(w[0], w[0], 3, 1, groups=w[0])
        self.first_project = ConvBNAct(w[0], w[1], 1, 1, act=False)
        kmax, emax = max(space.kernel_choices), max(space.expand_choices)
        self.stages = nn.ModuleList()
        cin = w[1]
        for s in range(space.n_stages):
            cout, blocks = w[s + 2], nn.ModuleList()
            for j in range(max(space.stage_depth_choices(s))):
                bin_ = cin if j == 0 else cout
                blocks.append(DynamicMBBlock(bin_, cout, mid_channels_for(bin_, emax, space.divisor), kmax,
                                             space.strides[s] if j == 0 else 1, residual=j > 0))
            self.stages.append(blocks)
            cin = cout
        fm = space.feature_mix_channels
        self.feature_mix = DynamicPointwise(cin, fm) if fm else None
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.classifier = nn.Linear(fm or cin, space.num_classes)

    # ------------------------------------------------------------------ checks
    def check(self, arch: ArchConfig) -> None:
        """Raise ArchError unless ``arch`` is a sub-network of this supernet."""
        w = self.space.widths(self.width_mult)
        if (arch.stem_channels, arch.first_channels) != w[:2] or len(arch.stages) != len(self.stages) \
                or any(st.out_channels != w[s + 2] for s, st in enumerate(arch.stages)) \
                or arch.in_channels != self.space.in_channels or arch.num_classes != self.space.num_classes \
                or arch.feature_mix_channels != self.space.feature_mix_channels \
                or (arch.stem_kernel, arch.stem_stride, arch.first_kernel) != (3, 2, 3):
            raise ArchError(f"supernet: {arch.summary()} is not a sub-network of the W={self.width_mult:g} "
                            "supernet (widths, stages or head differ)")
        for s, st in enumerate(arch.stages):
            if len(st.blocks) > len(self.stages[s]) or st.stride != self.space.strides[s]:
                raise ArchError(f"supernet: stage {s} of {arch.summary()} has depth {len(st.blocks)} "
                                f"or stride {st.stride} outside the supernet")

    def _mid(self, s: int, j: int, block) -> int:
        blk = self.stages[s][j]
        if block.mid_channels is not None:
            return block.mid_channels
        return mid_channels_for(blk.cin, block.expand_ratio, self.space.divisor)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, arch: ArchConfig) -> torch.Tensor:
        x = self.first_project(self.first_dw(self.stem(x)))
        for s, st in enumerate(arch.stages):
            for j, b in enumerate(st.blocks):
                x = self.stages[s][j](x, b.kernel_size, self._mid(s, j, b))
        if self.feature_mix is not None:
            x = self.feature_mix(x, self.feature_mix.conv.out_channels)
        return self.classifier(self.dropout(x.mean((2, 3))))

    # ------------------------------------------------------------------ extraction
    @torch.no_grad()
    def extract_subnet(self, arch: ArchConfig) -> ArchNet:
        """A plain ArchNet for ``arch`` with the shared weights copied (state_dict fits build_torch_model)."""
        self.check(arch)
        net = build_torch_model(arch)
        _copy_cbn(net.stem, self.stem.conv.weight, self.stem.bn, None)
        b0 = net.blocks[0]
        _copy_cbn(b0.dw, self.first_dw.conv.weight, self.first_dw.bn, None)
        _copy_cbn(b0.project, self.first_project.conv.weight, self.first_project.bn, None)
        i = 1
        for s, st in enumerate(arch.stages):
            for j, b in enumerate(st.blocks):
                sb, nb = self.stages[s][j], net.blocks[i]
                mid, cin, cout = nb.spec.mid_channels, nb.spec.in_channels, nb.spec.out_channels
                if nb.expand is None:
                    raise ArchError(f"supernet: block {i} without expansion is not in the supernet")
                _copy_cbn(nb.expand, sb.expand.conv.weight[:mid, :cin], sb.expand.bn, mid)
                _copy_cbn(nb.dw, centre_crop(sb.dw.conv.weight[:mid], b.kernel_size), sb.dw.bn, mid)
                _copy_cbn(nb.project, sb.project.conv.weight[:cout, :mid], sb.project.bn, cout)
                i += 1
        if net.feature_mix is not None:
            c = net.feature_mix.conv.out_channels
            _copy_cbn(net.feature_mix, self.feature_mix.conv.weight[:c], self.feature_mix.bn, c)
        net.classifier.weight.copy_(self.classifier.weight)
        net.classifier.bias.copy_(self.classifier.bias)
        net.train(self.training)
        return net.to(self.classifier.weight.device)


def _copy_cbn(dst: ConvBNAct, weight: torch.Tensor, bn: nn.BatchNorm2d, c: int | None) -> None:
    if dst.conv.weight.shape != weight.shape:
        raise ArchError(f"supernet: weight shape {tuple(weight.shape)} does not fit "
                        f"{tuple(dst.conv.weight.shape)}")
    dst.conv.weight.copy_(weight)
    c = c if c is not None else bn.num_features
    dst.bn.weight.copy_(bn.weight[:c])
    dst.bn.bias.copy_(bn.bias[:c])
    dst.bn.running_mean.copy_(bn.running_mean[:c])
    dst.bn.running_var.copy_(bn.running_var[:c])
    dst.bn.num_batches_tracked.copy_(bn.num_batches_tracked)
    dst.bn.eps, dst.bn.momentum = bn.eps, bn.momentum


@torch.no_grad()
def recalibrate_bn(model: nn.Module, images: torch.Tensor, batch_size: int = 128,
                   forward=None) -> None:
    """Reset BN running stats and re-estimate them (cumulative average) on ``images`` in train mode.

    Sub-networks share BN statistics in the supernet that belong to no single one of them; OFA
    re-estimates them on a few hundred training images before evaluating a sub-network."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [(m.momentum, m.training) for m in bns]
    was_training = model.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    fwd = forward or model
    for i in range(0, images.shape[0], batch_size):
        fwd(images[i:i + batch_size])
    for m, (mom, _) in zip(bns, saved):
        m.momentum = mom
    model.train(was_training)
