"""The fair comparison protocol: every contender gets the same final training, data and test.

* same recipe: ``train_from_scratch`` trains any ArchConfig from a fresh initialisation with one
  ``TrainConfig`` (epochs, lr, schedule, augmentation); the searched winner does not inherit
  supernet weights, so it gets no extra training the baselines lack;
* same data order per seed: the initialisation seed and ``TrainConfig.seed`` (which fixes every
  epoch's permutation and augmentation draws) are the run's seed for every contender;
* same test: int8 accuracy on the NumPy reference (bit-exact with the firmware) over the same test
  images, after post-training quantisation on the same calibration images.

Statistics without SciPy: ``paired_t`` (two-sided p from Student's t by numerical integration)
and ``kendall_tau`` (tau-b, ties handled).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from search_spaces.arch import ArchConfig
from search_spaces.torch_model import build_torch_model
from tinynas.train import TrainConfig, evaluate, to_input, train


def train_from_scratch(arch: ArchConfig, x_u8: torch.Tensor, y: torch.Tensor, recipe: TrainConfig, seed: int,
                       *, device="cpu", progress: bool = False, desc: str = "train") -> torch.nn.Module:
    return train_recipe(arch, x_u8, y, recipe, seed, device=device, progress=progress, desc=desc)[0]


def train_recipe(arch: ArchConfig, x_u8: torch.Tensor, y: torch.Tensor, recipe: TrainConfig, seed: int,
                 *, checkpoint=None, device="cpu", progress: bool = False, desc: str = "train",
                 log=None, on_batch=None) -> tuple[torch.nn.Module, list[dict]]:
    """``train_from_scratch`` that checkpoints every epoch (and resumes from ``checkpoint``); returns
    (net in eval mode, per-epoch history)."""
    torch.manual_seed(seed)
    net = build_torch_model(arch)
    from dataclasses import replace
    hist = train(net, x_u8, y, arch.resolution, arch.in_channels, replace(recipe, seed=seed), checkpoint,
                 device=device, progress=progress, desc=desc, log=log, on_batch=on_batch, distributed=False)
    return net.eval(), hist


def score(arch: ArchConfig, net: torch.nn.Module, x_calib: torch.Tensor, x_test: torch.Tensor,
          y_test: torch.Tensor, device="cpu") -> dict:
    """Float and int8 (NumPy reference) test accuracy on the same images."""
    from tinynas.search import int8_accuracy
    R, C = arch.resolution, arch.in_channels
    acc_f = evaluate(net, x_test, y_test, R, C, device=device)
    calib = to_input(x_calib, R, C).numpy()
    xq = to_input(x_test, R, C).numpy()
    _, acc8 = int8_accuracy(arch, net, calib, xq, y_test.numpy())
    net.to(device)
    return {"float_test_acc": acc_f, "int8_test_acc": acc8, "test_images": int(len(y_test))}


def _t_sf(t: float, df: int) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (numerical integration)."""
    if not math.isfinite(t):
        return 0.0 if t > 0 else 1.0
    c = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
    hi = max(abs(t), 1.0) * 200 + 200
    xs = np.linspace(abs(t), hi, 200_001)
    pdf = c * (1 + xs ** 2 / df) ** (-(df + 1) / 2)
    tail = float(np.sum((pdf[1:] + pdf[:-1]) / 2 * np.diff(xs)))
    return tail if t >= 0 else 1 - tail


def paired_t(a, b) -> dict:
    """Paired t-test of a - b: mean difference, its std, t and the two-sided p (n >= 2)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    n = len(d)
    if n < 2:
        return {"n": n, "mean_diff": float(d.mean()) if n else float("nan"), "std_diff": float("nan"),
                "t": float("nan"), "p_two_sided": float("nan")}
    sd = float(d.std(ddof=1))
    t = float(d.mean() / (sd / math.sqrt(n))) if sd > 0 else (math.copysign(math.inf, d.mean()) if d.mean() else 0.0)
    p = 2 * _t_sf(abs(t), n - 1) if math.isfinite(t) else 0.0
    return {"n": n, "mean_diff": float(d.mean()), "std_diff": sd, "t": t, "p_two_sided": min(1.0, p)}


def kendall_tau(x, y) -> float:
    """Kendall's tau-b between two score lists."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n < 2:
        return float("nan")
    i, j = np.triu_indices(n, 1)
    sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    conc = float(np.sum(sx * sy))
    n0 = len(i)
    tx, ty = float(np.sum(sx == 0)), float(np.sum(sy == 0))
    den = math.sqrt((n0 - tx) * (n0 - ty))
    return conc / den if den else float("nan")
