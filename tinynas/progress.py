"""One progress display for the whole ``tinynas search``: every step, with the time left.

Each step of the pipeline (``tinynas.search_pipeline.STEPS``) weighs what ``tinynas.eta`` expects
it to take. Inside a step the progress comes from the step itself (training batches, evolution
generations) or, where a step reports nothing (stage 1, the int8 reference), from its elapsed time
against its estimate (capped below 100% until the step ends). The time left is the expected work
still to do, scaled by how the finished steps compared with their estimates.

* On a terminal (``live=True``): a ``rich`` bar at the bottom (share done, current step, time left),
  refreshed twice a second; log lines print above it. The steps' own tqdm bars are then off.
* Elsewhere (a log file, CI): plain lines ``overall |=====-----| 45% ... about 3 min left``, one
  when a step ends and at most one every ``every`` seconds in between.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

# weights for a step without an estimate (stage 1 runs before the timed estimate exists)
DEFAULT_S = {"stage1": 5.0, "supernet": 60.0, "search": 30.0, "final_train": 20.0, "int8": 5.0,
             "baseline": 25.0, "report": 0.5}


def fmt_s(s: float) -> str:
    if s >= 5400:
        return f"{s / 3600:.1f} h"
    return f"{s / 60:.0f} min" if s >= 90 else f"{s:.0f} s"


class RunProgress:
    def __init__(self, steps: tuple[str, ...], log: Callable[[str], None], *, live: bool = False,
                 console=None, every: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 ticker: bool = True):
        self.steps = list(steps)
        self.est = {s: DEFAULT_S.get(s, 1.0) for s in self.steps}
        self.estimated = False                   # set_estimate called: the time left means something
        self._log, self.live, self.every, self.clock = log, live, every, clock
        self.done_steps: dict[str, float] = {}   # step -> real seconds (0 for reused steps)
        self.skipped: set[str] = set()
        self.current: str | None = None
        self.t_step = 0.0
        self.frac: float | None = None           # reported fraction of the current step
        self.detail = ""
        self.last_plain = clock()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._prog = self._task = None
        if live:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
            self._prog = Progress(TextColumn("[bold]overall"), BarColumn(), TaskProgressColumn(),
                                  TextColumn("{task.fields[what]}"), TextColumn("[cyan]{task.fields[left]}"),
                                  console=console or Console(), auto_refresh=False, transient=False)
            self._task = self._prog.add_task("overall", total=1000, what="", left="")
            self._prog.start()
        self._thread = None
        if ticker:
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ inputs
    def set_estimate(self, est: dict) -> None:
        """Seconds per step from ``tinynas.eta.estimate_search_s`` (steps it does not name keep theirs)."""
        with self._lock:
            self.estimated = True
            for k, v in est.items():
                if k in self.est and k not in self.done_steps:
                    self.est[k] = max(0.01, float(v))
        self.refresh()

    def drop(self, step: str) -> None:
        """A step this run will not do (``--no-baseline``): no weight."""
        with self._lock:
            if step in self.est:
                self.est[step] = 0.0

    def log(self, msg: str) -> None:
        with self._lock:
            if self._prog is not None:
                self._prog.console.print(msg, highlight=False)
                self._prog.refresh()
            else:
                self._log(msg)

    def start(self, step: str) -> None:
        with self._lock:
            self.current, self.t_step, self.frac, self.detail = step, self.clock(), None, ""
        self.refresh()

    def update(self, done: float, total: float, detail: str = "") -> None:
        """Progress inside the current step: ``done`` of ``total`` units."""
        with self._lock:
            self.frac = min(1.0, max(0.0, done / total)) if total else None
            self.detail = detail
        self.refresh()

    def finish(self, step: str, computed: bool) -> None:
        with self._lock:
            real = self.clock() - self.t_step if self.current == step else 0.0
            self.done_steps[step] = real if computed else 0.0
            if not computed:
                self.skipped.add(step)
            self.current, self.frac, self.detail = None, None, ""
        self.refresh()
        if not self.live:
            self._plain(f"after {step}" + ("" if computed else " (reused)"))

    def close(self) -> None:
        self._stop.set()
        if self._prog is not None:
            with self._lock:
                self._prog.refresh()
                self._prog.stop()
            self._prog = None

    # ------------------------------------------------------------------ figures
    def _current_frac(self) -> float:
        if self.current is None:
            return 0.0
        if self.frac is not None:
            return self.frac
        e = self.est.get(self.current, 1.0)
        return min(0.95, (self.clock() - self.t_step) / e) if e > 0 else 0.0

    def fraction(self) -> float:
        """Share of this run's expected work done (reused steps count as done and weigh nothing)."""
        with self._lock:
            todo = {s: e for s, e in self.est.items() if s not in self.skipped}
            total = sum(todo.values())
            if total <= 0:
                return 1.0
            done = sum(e for s, e in todo.items() if s in self.done_steps)
            if self.current in todo and self.current not in self.done_steps:
                done += todo[self.current] * self._current_frac()
            return min(1.0, done / total)

    def seconds_left(self) -> float:
        with self._lock:
            fin = [s for s in self.done_steps if s not in self.skipped]
            est_done = sum(self.est[s] for s in fin)
            real_done = sum(self.done_steps[s] for s in fin)
            cur_frac = 0.0
            if self.current is not None and self.current not in self.done_steps and self.est.get(self.current):
                cur_frac = self._current_frac()
                est_done += self.est[self.current] * cur_frac
                real_done += self.clock() - self.t_step
            speed = real_done / est_done if est_done > 1.0 and real_done > 0 else 1.0
            left = sum(e for s, e in self.est.items() if s not in self.done_steps and s not in self.skipped
                       and s != self.current)
            if self.current is not None and self.current not in self.done_steps:
                left += self.est.get(self.current, 0.0) * (1 - cur_frac)
            return max(0.0, left * speed)

    def _what(self) -> str:
        if self.current is None:
            return "done" if len(self.done_steps) == len([s for s in self.steps if self.est[s] > 0]) else ""
        i = self.steps.index(self.current) + 1 if self.current in self.steps else 0
        return f"step {i}/{len(self.steps)} {self.current}" + (f" ({self.detail})" if self.detail else "")

    def line(self, why: str = "") -> str:
        pct = 100 * self.fraction()
        bar = "=" * int(pct // 5) + "-" * (20 - int(pct // 5))
        what = why or self._what()
        return f"overall |{bar}| {pct:.0f}% of the expected work done ({what}); " + self._left("about {} left")

    def _left(self, pattern: str) -> str:
        """The time left, or that it is not estimated yet (before the timed estimate, after stage 1)."""
        return pattern.format(fmt_s(self.seconds_left())) if self.estimated else "time left not estimated yet"

    # ------------------------------------------------------------------ output
    def refresh(self) -> None:
        with self._lock:
            if self._prog is not None:
                self._prog.update(self._task, completed=int(1000 * self.fraction()), what=self._what(),
                                  left=self._left("~{} left"))
                self._prog.refresh()

    def _plain(self, why: str = "") -> None:
        self.last_plain = self.clock()
        self._log(self.line(why))

    def tick(self) -> None:
        """One refresh (live) or, when ``every`` seconds have passed, one plain line."""
        if self.live:
            self.refresh()
        elif self.current is not None and self.clock() - self.last_plain >= self.every:
            self._plain()

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a display never stops a search
                pass
