"""``timings.json`` that also counts runs that were killed.

The search adds each run's stage times to ``OUT/timings.json`` ("summed over all runs"). Written only at
the end, a run killed by SIGKILL or a crash never got there. :class:`RunTimings` is the run's timing
dict that keeps ``timings.json`` current instead: the earlier runs' sums plus this run so far, rewritten
atomically whenever a stage time is set and every ``every`` seconds from a daemon thread (``total_s``
then counts the elapsed wall time, so a killed run loses at most that much).
"""
from __future__ import annotations

import json
import os
import threading
import time
import weakref
from pathlib import Path


class RunTimings(dict):
    def __init__(self, out: str | Path, every: float = 10.0):
        super().__init__()
        self.path = Path(out) / "timings.json"
        self.t0 = time.perf_counter()
        try:
            base = json.loads(self.path.read_text()) if self.path.exists() else {}
        except (OSError, ValueError, RecursionError):
            base = {}
        self.base: dict[str, float] = {k: float(v) for k, v in base.items()
                                       if isinstance(v, (int, float)) and not isinstance(v, bool)} \
            if isinstance(base, dict) else {}
        self._lock = threading.Lock()
        self._owner = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 writes
        if self._owner and every > 0:
            threading.Thread(target=_tick, args=(weakref.ref(self), every), daemon=True).start()

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self.save()

    def so_far(self) -> dict[str, float]:
        run = dict(self)
        run.setdefault("total_s", time.perf_counter() - self.t0)
        return {k: self.base.get(k, 0.0) + run.get(k, 0.0) for k in set(self.base) | set(run)}

    def save(self, from_timer: bool = False) -> None:
        if not self._owner or not self.path.parent.is_dir():
            return
        with self._lock:
            if from_timer and "total_s" in self:
                return  # the run has finished: the search writes the final sums itself
            tmp = self.path.with_name(self.path.name + ".tmp")
            try:
                tmp.write_text(json.dumps(self.so_far(), indent=1, sort_keys=True) + "\n")
                os.replace(tmp, self.path)
            except OSError:
                pass  # timings are a report, never a reason to stop a search



def _tick(ref: "weakref.ref[RunTimings]", every: float) -> None:
    """Save every ``every`` seconds until the run finishes (``total_s`` set) or its timings are gone."""
    while True:
        time.sleep(every)
        t = ref()
        if t is None or "total_s" in t:
            return
        t.save(from_timer=True)
        del t
