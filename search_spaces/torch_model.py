"""A plain PyTorch ``nn.Module`` built from an ArchConfig (float training and the engine's importer).

Module and activation names follow the engine's graph (``tinyengine.ir.graph.build_graph``): ``stem``,
``b{i}.expand``, ``b{i}.dw``, ``b{i}.project``, ``b{i}.add``, ``feature_mix``, ``pool``, ``logits``,
so calibration can record every graph tensor with ``forward_collect``.
"""
from __future__ import annotations

import torch
from torch import nn

from search_spaces.arch import ArchConfig, BlockSpec


class ConvBNAct(nn.Module):
    """k x k conv (no bias) -> BatchNorm -> ReLU6 (or nothing), padding k // 2."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU6(inplace=False) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class InvertedResidual(nn.Module):
    def __init__(self, spec: BlockSpec):
        super().__init__()
        self.spec = spec
        self.expand = ConvBNAct(spec.in_channels, spec.mid_channels, 1, 1) if spec.expand else None
        self.dw = ConvBNAct(spec.mid_channels, spec.mid_channels, spec.kernel_size, spec.stride,
                            groups=spec.mid_channels)
        self.project = ConvBNAct(spec.mid_channels, spec.out_channels, 1, 1, act=False)

    def forward(self, x: torch.Tensor, record: dict | None = None) -> torch.Tensor:
        pre = f"b{self.spec.index}"
        y = x
        for name in ("expand", "dw", "project"):
            m = getattr(self, name)
            if m is None:
                continue
            y = m(y)
            if record is not None:
                record[f"{pre}.{name}"] = y
        if self.spec.residual:
            y = y + x
            if record is not None:
                record[f"{pre}.add"] = y
        return y


class ArchNet(nn.Module):
    def __init__(self, arch: ArchConfig, dropout: float = 0.0):
        super().__init__()
        self.arch = arch
        self.stem = ConvBNAct(arch.in_channels, arch.stem_channels, arch.stem_kernel, arch.stem_stride)
        self.blocks = nn.ModuleList(InvertedResidual(b) for b in arch.blocks())
        self.feature_mix = (ConvBNAct(arch.stages[-1].out_channels, arch.feature_mix_channels, 1, 1)
                            if arch.feature_mix_channels else None)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.classifier = nn.Linear(arch.last_channels, arch.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, None)

    def forward_collect(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every graph tensor by name (NCHW for feature maps, (N, C) for vectors)."""
        rec: dict[str, torch.Tensor] = {"input": x}
        self._run(x, rec)
        return rec

    def _run(self, x: torch.Tensor, rec: dict | None) -> torch.Tensor:
        x = self.stem(x)
        if rec is not None:
            rec["stem"] = x
        for b in self.blocks:
            x = b(x, rec)
        if self.feature_mix is not None:
            x = self.feature_mix(x)
            if rec is not None:
                rec["feature_mix"] = x
        x = x.mean((2, 3))
        if rec is not None:
            rec["pool"] = x
        x = self.classifier(self.dropout(x))
        if rec is not None:
            rec["logits"] = x
        return x

    def weighted_modules(self) -> dict[str, nn.Module]:
        """Graph op name -> the ConvBNAct / Linear that implements it."""
        out: dict[str, nn.Module] = {"stem": self.stem}
        for b in self.blocks:
            for name in ("expand", "dw", "project"):
                m = getattr(b, name)
                if m is not None:
                    out[f"b{b.spec.index}.{name}"] = m
        if self.feature_mix is not None:
            out["feature_mix"] = self.feature_mix
        out["classifier"] = self.classifier
        return out


def build_torch_model(arch: ArchConfig, dropout: float = 0.0) -> ArchNet:
    return ArchNet(arch, dropout)
