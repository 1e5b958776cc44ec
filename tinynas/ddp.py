"""Supernet (and plain network) training under torchrun with DistributedDataParallel.

A sandwich step runs several sub-networks through one weight-sharing supernet. DDP expects one
forward and one backward per step, so ``SandwichStep`` is a module whose forward runs every
sub-network of the step and returns their logits; the losses are summed and back-propagated once
(the same gradients as one backward per sub-network: distillation targets are detached), and DDP
averages them over the ranks. The sub-networks of a step differ between ranks and skip some blocks,
so ``find_unused_parameters=True``: parameters no rank used keep no gradient; parameters some rank
used get the average over all ranks (zero from the ranks that did not use them). BN running
statistics stay per rank (``broadcast_buffers=False``, as without SyncBatchNorm); the weights are
broadcast from rank 0 when the wrapper is built, so every rank starts from the same ones.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SandwichStep(nn.Module):
    """``forward(x, archs)``: the logits of every sub-network in ``archs`` (one DDP forward)."""

    def __init__(self, supernet: nn.Module):
        super().__init__()
        self.net = supernet

    def forward(self, x, archs):
        from tinynas.train import at_resolution
        return [self.net(at_resolution(x, a.resolution), a) for a in archs]


def wrap(model: nn.Module, device, sandwich: bool) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel
    device = torch.device(device)
    kw = {"find_unused_parameters": sandwich, "broadcast_buffers": False}
    if device.type == "cuda":
        kw["device_ids"] = [device.index if device.index is not None else torch.cuda.current_device()]
    return DistributedDataParallel(SandwichStep(model) if sandwich else model, **kw)


def ddp_step(ddp: nn.Module, xb, yb, cfg, archs) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward of one step; (first network's logits, its loss) for the statistics."""
    if archs is None:
        out = ddp(xb)
        loss = F.cross_entropy(out, yb, label_smoothing=cfg.label_smoothing)
        loss.backward()
        return out, loss
    outs = ddp(xb, archs)
    out = outs[0]
    loss = F.cross_entropy(out, yb, label_smoothing=cfg.label_smoothing)
    total = loss
    soft = F.softmax(out.detach(), 1)
    for o in outs[1:]:
        sub = F.cross_entropy(o, yb, label_smoothing=cfg.label_smoothing)
        if cfg.kd:
            sub = (sub + cfg.kd * F.kl_div(F.log_softmax(o, 1), soft, reduction="batchmean")) / (1 + cfg.kd)
        total = total + sub
    total.backward()
    return out, loss
