"""A visual-wake-words-like binary task built offline from the real Fashion-MNIST images.

``fashion-vww`` asks "is an item of the target class somewhere in this picture?". Every image is a
black ``canvas`` x ``canvas`` grey-scale picture holding 1 to 3 Fashion-MNIST items pasted at random
positions and random sizes (``min_scale`` .. ``max_scale`` of the canvas side; overlaps keep the
brighter pixel). Positives hold one item of the target class (default: Sneaker) and 0-2 distractors;
negatives hold 1-3 distractors only, so the item count says nothing about the label. Distractors are
drawn from the other nine classes, including the look-alikes (Sandal, Ankle boot), so small items
need resolution and the decision needs capacity: on a 32-256 KB SRAM budget resolution competes with
width, as on Visual Wake Words.

Deterministic from ``seed``; labels are exactly balanced (half positives); the training images are
composed only from the official Fashion-MNIST training split and the test images only from the
official test split (``t10k``), so no source item is shared between them.

Spec strings (``--data``): ``fashion-vww`` (64 px canvas, target Sneaker), ``fashion-vww:96``,
``fashion-vww:128:bag`` (canvas 64..128, target class by name or index).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyml_errors import DatasetError
from tinynas.data import FASHION_CLASSES, FASHION_DIR, load_fashion_mnist_uint8

PREFIX = "fashion-vww"
DEFAULT_TARGET = 7  # Sneaker: Sandal and Ankle boot are its look-alike distractors
CANVAS_RANGE = (64, 128)
CLASS_NAMES = ("no target", "target")


@dataclass(frozen=True)
class VWWSpec:
    canvas: int = 64
    target: int = DEFAULT_TARGET
    min_scale: float = 0.2     # item side as a fraction of the canvas side
    max_scale: float = 0.55
    max_items: int = 3

    @property
    def name(self) -> str:
        return f"{PREFIX}:{self.canvas}:{FASHION_CLASSES[self.target].split('/')[0].lower()}"

    def resolutions(self) -> tuple[int, ...]:
        """Input resolutions the search may use: a quarter of the canvas up to the canvas, step 8."""
        return tuple(range(max(24, self.canvas // 4 // 8 * 8), self.canvas + 1, 8))


def is_vww(spec: str) -> bool:
    return spec == PREFIX or spec.startswith(PREFIX + ":")


def parse_spec(spec: str) -> VWWSpec:
    """``fashion-vww[:CANVAS[:TARGET]]`` -> VWWSpec; DatasetError naming the bad part."""
    if not is_vww(spec):
        raise DatasetError(f"--data: {spec!r} is not a {PREFIX} spec ({PREFIX}[:CANVAS[:TARGET]])")
    parts = spec.split(":")[1:]
    if len(parts) > 2:
        raise DatasetError(f"--data: {spec!r} has too many fields; use {PREFIX}[:CANVAS[:TARGET]]")
    canvas, target = 64, DEFAULT_TARGET
    if parts:
        try:
            canvas = int(parts[0])
        except ValueError:
            raise DatasetError(f"--data: canvas {parts[0]!r} in {spec!r} is not a whole number of pixels") from None
        if not CANVAS_RANGE[0] <= canvas <= CANVAS_RANGE[1]:
            raise DatasetError(f"--data: canvas {canvas} in {spec!r} must be {CANVAS_RANGE[0]}..{CANVAS_RANGE[1]} px")
    if len(parts) == 2:
        names = [c.split("/")[0].lower().replace(" ", "-") for c in FASHION_CLASSES]
        t = parts[1].lower()
        if t.isdigit() and int(t) < len(FASHION_CLASSES):
            target = int(t)
        elif t in names:
            target = names.index(t)
        else:
            raise DatasetError(f"--data: target class {parts[1]!r} in {spec!r} is not one of "
                               f"{', '.join(names)} (or 0..9)")
    return VWWSpec(canvas=canvas, target=target)


def make_vww(spec: VWWSpec, split: str, n: int, *, seed: int = 0, root: Path = FASHION_DIR,
             return_sources: bool = False):
    """``n`` images (uint8 (n, 1, canvas, canvas)) and labels (int64, 0/1, exactly n//2 positives
    rounded up) composed from the ``split`` ('train' or 'test') Fashion-MNIST images.

    With ``return_sources``, also an int64 (n, max_items) array of the source images' indices
    within that split (-1 for unused slots)."""
    from PIL import Image

    if split not in ("train", "test"):
        raise DatasetError(f"fashion-vww: split must be 'train' or 'test', got {split!r}")
    if n < 2:
        raise DatasetError(f"fashion-vww: need at least 2 images, got {n}")
    src, lab = load_fashion_mnist_uint8(split, root=root)
    src = src[:, 0]
    rng = np.random.default_rng([seed, 0 if split == "train" else 1, spec.canvas, spec.target])
    targets = np.flatnonzero(lab == spec.target)
    others = np.flatnonzero(lab != spec.target)
    labels = np.zeros(n, np.int64)
    labels[:(n + 1) // 2] = 1
    rng.shuffle(labels)
    c = spec.canvas
    x = np.zeros((n, 1, c, c), np.uint8)
    sources = np.full((n, spec.max_items), -1, np.int64)
    for i in range(n):
        k = int(rng.integers(1, spec.max_items + 1))            # items in the picture
        items = list(rng.choice(others, size=k, replace=False))
        if labels[i]:
            items[0] = int(rng.choice(targets))                 # one of them is the target
        rng.shuffle(items)
        canvas = np.zeros((c, c), np.uint8)
        for j, idx in enumerate(items):
            side = int(round(c * rng.uniform(spec.min_scale, spec.max_scale)))
            side = max(8, min(c, side))
            im = np.asarray(Image.fromarray(src[idx]).resize((side, side), Image.BILINEAR))
            y0, x0 = (int(v) for v in rng.integers(0, c - side + 1, size=2))
            np.maximum(canvas[y0:y0 + side, x0:x0 + side], im, out=canvas[y0:y0 + side, x0:x0 + side])
            sources[i, j] = idx
        x[i, 0] = canvas
    return (x, labels, sources) if return_sources else (x, labels)


def load_vww(spec_str: str, *, train_n: int | None = None, test_n: int | None = None, seed: int = 0):
    """(x_train, y_train, x_test, y_test, class names, description, resolutions) for a --data spec.
    Defaults: 30,000 training and 5,000 test pictures."""
    spec = parse_spec(spec_str)
    train_n = 30_000 if train_n is None else train_n
    test_n = 5_000 if test_n is None else test_n
    xtr, ytr = make_vww(spec, "train", train_n, seed=seed)
    xte, yte = make_vww(spec, "test", test_n, seed=seed)
    desc = (f"{spec.name} (Fashion-MNIST items on a {spec.canvas} px canvas; is a "
            f"{FASHION_CLASSES[spec.target]} present?)")
    return xtr, ytr, xte, yte, list(CLASS_NAMES), desc, spec.resolutions()
