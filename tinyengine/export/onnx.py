"""The float PyTorch model of an architecture as ONNX (torch.onnx.export)."""
from __future__ import annotations

import warnings
from pathlib import Path

from tinyml_errors import ExportError, OutputError


def export_onnx(arch, model, path: str | Path, *, opset: int = 17) -> Path:
    """The float PyTorch ``model`` of ``arch`` as ONNX (input 'input' 1x C x R x R, output 'logits').

    Uses ``torch.onnx.export`` (TorchScript-based exporter, ``dynamo=False``), which needs the ``onnx``
    package; a ValueError names it when it is missing.
    """
    import torch
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ExportError("ONNX export needs the PyPI package 'onnx' (pip install onnx)") from None
    p = Path(path)
    if p.parent and not p.parent.exists():
        raise OutputError(f"--out {path}: folder {p.parent} does not exist")
    model = model.eval()
    x = torch.zeros(1, arch.in_channels, arch.resolution, arch.resolution)
    kw = dict(input_names=["input"], output_names=["logits"], opset_version=opset)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is "legacy" in 2.9+
        try:
            torch.onnx.export(model, (x,), str(p), dynamo=False, **kw)
        except TypeError:  # older torch without the dynamo flag
            torch.onnx.export(model, (x,), str(p), **kw)
    return p
