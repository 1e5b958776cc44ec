"""Up-front checks of an ImageFolder ``--data`` tree, before a search claims its output folder.

Only folder listings are read (no image is decoded), so the check is cheap: each class folder must
hold at least one image, and a ``train``/``test`` (or ``val``) split must name the same classes.
"""
from __future__ import annotations

from pathlib import Path

from tinyml_errors import DatasetError
from tinynas.data import IMAGE_SUFFIXES


def _classes(root: Path) -> dict[str, int]:
    """Class folder name -> number of image files under it."""
    return {d.name: sum(1 for f in d.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
            for d in sorted(root.iterdir()) if d.is_dir()}


def _check_tree(root: Path) -> list[str]:
    classes = _classes(root)
    if len(classes) < 2:
        raise DatasetError(f"--data: {root} needs one sub-folder of images per class (at least 2), "
                           f"found {len(classes)}")
    empty = [c for c, n in classes.items() if n == 0]
    if empty:
        raise DatasetError(f"--data: class folder {root / empty[0]} holds no images ({', '.join(IMAGE_SUFFIXES)})"
                           + (f" (and {len(empty) - 1} more empty classes)" if len(empty) > 1 else "")
                           + "; add images or remove the folder")
    return sorted(classes)


def check_image_folder(spec: str) -> None:
    """A DatasetError naming the folder when ``spec`` (not 'fashion-mnist') is not a usable ImageFolder."""
    if spec == "fashion-mnist":
        return
    root = Path(spec)
    if not root.is_dir():
        raise DatasetError(f"--data: {spec!r} is neither 'fashion-mnist', 'fashion-vww[:CANVAS[:TARGET]]' nor "
                           "a folder")
    test_dir = next((root / d for d in ("test", "val") if (root / d).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        train, test = _check_tree(root / "train"), _check_tree(test_dir)
        if train != test:
            only_tr, only_te = sorted(set(train) - set(test)), sorted(set(test) - set(train))
            parts = ([f"only in {root / 'train'}: {', '.join(only_tr[:5])}"] if only_tr else []) + \
                    ([f"only in {test_dir}: {', '.join(only_te[:5])}"] if only_te else [])
            raise DatasetError(f"--data: the train and {test_dir.name} folders name different classes ("
                               + "; ".join(parts) + "); both need the same class sub-folders")
    else:
        _check_tree(root)
