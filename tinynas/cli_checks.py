"""Command-line values of ``tinynas`` that argparse's types accept but that make no sense: each gets one
UsageError naming the flag and the accepted range, before any work starts."""
from __future__ import annotations

from search_spaces.model_limits import MAX_CLASSES, MAX_IN_CHANNELS
from tinyml_errors import UsageError

MAX_SAMPLES = 1_000_000  # per (W, R) space; the default is 1000


def check_range(flag: str, value, lo, hi=None) -> None:
    if value is None:
        return
    if value < lo or (hi is not None and value > hi):
        rng = f"at least {lo}" if hi is None else f"in {lo}..{hi}"
        raise UsageError(f"{flag}: must be {rng}, got {value}")


def check_space_args(args) -> None:
    check_range("--num-classes", args.num_classes, 1, MAX_CLASSES)
    check_range("--in-channels", args.in_channels, 1, MAX_IN_CHANNELS)
    check_range("--samples", args.samples, 1, MAX_SAMPLES)
    check_range("--top", args.top, 1)
    check_range("--min-fit", args.min_fit, 0, 1)
    check_range("--seed", args.seed, 0, 2 ** 32 - 1)


def check_device(spec: str | None) -> None:
    """``--device``: a torch device this machine has (cpu, cuda, cuda:N)."""
    if spec is None:
        return
    import torch
    try:
        d = torch.device(spec)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {spec!r}: not a torch device; use cpu, cuda or cuda:N") from None
    if d.type == "cpu":
        return
    if d.type != "cuda":
        raise UsageError(f"--device {spec!r}: only cpu and cuda are supported")
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n == 0:
        raise UsageError(f"--device {spec!r}: no CUDA device on this machine; use cpu")
    if d.index is not None and d.index >= n:
        raise UsageError(f"--device {spec!r}: this machine has {n} CUDA device(s) (cuda:0..cuda:{n - 1})")
