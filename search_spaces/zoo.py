"""The project's model zoo: published MCUNet/MobileNetV2/ProxylessNAS architectures in our format.

The JSON files under ``search_spaces/zoo/`` were converted once from the public ``net.config`` files
(``scripts/build_zoo.py``) and are the project's own copies; published figures ride along in ``meta``.
"""
from __future__ import annotations

import difflib
from importlib.resources import files
from pathlib import Path

from search_spaces.arch import ArchConfig, ArchError
from search_spaces.reference import from_mcunet_config, is_mcunet_config
from tinyml_errors.files import read_json

ZOO_DIR = Path(str(files("search_spaces") / "zoo"))


def zoo_names() -> list[str]:
    return sorted(p.stem for p in ZOO_DIR.glob("*.json"))


def load_zoo(name: str) -> ArchConfig:
    p = ZOO_DIR / f"{name}.json"
    if not p.is_file():
        close = difflib.get_close_matches(name, zoo_names(), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ArchError(f"unknown zoo model '{name}'{hint}; available: {', '.join(zoo_names())}")
    return ArchConfig.load(p)


def load_model(spec: str) -> ArchConfig:
    """A zoo name, a path to one of our arch JSON files, or a path to an MCUNet ``net.config`` JSON."""
    p = Path(spec)
    if p.suffix == ".json" or p.exists():
        if not p.is_file():
            raise ArchError(f"{spec}: no such architecture file")
        d = read_json(p, ArchError, what=spec)
        if is_mcunet_config(d):
            return from_mcunet_config(d, name=p.stem, where=str(p))
        return ArchConfig.from_dict(d, where=str(p))
    return load_zoo(spec)
