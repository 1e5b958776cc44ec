"""timings.json counts runs that were killed (tinynas/run_timings.py)."""
from __future__ import annotations

import json
import time

from tinynas.run_timings import RunTimings


def test_killed_run_is_counted_by_the_next(tmp_path):
    t = RunTimings(tmp_path, every=0.05)
    t["stage1_s"] = 2.0
    time.sleep(0.3)
    killed = json.loads((tmp_path / "timings.json").read_text())  # what a SIGKILL now would leave
    assert killed["stage1_s"] == 2.0 and killed["total_s"] >= 0.25
    del t
    again = RunTimings(tmp_path, every=0)
    assert again.base == killed
    again["stage1_s"] = 1.0
    again["total_s"] = 5.0
    final = json.loads((tmp_path / "timings.json").read_text())
    assert final["stage1_s"] == 3.0 and abs(final["total_s"] - (killed["total_s"] + 5.0)) < 1e-9


def test_timer_stops_when_the_run_finishes(tmp_path):
    t = RunTimings(tmp_path, every=0.05)
    t["total_s"] = 1.0
    (tmp_path / "timings.json").write_text("final\n")  # the search's own last write
    time.sleep(0.2)
    assert (tmp_path / "timings.json").read_text() == "final\n"


def test_unreadable_earlier_timings_start_from_zero(tmp_path):
    (tmp_path / "timings.json").write_text("{trunc")
    assert RunTimings(tmp_path, every=0).base == {}
