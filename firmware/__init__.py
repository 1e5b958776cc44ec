"""The C side, shipped as package data: the kernel library (include/, src/), the probe application
(app/), the QEMU MPS2 runtime (qemu/) and the offline PlatformIO dev-platform (platformio/).

``root()`` is the folder on disk (found with importlib.resources, so it works from a wheel as well
as from the repository)."""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def root() -> Path:
    """The firmware folder on disk."""
    return Path(str(files(__name__)))
