"""Named, resumable steps of a run folder: each records its completion in ``OUT/steps.json``.

``tinynas search`` is a chain of steps (``tinynas.search_pipeline.STEPS``). A step that finishes
writes a record (JSON, no pickle) with its result and an *input fingerprint*: a hash of the step's
own inputs (the settings it uses) and of every earlier step's result. On a rerun into the same
folder:

* a step whose record is there with the same fingerprint is skipped and its saved result used;
* a step with no record (the run was interrupted in it, or never got there) runs, and resumes from
  whatever its own state files hold (training checkpoints, the evolution's state);
* a step whose record has another fingerprint (an earlier step now gave another result) is stale:
  its state files are deleted and it runs again, and so does everything after it;
* ``start_from(name)`` (``tinynas search --from NAME``) forgets ``name`` and every later step, and
  deletes their state files, so they are recomputed from scratch.

Only one process writes (rank 0 under torchrun); the others read.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

from tinyml_errors import UsageError

FILE = "steps.json"
FORMAT = "tinynas-steps/1"


def fingerprint(obj) -> str:
    """A short SHA-256 of the canonical JSON of ``obj``."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class StepRunner:
    def __init__(self, out: str | Path, order: tuple[str, ...], files: dict[str, tuple[str, ...]] | None = None,
                 *, writer: bool = True, log: Callable[[str], None] = print):
        self.out = Path(out)
        self.order = tuple(order)
        self.files = files or {}
        self.writer = writer
        self.log = log
        self.path = self.out / FILE
        self.records: dict[str, dict] = {}
        if self.path.exists():
            d = json.loads(self.path.read_text())  # readability is checked up front (tinynas.state_check)
            if isinstance(d, dict) and d.get("format") == FORMAT and isinstance(d.get("steps"), dict):
                self.records = d["steps"]
        self.chain = ""               # fingerprint of every result so far
        self.ran: list[str] = []      # steps computed (not skipped) by this process
        self.skipped: list[str] = []
        self.seconds: dict[str, float] = {}
        self.before_step: Callable[[str], None] | None = None   # hooks (progress display, tests)
        self.after_step: Callable[[str, dict, bool], None] | None = None

    # ------------------------------------------------------------------ bookkeeping
    def check_name(self, name: str, flag: str = "--from") -> None:
        if name not in self.order:
            raise UsageError(f"{flag}: unknown step {name!r}; the steps are {', '.join(self.order)}")

    def _save(self) -> None:
        if not self.writer:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(FILE + ".tmp")
        tmp.write_text(json.dumps({"format": FORMAT, "order": list(self.order), "steps": self.records},
                                  indent=1) + "\n")
        os.replace(tmp, self.path)

    def _delete_files(self, name: str) -> None:
        if not self.writer:
            return
        for rel in self.files.get(name, ()):
            p = self.out / rel
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()

    def start_from(self, name: str) -> None:
        """Forget ``name`` and every later step and delete their state files (``--from NAME``)."""
        self.check_name(name)
        for later in self.order[self.order.index(name):]:
            self.records.pop(later, None)
            self._delete_files(later)
        self._save()

    def done(self, name: str) -> bool:
        return name in self.records

    # ------------------------------------------------------------------ running
    def run(self, name: str, inputs, fn: Callable[[], dict]) -> dict:
        """The result of step ``name``: saved (same fingerprint) or computed by ``fn()`` (a JSON dict)."""
        self.check_name(name, "step")
        fp = fingerprint({"step": name, "inputs": inputs, "before": self.chain})
        rec = self.records.get(name)
        if self.before_step:
            self.before_step(name)
        if rec is not None and rec.get("fingerprint") == fp:
            result = rec["result"]
            self.skipped.append(name)
            self.log(f"step {name}: done in an earlier run ({rec.get('seconds', 0):.0f} s), result reused")
            computed = False
        else:
            if rec is not None:  # stale: its inputs changed; its state files belong to the old inputs
                self.log(f"step {name}: inputs changed since it ran, recomputing")
                self.records.pop(name)
                for later in self.order[self.order.index(name):]:
                    if later != name and later in self.records:
                        self.records.pop(later)
                    self._delete_files(later)
                self._save()
            t = time.perf_counter()
            result = json.loads(json.dumps(fn(), default=_plain))  # the JSON view, as a rerun reads it
            secs = time.perf_counter() - t
            self.seconds[name] = secs
            self.records[name] = {"done": True, "fingerprint": fp, "seconds": secs, "result": result,
                                  "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            self._save()
            self.ran.append(name)
            computed = True
        self.chain = fingerprint([self.chain, name, result])
        if self.after_step:
            self.after_step(name, result, computed)
        return result


def _plain(o):
    """NumPy scalars (costs, accuracies) as plain numbers."""
    import numpy as np
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"step result: {type(o).__name__} is not JSON")
