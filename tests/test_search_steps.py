"""tinynas search as named, resumable steps (tinynas.steps, tinynas.search_pipeline): an interrupted run
resumes without recomputing finished steps and ends where an uninterrupted run ends; --from; --no-baseline;
the fair winner-vs-baseline comparison in the report."""
from __future__ import annotations

import json

import pytest

from tinyml_cli.nas import main
from tinynas import search as search_mod
from tinynas import search_pipeline
from tinynas.constraints import constraints_from_args
from tinynas.search import SearchOptions, run_search
from tinynas.steps import FILE, StepRunner

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONS = constraints_from_args(None, "64KB", "256KB")


@pytest.fixture
def tiny(monkeypatch):
    from tests.test_search import TINY
    monkeypatch.setitem(search_mod.BUDGETS, "smoke", TINY)


# ------------------------------------------------------------------------------------ StepRunner
def test_step_runner_skips_done_steps_and_recomputes_stale_ones(tmp_path):
    calls = []

    def step(name, value):
        def fn():
            calls.append(name)
            (tmp_path / f"{name}.state").write_text("x")
            return {"v": value}
        return fn

    files = {n: (f"{n}.state",) for n in "abc"}
    r = StepRunner(tmp_path, ("a", "b", "c"), files, log=lambda m: None)
    assert [r.run(n, {}, step(n, 1))["v"] for n in "abc"] == [1, 1, 1] and calls == ["a", "b", "c"]
    rec = json.loads((tmp_path / FILE).read_text())["steps"]
    assert set(rec) == {"a", "b", "c"} and all(v["done"] and len(v["fingerprint"]) == 16 for v in rec.values())

    calls.clear()  # a rerun: nothing recomputed
    r = StepRunner(tmp_path, ("a", "b", "c"), files, log=lambda m: None)
    for n in "abc":
        r.run(n, {}, step(n, 1))
    assert calls == [] and r.skipped == ["a", "b", "c"]

    calls.clear()  # a changes its result: b and c are stale (their inputs changed) and run again
    r = StepRunner(tmp_path, ("a", "b", "c"), files, log=lambda m: None)
    r.start_from("a")
    assert not (tmp_path / "a.state").exists() and not (tmp_path / "c.state").exists()
    r.run("a", {}, step("a", 2))
    assert not (tmp_path / "b.state").exists()  # b's saved state was for a=1: deleted before it reruns
    r.run("b", {}, step("b", 1))
    r.run("c", {}, step("c", 1))
    assert calls == ["a", "b", "c"]

    calls.clear()  # other inputs of b (its own settings): b and c rerun, a is kept
    r = StepRunner(tmp_path, ("a", "b", "c"), files, log=lambda m: None)
    r.run("a", {}, step("a", 2))
    r.run("b", {"epochs": 3}, step("b", 1))
    r.run("c", {}, step("c", 1))
    assert calls == ["b", "c"]

    from tinyml_errors import UsageError
    with pytest.raises(UsageError, match="--from: unknown step 'x'; the steps are a, b, c"):
        r.start_from("x")


# ------------------------------------------------------------------------------------ the pipeline
class Stop(Exception):
    pass


def _opts(out, **kw):
    return SearchOptions(CONS, out, budget="smoke", threads=1, progress=False, **kw)


def test_interrupted_search_resumes_and_equals_an_uninterrupted_run(tmp_path, tiny, monkeypatch):
    ref = run_search(_opts(tmp_path / "ref"), log=lambda m: None)
    assert ref["steps"]["computed_this_run"] == list(search_pipeline.STEPS)

    def stop_after_search(name, result, computed):
        if name == "search":
            raise Stop
    out = tmp_path / "run"
    with pytest.raises(Stop):
        run_search(_opts(out, step_hook=stop_after_search), log=lambda m: None)
    done = json.loads((out / FILE).read_text())["steps"]
    assert set(done) == {"stage1", "supernet", "search"}
    assert not (out / "weights.pt").exists() and not (out / "summary.json").exists()

    # the rerun may not train the supernet, evaluate a sub-network or run stage 1 again
    def forbidden(*a, **k):
        raise AssertionError("a completed step was recomputed")
    monkeypatch.setattr(search_pipeline, "evolution_search", forbidden)
    monkeypatch.setattr(search_pipeline, "train", forbidden)
    monkeypatch.setattr("tinynas.stage1.optimize_variants", forbidden)

    def stop_in_final_training(m):  # killed inside a step, after its first epoch's checkpoint
        if m.startswith("final training (winner) epoch 1/"):
            raise Stop
    with pytest.raises(Stop):
        run_search(_opts(out), log=stop_in_final_training)
    assert "final_train" not in json.loads((out / FILE).read_text())["steps"]
    assert (out / "checkpoints" / "final.pt").exists()
    lines: list[str] = []
    s = run_search(_opts(out), log=lines.append)
    assert any(m.startswith("final training (winner): resuming after epoch 1/") for m in lines)
    assert s["steps"]["reused"] == ["stage1", "supernet", "search"]
    assert s["steps"]["computed_this_run"] == ["final_train", "int8", "baseline", "report"]
    assert any("step supernet: done in an earlier run" in m for m in lines)
    # the overall progress lines cover every step, reused ones included, and end at 100%
    overall = [m for m in lines if m.startswith("overall |")]
    assert any("(after supernet (reused))" in m for m in overall) and "(after baseline)" in overall[-2]
    assert overall[-1].startswith("overall |====================| 100%") and "(after report)" in overall[-1]
    assert s["evaluations_computed_this_run"] == 0
    # the same result as the uninterrupted run
    for k in ("winner", "baseline", "evolution", "random_search", "supernet_history", "final_history"):
        assert s[k] == ref[k], k
    assert (out / "model_int8.npz").read_bytes() == (tmp_path / "ref" / "model_int8.npz").read_bytes()


def test_from_step_and_no_baseline(tmp_path, tiny, capsys):
    out = tmp_path / "o"
    argv = ["search", "--sram", "64KB", "--flash", "256KB", "--budget", "smoke", "--out", str(out),
            "--no-progress", "--threads", "1"]
    assert main([*argv, "--no-baseline"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["baseline"] is None and s["baseline_skipped"] and "baseline" not in s["steps"]["computed_this_run"]
    assert "Baseline skipped (--no-baseline)" in (out / "report.md").read_text()
    assert not (out / "baseline_arch.json").exists()
    capsys.readouterr()
    # --from int8: the earlier steps are reused, int8 and everything after recomputed; now with the baseline
    assert main([*argv, "--from", "int8"]) == 0
    s2 = json.loads((out / "summary.json").read_text())
    assert s2["steps"]["reused"] == ["stage1", "supernet", "search", "final_train"]
    assert s2["steps"]["computed_this_run"] == ["int8", "baseline", "report"]
    assert s2["winner"]["int8_test_acc"] == s["winner"]["int8_test_acc"]
    # the fair comparison: the winner and the baseline share the recipe; the report shows both
    assert s2["baseline"]["epochs"] == s2["winner"]["epochs"] == s2["final_recipe"]["epochs"]
    assert s2["baseline"]["fits"] and s2["baseline_grid"]["fit"] >= 1
    report = (out / "report.md").read_text()
    assert "Fair protocol" in report and "MobileNetV2 (uniform k3, scaled)" in report
    assert "points int8 test accuracy" in report
    grid = json.loads((out / "baseline_grid.json").read_text())
    assert len(grid) == s2["baseline_grid"]["points"] and any(p["fits"] for p in grid)
    # a rerun of the finished folder killed in a step: the next run resumes (the output folder is still ours)
    from tinynas import fair

    def killed(*a, **k):
        raise KeyboardInterrupt
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fair, "train_recipe", killed)
        assert main([*argv, "--from", "final_train"]) == 130
    capsys.readouterr()
    assert main(argv) == 0
    s3 = json.loads((out / "summary.json").read_text())
    assert s3["steps"]["computed_this_run"][0] == "final_train" and s3["winner"] == s2["winner"]
    capsys.readouterr()
    rc = main([*argv, "--from", "nope"])
    err = capsys.readouterr().err
    assert rc == 2 and "--from: unknown step 'nope'; the steps are stage1, supernet" in err
    assert err.count("\n") == 1
