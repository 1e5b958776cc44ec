"""Datasets that work offline: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package.

Images come back as float32 NCHW in [0, 1], resized (bilinear) to the requested resolution and
repeated to the requested number of channels; labels as int64.
"""
from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np

from tinyml_errors import DatasetError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")




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
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
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


# --------------------------------------------------------------------------- uint8 sources for training
def load_fashion_mnist_uint8(split: str = "train", *, limit: int | None = None,
                             root: Path = FASHION_DIR) -> tuple[np.ndarray, np.ndarray]:
    """Raw Fashion-MNIST: uint8 (N, 1, 28, 28) and int64 labels (training resizes per batch)."""
    if split not in ("train", "test"):
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
    stem = "train" if split == "train" else "t10k"
    x = _idx(root / f"{stem}-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    y = _idx(root / f"{stem}-labels-idx1-ubyte.gz", 8).astype(np.int64)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return np.array(x, copy=True), np.array(y, copy=True)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def load_image_folder(path: str | Path, *, size: int = 64, channels: int = 3, limit: int | None = None,
                      classes: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """An ``ImageFolder``-style directory (one sub-directory of images per class) as uint8
    (N, channels, size, size), int64 labels and the class names (sorted sub-directory names)."""
    from PIL import Image

    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"--data: {root} is not a directory")
    names = classes or sorted(d.name for d in root.iterdir() if d.is_dir())
    if len(names) < 2:
        raise DatasetError(f"--data: {root} needs one sub-directory per class (at least 2), found {len(names)}")
    files = [(f, ci) for ci, c in enumerate(names) if (root / c).is_dir()
             for f in sorted((root / c).rglob("*")) if f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DatasetError(f"--data: no images ({', '.join(IMAGE_SUFFIXES)}) under {root}/<class>/")
    if limit is not None:
        rng = np.random.default_rng(0)
        files = [files[i] for i in sorted(rng.permutation(len(files))[:limit])]
    mode = "L" if channels == 1 else "RGB"
    xs = np.zeros((len(files), channels, size, size), np.uint8)
    for i, (f, _) in enumerate(files):
        try:
            with warnings.catch_warnings():  # an image over PIL's pixel limit is an error, not a warning
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(f) as im:
                    a = np.asarray(im.convert(mode).resize((size, size), Image.BILINEAR))
        except (OSError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise DatasetError(f"--data: cannot read image {f} ({e})") from None
        xs[i] = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return xs, np.array([c for _, c in files], np.int64), names
