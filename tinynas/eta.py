"""How long a ``tinynas search`` will take, said before the long steps start.

After stage 1 (seconds), ``estimate_search_s`` times two training steps of the largest sub-network
at the chosen (W, R) on this machine and scales them by the budget's work: supernet steps times
passes per step (largest + sampled sub-networks), the winner's and each baseline's training with the
fair recipe, the search's evaluations (BN recalibration + held-out forward passes) and the int8
reference images. An estimate within a factor of ~2 (the winner is smaller than the largest
sub-network; a busy machine is slower), printed so that nobody starts an hour-long run by accident;
its per-step figures (keyed by the pipeline's step names) weigh the steps of the overall progress
display (``tinynas.progress``).
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

INT8_S_PER_IMAGE = 0.03  # NumPy reference, per image, for the networks a search yields


def _step_s(model, arch, batch: int, resolution: int, channels: int, device) -> float:
    """Seconds per training step, timed on a copy (the model's BN statistics and the global RNG
    stay untouched, so a timed run trains exactly like an untimed one)."""
    import copy
    model = copy.deepcopy(model)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, channels, resolution, resolution, generator=g).to(device)
    y = torch.zeros(batch, dtype=torch.long, device=device)
    model.train()
    ts = []
    for _ in range(3):
        t = time.perf_counter()
        F.cross_entropy(model(x, arch), y).backward()
        ts.append(time.perf_counter() - t)
    model.zero_grad(set_to_none=True)
    return min(ts[1:])


def estimate_search_s(supernet, space, width_mult: float, resolution: int, channels: int, budget,
                      n_train: int, n_test: int, device="cpu", big=None) -> dict:
    """Seconds per step of the pipeline (and 'total'), from a timed step of ``big`` (the supernet's
    teacher; default the largest sub-network)."""
    big = big or space.largest(width_mult, resolution)
    sb, fb = budget.supernet, budget.finetune
    step = _step_s(supernet, big, sb.batch_size, resolution, channels, device)
    per_img = step / sb.batch_size
    sandwich = max(0, sb.epochs - sb.largest_epochs)
    passes = sb.largest_epochs + sandwich * (2 + sb.n_random)
    if sb.limit_batches is not None:
        n_sup = min(n_train, sb.limit_batches * sb.batch_size)
        n_fin = min(n_train, (fb.limit_batches or 10 ** 9) * fb.batch_size)
    else:
        n_sup = n_fin = n_train
    evals = budget.evo.population * budget.evo.generations * 2
    n8 = n_test if budget.int8_test_limit is None else min(n_test, budget.int8_test_limit)
    # the winner and each baseline grid point get the same recipe from scratch (tinynas.fair)
    final = getattr(budget, "final", None)
    recipe_epochs = final.epochs if final is not None else sb.epochs + fb.epochs
    if final is not None and final.limit_batches is not None:
        n_fin = min(n_train, final.limit_batches * final.batch_size)
    est = {
        "supernet": per_img * n_sup * passes * 0.6,            # sampled nets are smaller than the largest
        "search": evals * per_img / 3 * (budget.calib + budget.holdout),  # forward only
        "final_train": max(1, getattr(budget, "final_top", 1)) * per_img * 0.5 * n_fin * recipe_epochs,
        "int8": n8 * INT8_S_PER_IMAGE,
        "baseline": getattr(budget, "baseline_top", 1) * (per_img * 0.5 * n_fin * recipe_epochs
                                                           + n8 * INT8_S_PER_IMAGE),
    }
    est["total"] = sum(est.values())
    return est


def describe(est: dict) -> str:
    def fmt(s):
        if s >= 5400:
            return f"{s / 3600:.1f} h"
        return f"{s / 60:.0f} min" if s >= 90 else f"{s:.0f} s"
    parts = ", ".join(f"{k} {fmt(v)}" for k, v in est.items() if k != "total")
    return f"expected time ~{fmt(est['total'])} on this machine ({parts}; within a factor of ~2)"
