"""Float PyTorch models of our architectures for post-training quantisation: seeded random weights (with
BatchNorm statistics that look trained), or a user's state_dict, checked key by key and loaded safely."""
from __future__ import annotations

from pathlib import Path

import torch

from search_spaces.arch import ArchConfig
from search_spaces.torch_model import build_torch_model
from tinyml_errors import UsageError


def random_model(arch: ArchConfig, seed: int) -> torch.nn.Module:
    """A freshly initialised network with randomised BatchNorm statistics and affine terms (seeded),
    so that folded weights and activation ranges look like a trained model's, not an identity BN's."""
    torch.manual_seed(seed)
    model = build_torch_model(arch)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
    return model.eval()


def load_weights(arch: ArchConfig, path: str | Path) -> torch.nn.Module:
    """The network of ``arch`` with a state_dict from ``path`` loaded strictly; a UsageError that lists
    missing keys, unexpected keys and shape mismatches otherwise."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--weights {path}: no such file (give 'random' or a state_dict saved with torch.save)")
    try:
        sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise UsageError(f"--weights {path}: not a PyTorch state_dict file ({type(e).__name__}: {e})") from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UsageError(f"--weights {path}: expected a state_dict (a dict of tensors), got {type(sd).__name__}")
    model = build_torch_model(arch)
    want = model.state_dict()
    missing = [k for k in want if k not in sd]
    unexpected = [k for k in sd if k not in want]
    shapes = [f"{k} {tuple(sd[k].shape)} (model has {tuple(want[k].shape)})"
              for k in want if k in sd and tuple(sd[k].shape) != tuple(want[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        for what, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
            if items:
                more = f" and {len(items) - 5} more" if len(items) > 5 else ""
                parts.append(f"{what}: {', '.join(items[:5])}{more}")
        raise UsageError(f"--weights {path} does not match architecture '{arch.name or 'model'}': "
                         + "; ".join(parts))
    model.load_state_dict(sd, strict=True)
    return model.eval()
