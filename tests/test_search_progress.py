"""The overall progress display of tinynas search (tinynas.progress): share done and time left over all
steps, plain lines off a terminal, a live rich bar on one."""
from __future__ import annotations

import io

from tinynas.progress import RunProgress


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_fraction_and_time_left_follow_the_estimates_and_the_measured_speed():
    clock, lines = Clock(), []
    p = RunProgress(("a", "b", "c"), lines.append, every=10, clock=clock, ticker=False)
    assert p.line().endswith("; time left not estimated yet")  # before the timed estimate: no made-up figure
    p.set_estimate({"a": 10, "b": 30, "c": 60, "total": 100, "unknown": 5})
    p.start("a")
    clock.t += 5
    assert p.fraction() == 0.05  # no report from the step: its elapsed time against its estimate
    clock.t += 15
    p.finish("a", computed=True)  # took 20 s for an estimated 10 s: the rest will be twice as slow
    assert p.fraction() == 0.1 and p.seconds_left() == 180
    assert lines[-1] == "overall |==------------------| 10% of the expected work done (after a); about 3 min left"
    p.start("b")
    clock.t += 30
    p.update(15, 30, "batch 15/30")
    assert p.fraction() == 0.25 and p.seconds_left() == 150
    n = len(lines)
    p.tick()  # 30 s since the last line, every=10: one plain line with the step and its detail
    assert len(lines) == n + 1 and "25%" in lines[-1] and "(step 2/3 b (batch 15/30))" in lines[-1]
    p.tick()  # not again before another 10 s
    assert len(lines) == n + 1
    p.finish("b", computed=True)
    p.finish("c", computed=False)  # reused from an earlier run: done, and no weight in the time left
    assert p.fraction() == 1.0 and p.seconds_left() == 0
    assert lines[-1].startswith("overall |====================| 100%") and "(after c (reused))" in lines[-1]


def test_reused_and_dropped_steps_weigh_nothing():
    clock = Clock()
    p = RunProgress(("a", "b", "c"), lambda m: None, clock=clock, ticker=False)
    p.set_estimate({"a": 50, "b": 25, "c": 25})
    p.finish("a", computed=False)
    p.drop("c")
    assert p.fraction() == 0.0 and p.seconds_left() == 25
    p.start("b")
    p.update(1, 2)
    assert p.fraction() == 0.5


def test_live_bar_on_a_terminal():
    from rich.console import Console
    buf = io.StringIO()
    con = Console(file=buf, force_terminal=True, width=120)
    lines = []
    p = RunProgress(("a", "b"), lines.append, live=True, console=con, ticker=False)
    p.set_estimate({"a": 10, "b": 10})
    p.log("a log line")
    p.start("a")
    p.update(1, 2, "batch 1/2")
    p.finish("a", computed=True)
    p.close()
    out = buf.getvalue()
    assert "a log line" in out and "overall" in out and "step 1/2 a (batch 1/2)" in out and "left" in out
    assert lines == []  # on a terminal the log lines go to the console, above the bar; no plain lines
