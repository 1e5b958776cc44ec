"""Training: the elastic supernet (largest first, then the sandwich rule) and plain ArchNets.

One loop serves both: SGD + momentum, a cosine learning-rate schedule stepped per batch, a
checkpoint after every epoch (model, optimiser, scheduler, epoch, RNG states, history) and resume
from the last completed epoch. Every random choice of an epoch (shuffle, sampled sub-networks) is
drawn from generators seeded by (seed, epoch), so a resumed run repeats the uninterrupted one.

Images are kept as uint8 (N, C, H, W) at their source size and resized per batch (bilinear, like
``tinynas.data.prepare_images``): a 60k-image set stays small in memory whatever the resolution.

Several processes (torchrun, WORLD_SIZE > 1): each rank trains on its shard of every epoch's
permutation under DistributedDataParallel (``tinynas.ddp``; Gloo on CPU, NCCL on GPU). One sandwich
step is one DDP forward (every sub-network of the step, ``SandwichStep``) and one backward of the
summed losses, so DDP averages the step's gradients once; ``find_unused_parameters`` covers the
weights no sub-network of the step used on a rank (skipped blocks). Only rank 0 writes checkpoints.
"""
from __future__ import annotations

import math
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.arch import ArchConfig
from search_spaces.space import SearchSpace
from tinyml_errors import StateError


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 1                 # total epochs (supernet: largest-only + sandwich)
    largest_epochs: int = 0         # supernet only: the first epochs train the largest network alone
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 3e-5
    n_random: int = 2               # sandwich: random sub-networks per batch besides largest/smallest
    kd: float = 1.0                 # sandwich: weight of in-place distillation from the largest
    label_smoothing: float = 0.1
    augment: bool = False           # random shifts by up to 1/8 of the side
    limit_batches: int | None = None  # cap batches per epoch (smoke tests)
    seed: int = 0


# --------------------------------------------------------------------------- devices / ranks
def dist_info() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) when run plainly."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def default_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def init_distributed() -> None:
    """Join the torchrun process group when WORLD_SIZE > 1 (NCCL on CUDA, Gloo on CPU)."""
    import torch.distributed as dist
    _, world = dist_info()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))


# --------------------------------------------------------------------------- images
def to_input(x_u8: torch.Tensor, resolution: int, channels: int, device: torch.device | str = "cpu",
             shift: torch.Generator | None = None) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float (N, channels, R, R) in [0, 1]; optional random shift (augmentation)."""
    x = x_u8.to(device).float().div_(255.0)
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    if x.shape[1] != channels:
        if channels == 1:
            x = x.mean(1, keepdim=True)
        elif x.shape[1] == 1:
            x = x.repeat(1, channels, 1, 1)
        else:
            raise StateError(f"images have {x.shape[1]} channels; cannot make {channels}")
    if shift is not None:  # per image: its own shift (up to 1/8 of the side) and a horizontal flip
        m = max(1, resolution // 8)
        d = torch.randint(-m, m + 1, (x.shape[0], 2), generator=shift).tolist()
        flip = torch.rand(x.shape[0], generator=shift).lt(0.5).tolist()
        xp = F.pad(x, (m, m, m, m))
        x = torch.stack([xp[i, :, m + dy:m + dy + resolution, m + dx:m + dx + resolution]
                         for i, (dy, dx) in enumerate(d)])
        if any(flip):
            x[flip] = x[flip].flip(-1)
    return x


def at_resolution(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """A float batch resized to ``resolution`` (bilinear) unless it already has that side: the
    supernet's elastic resolution, where the step's batch is made once at the largest side."""
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)


@torch.no_grad()
def evaluate(model: Callable, x_u8: torch.Tensor, y: torch.Tensor, resolution: int, channels: int,
             batch_size: int = 256, device: torch.device | str = "cpu") -> float:
    """Top-1 accuracy of ``model`` (eval mode is the caller's business) on uint8 images."""
    if len(y) == 0:
        return float("nan")
    correct = 0
    for i in range(0, len(y), batch_size):
        out = model(to_input(x_u8[i:i + batch_size], resolution, channels, device))
        correct += int((out.argmax(1).cpu() == y[i:i + batch_size]).sum())
    return correct / len(y)


# --------------------------------------------------------------------------- sandwich sampling
def sandwich_archs(space: SearchSpace, width_mult: float, resolution: int, rng: np.random.Generator,
                   n_random: int) -> list[ArchConfig]:
    """Largest, smallest and ``n_random`` uniformly sampled sub-networks (BigNAS sandwich rule)."""
    archs = [space.largest(width_mult, resolution), space.smallest(width_mult, resolution)]
    archs += [space.sample(rng, width_mult, resolution) for _ in range(n_random)]
    return archs


# --------------------------------------------------------------------------- the loop
def _cosine(total_steps: int):
    return lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps)))


def _rng_states() -> dict:
    """RNG states as tensors, ints and tuples only, so the checkpoint loads with ``weights_only=True``."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_states(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    kind, keys, pos, has_gauss, gauss = s["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(s["python"])
    if s.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def load_checkpoint(ckpt: Path, device: torch.device | str = "cpu") -> dict:
    """A training checkpoint, loaded with ``weights_only=True``: tensors and plain data only, so a crafted
    file cannot run code (it gets a StateError instead)."""
    try:
        state = torch.load(ckpt, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable or unsafe file gets the same clear message
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StateError(f"{ckpt}: not a checkpoint this version can load safely ({first[:200]}); "
                         "remove it (training restarts) or use another --out") from None
    if not isinstance(state, dict) or not {"model", "optimizer", "scheduler", "epoch", "rng"} <= set(state):
        raise StateError(f"{ckpt}: not a training checkpoint (missing keys); remove it or use another --out")
    return state


def train(model: nn.Module, x_u8: torch.Tensor, y: torch.Tensor, resolution: int, channels: int,
          cfg: TrainConfig, checkpoint: str | Path | None = None, *,
          space: SearchSpace | None = None, width_mult: float | None = None,
          device: torch.device | str = "cpu", progress: bool = True, desc: str = "train",
          log: Callable[[str], None] | None = None,
          sampler: Callable[[np.random.Generator], list[ArchConfig]] | None = None,
          on_batch: Callable[[int, int], None] | None = None, distributed: bool = True) -> list[dict]:
    """Train ``model`` in place and return the per-epoch history.

    With ``space`` given, ``model`` is a SuperNet: epochs < ``cfg.largest_epochs`` train the largest
    sub-network alone, later ones the sandwich (largest + smallest + random) with in-place
    distillation from the largest. With ``sampler`` (e.g. ``tinynas.fit_sampler.FitSampler``), the
    sandwich is the sampler's ``teacher`` (when it has one, else the largest) plus the sub-networks
    it draws, instead of largest + smallest + uniform ones. Sub-networks whose ``resolution`` differs
    from ``resolution`` (elastic resolution) see the step's batch resized to their own side, so
    ``resolution`` should be the largest one any of them uses.
    Resumes from ``checkpoint`` when it exists. ``on_batch(done, total)``: batches done over all
    epochs (an overall progress display). ``distributed=False``: train in this process alone even
    under torchrun (steps that only rank 0 runs)."""
    from tqdm import tqdm

    rank, world = dist_info() if distributed else (0, 1)
    model.to(device)
    ddp = None
    if world > 1:
        from tinynas.ddp import wrap
        ddp = wrap(model, device, sandwich=space is not None)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    n = len(y)
    per_rank = n // world
    steps = per_rank // cfg.batch_size + (1 if per_rank % cfg.batch_size else 0)
    if cfg.limit_batches is not None:
        steps = min(steps, cfg.limit_batches)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _cosine(steps * cfg.epochs))
    history: list[dict] = []
    start = 0
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt is not None and ckpt.exists():
        state = load_checkpoint(ckpt, device)
        if state.get("config") != asdict(cfg):
            raise StateError(f"{ckpt}: checkpoint was written with other training settings "
                             f"({state.get('config')}); remove it or use another --out")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        _set_rng_states(state["rng"])
        start, history = state["epoch"], state["history"]
        if log and start < cfg.epochs:
            log(f"{desc}: resuming after epoch {start}/{cfg.epochs} from {ckpt}")
    for epoch in range(start, cfg.epochs):
        model.train()
        g = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        perm = torch.randperm(n, generator=g)[rank * per_rank:(rank + 1) * per_rank]
        arch_rng = np.random.default_rng([cfg.seed, epoch, rank])
        sandwich = space is not None and epoch >= cfg.largest_epochs
        tot_loss, tot_correct, seen = 0.0, 0, 0
        bar = tqdm(range(steps), desc=f"{desc} {epoch + 1}/{cfg.epochs}" + (" sandwich" if sandwich else ""),
                   disable=not progress or rank != 0, leave=False, dynamic_ncols=True)
        for step in bar:
            idx = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            xb = to_input(x_u8[idx], resolution, channels, device, g if cfg.augment else None)
            yb = y[idx].to(device)
            opt.zero_grad(set_to_none=True)
            if ddp is not None:
                from tinynas.ddp import ddp_step
                archs = None if space is None else _step_archs(space, width_mult, resolution, cfg, sandwich,
                                                                 sampler, arch_rng)
                out, loss = ddp_step(ddp, xb, yb, cfg, archs)
            elif space is None:
                out = model(xb)
                loss = F.cross_entropy(out, yb, label_smoothing=cfg.label_smoothing)
                loss.backward()
            else:
                archs = _step_archs(space, width_mult, resolution, cfg, sandwich, sampler, arch_rng)
                out = model(at_resolution(xb, archs[0].resolution), archs[0])
                loss = F.cross_entropy(out, yb, label_smoothing=cfg.label_smoothing)
                loss.backward()
                soft = F.softmax(out.detach(), 1)
                for a in archs[1:]:
                    o = model(at_resolution(xb, a.resolution), a)
                    sub = F.cross_entropy(o, yb, label_smoothing=cfg.label_smoothing)
                    if cfg.kd:
                        sub = (sub + cfg.kd * F.kl_div(F.log_softmax(o, 1), soft, reduction="batchmean")) \
                            / (1 + cfg.kd)
                    sub.backward()
            nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            sched.step()
            tot_loss += float(loss.detach()) * len(yb)
            tot_correct += int((out.argmax(1) == yb).sum())
            seen += len(yb)
            bar.set_postfix(loss=f"{tot_loss / seen:.3f}", acc=f"{tot_correct / seen:.3f}")
            if on_batch is not None:
                on_batch(epoch * steps + step + 1, cfg.epochs * steps)
        bar.close()
        rec = {"epoch": epoch + 1, "loss": tot_loss / max(1, seen), "train_acc": tot_correct / max(1, seen),
               "lr": sched.get_last_lr()[0], "phase": "sandwich" if sandwich else
               ("largest" if space is not None else "plain")}
        if world > 1:
            rec["processes"] = world
        history.append(rec)
        if ckpt is not None and rank == 0:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            tmp = ckpt.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(), "epoch": epoch + 1, "rng": _rng_states(),
                        "history": history, "config": asdict(cfg)}, tmp)
            os.replace(tmp, ckpt)  # atomic: an interrupted write never leaves a broken checkpoint
        if log:
            log(f"{desc} epoch {epoch + 1}/{cfg.epochs} ({rec['phase']}): loss {rec['loss']:.4f}, "
                f"train acc {rec['train_acc']:.4f}")
    return history


def _step_archs(space, width_mult, resolution, cfg, sandwich, sampler, arch_rng) -> list[ArchConfig]:
    """The sub-networks of one supernet step: the teacher first (the sampler's, else the largest),
    then (sandwich epochs) the sampler's draws or largest + smallest + random ones."""
    big = getattr(sampler, "teacher", None) or space.largest(width_mult, resolution)
    return ([big] if not sandwich else [big] + sampler(arch_rng) if sampler
            else sandwich_archs(space, width_mult, resolution, arch_rng, cfg.n_random))
