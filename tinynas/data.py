"""Datasets that work offline: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package.

Images come back as float32 NCHW in [0, 1], resized (bilinear) to the requested resolution and
repeated to the requested number of channels; labels as int64.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


class DatasetError(RuntimeError):
    pass


def _idx(path: Path, offset: int) -> np.ndarray:
    try:
        with gzip.open(path) as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)
    except FileNotFoundError:
        raise DatasetError(f"{path} not found: install the Debian package dataset-fashion-mnist "
                           "(apt-get install dataset-fashion-mnist; `make setup` does it as root)") from None


def load_fashion_mnist(split: str = "train", *, resolution: int = 28, channels: int = 1,
                       limit: int | None = None, root: Path = FASHION_DIR) -> tuple[np.ndarray, np.ndarray]:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    stem = "train" if split == "train" else "t10k"
    x = _idx(root / f"{stem}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    y = _idx(root / f"{stem}-labels-idx1-ubyte.gz", 8).astype(np.int64)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return prepare_images(x, resolution, channels), y


def prepare_images(x_uint8: np.ndarray, resolution: int, channels: int) -> np.ndarray:
    """(N, H, W) uint8 -> (N, channels, resolution, resolution) float32 in [0, 1]."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.array(x_uint8, copy=True)).float().div_(255.0).unsqueeze(1)
    if t.shape[-1] != resolution:
        t = F.interpolate(t, size=(resolution, resolution), mode="bilinear", align_corners=False)
    if channels != 1:
        t = t.repeat(1, channels, 1, 1)
    return t.numpy()
