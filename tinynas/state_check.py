"""Before a search resumes: every saved state file in its output folder must be readable.

A run killed while writing, or a full disk, can leave a truncated JSON file or checkpoint. Rather than
a parser's traceback deep in the run, the damaged file is named up front with what to do. JSON files
are parsed; ``.pt`` checkpoints (zip archives, as torch.save writes them) have their archive checked
without loading anything.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

from tinyml_errors import StateError


def damaged_state(out: Path, skip: set[str] = frozenset()) -> tuple[Path, str] | None:
    """(file, reason) for the first saved state file under ``out`` that cannot be read, or None.
    ``skip``: relative paths that are not the search's (files kept with --force)."""
    if not out.is_dir():
        return None
    for p in sorted(out.rglob("*")):
        if not p.is_file() or p.relative_to(out).as_posix() in skip:
            continue
        if p.suffix == ".json":
            try:
                json.loads(p.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                return p, f"not valid JSON ({getattr(e, 'msg', e)})"
            except RecursionError:
                return p, "JSON nested too deeply"
        elif p.suffix == ".pt":
            try:
                with zipfile.ZipFile(p) as z:
                    bad = z.testzip()
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                return p, f"truncated or not a checkpoint ({e})"
            if bad is not None:
                return p, f"damaged checkpoint (member {bad})"
    return None


def check_state(out: Path, skip: set[str] = frozenset()) -> None:
    """A StateError naming the damaged file and what to do."""
    found = damaged_state(out, skip)
    if found:
        p, why = found
        raise StateError(f"{p}: saved search state cannot be read: {why} (a run killed while writing, or a "
                         f"full disk?); delete that file to recompute its part, or use a new --out")
