"""One output folder, one set of search settings: a rerun with other limits or data is refused.

``tinynas search`` resumes from what its output folder holds. Resuming is only right when the
folder was written with the same settings: a rerun at ``--sram 15KB`` into a folder searched at
16 KB would otherwise reuse the old winner and report it as fitting. ``check_run_settings`` writes
``settings.json`` on the first run and, on later runs, names every setting that differs.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from tinyml_errors import SearchError

FILE = "settings.json"


def budget_fingerprint(budget) -> str:
    """A short hash of every field of a Budget (so an edited budget counts as another setting)."""
    return hashlib.sha256(repr(budget).encode()).hexdigest()[:16]


def _flat(d: dict, prefix: str = "") -> dict:
    """{"constraints": {"sram_bytes": 1}} -> {"constraints.sram_bytes": 1}: differences name the field."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_run_settings(out: Path, settings: dict) -> None:
    """Write OUT/settings.json, or raise SearchError when the saved settings differ from ``settings``."""
    f = Path(out) / FILE
    now = json.loads(json.dumps(settings))  # the JSON view (tuples -> lists), as saved
    if f.exists():
        try:
            saved = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise SearchError(f"--out {out}: {f} is unreadable ({e}); use another --out or remove it") from None
        saved, now = _flat(saved), _flat(now)
        diff = [k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
        if diff:
            parts = "; ".join(f"{k}: saved {saved.get(k)!r}, now {now.get(k)!r}" for k in diff)
            raise SearchError(f"--out {out} holds a search run with other settings ({parts}); its results "
                              "would be mixed with this run's. Use another --out, or remove the folder to "
                              "start over")
        return
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, f)
