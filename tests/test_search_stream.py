"""``tinynas search --stream``: every SRAM check counts the fused-streaming peak, the folder records it,
and ``tinyengine gen`` on that folder streams by default (and refuses a --no-stream that would not fit)."""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace

import numpy as np
import pytest

from search_spaces.arch import ArchConfig
from search_spaces.space import SearchSpace
from tinyengine.cost import batch_costs, fast_costs, network_costs
from tinyengine.ir.graph_io import load_graph
from tinyengine.pipeline import plan_memory
from tinyengine.planner import PlanOptions
from tinyml_cli.engine import main as engine_main
from tinyml_cli.nas import main as nas_main
from tinyml_errors import SearchError
from tinynas import search as search_mod
from tinynas.baseline_grid import baseline_grid
from tinynas.constraints import Constraints, constraints_from_args
from tinynas.evolution import EvoConfig, Feasibility, _row
from tinynas.fit_sampler import FitSampler
from tinynas.run_settings import check_run_settings
from tinynas.train import TrainConfig

SPACE = SearchSpace(num_classes=10, in_channels=1, resolution_choices=(32, 40))


@pytest.mark.parametrize("w, r", [(0.3, 40), (0.5, 32)])
def test_fast_costs_stream_agrees_with_batch_costs(w, r):
    genes = SPACE.sample_genes(np.random.default_rng(3), 6)
    for stream in (False, True):
        b = batch_costs(SPACE, w, r, genes, stream=stream)
        for i in range(6):
            g = _row(genes, i)
            a = SPACE.build(w, r, g.kernel_idx, g.expand_idx, g.depth)
            c = fast_costs(a, stream=stream)
            assert (c.macs, c.flash_bytes, c.peak_sram) == (b.macs[i], b.flash_bytes[i], b.peak_sram[i])
    # streaming lowers the count here and never raises it; without it, the whole-graph plan agrees
    assert (b.peak_sram < batch_costs(SPACE, w, r, genes).peak_sram).any()
    assert fast_costs(a).peak_sram == network_costs(a).peak_sram


def test_stream_constraints_reach_feasibility_grid_and_settings(tmp_path):
    on, off = Constraints(12 * 1024, 256 * 1024, stream=True), Constraints(12 * 1024, 256 * 1024)
    feas_on, feas_off = Feasibility(SPACE, 0.3, 40, on), Feasibility(SPACE, 0.3, 40, off)
    gs = feas_on.sample_feasible(np.random.default_rng(0), 8)
    assert all(feas_on.fits(c) for c in feas_on.costs(gs))
    assert not any(feas_off.fits(c) for c in feas_off.costs(gs))  # they fit only streamed
    fs = FitSampler(feas_on, pool=32)  # the supernet's sampler draws from the streamed-fitting pool
    assert fs.utilisation.max() <= 1 and all(fast_costs(a, stream=True).peak_sram <= on.sram_bytes
                                             for a in fs.archs)
    assert max(fast_costs(a).peak_sram for a in fs.archs) > on.sram_bytes
    grid_on = baseline_grid(10, 1, (32, 40), on, widths=(0.3, 0.5), depths=(1, 2), expands=(3, 6))
    grid_off = baseline_grid(10, 1, (32, 40), off, widths=(0.3, 0.5), depths=(1, 2), expands=(3, 6))
    assert all(p.peak_sram == fast_costs(p.arch, stream=True).peak_sram for p in grid_on)
    assert sum(p.fits for p in grid_on) > sum(p.fits for p in grid_off)
    assert "fused streaming" in on.describe() and "stream" not in off.to_dict()
    assert constraints_from_args(None, "12KB", "256KB", stream=True) == on
    check_run_settings(tmp_path, {"constraints": on.to_dict()})
    with pytest.raises(SearchError, match=r"constraints.stream: saved True, now None"):
        check_run_settings(tmp_path, {"constraints": off.to_dict()})


TINY = replace(search_mod.BUDGETS["smoke"], train_limit=500, holdout=100, calib=32, test_limit=60,
               int8_test_limit=4, space_samples=60,
               supernet=TrainConfig(epochs=2, largest_epochs=1, batch_size=32, n_random=1, limit_batches=2),
               finetune=TrainConfig(epochs=1, batch_size=32, limit_batches=2),
               evo=EvoConfig(population=4, generations=2))
LIMIT = 12 * 1024  # only streaming meets it in this space: the layer-by-layer peaks start near 19 KB


def test_smoke_search_stream_then_gen(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(search_mod.BUDGETS, "smoke", TINY)
    out = tmp_path / "run"
    argv = ["search", "--sram", "12KB", "--flash", "256KB", "--budget", "smoke", "--out", str(out),
            "--no-progress", "--threads", "1"]
    assert nas_main([*argv, "--stream"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "peak SRAM with fused streaming" in printed and "(fused streaming), flash" in printed
    arch = ArchConfig.load(out / "arch.json")
    assert arch.meta["stream"] is True and arch.meta["sram_limit"] == LIMIT
    s = json.loads((out / "summary.json").read_text())
    assert s["constraints"]["stream"] is True and s["winner"]["fits"]
    assert s["winner"]["peak_sram"] == fast_costs(arch, stream=True).peak_sram <= LIMIT
    lbl = fast_costs(arch).peak_sram
    assert lbl > LIMIT  # the winner fits only because it streams
    if s["baseline"] is not None:
        base = ArchConfig.load(out / "baseline_arch.json")
        assert s["baseline"]["peak_sram"] == fast_costs(base, stream=True).peak_sram <= LIMIT
    assert "fused streaming" in (out / "report.md").read_text()

    # a rerun without --stream into the same folder is refused, naming the setting
    assert nas_main(argv) == 2
    assert "constraints.stream" in capsys.readouterr().err

    # gen streams by default; the whole-graph streamed plan fits the search's limit
    proj = tmp_path / "proj"
    assert engine_main(["gen", str(out), "--board", "qemu-m4", "--out", str(proj)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "streaming on" in printed
    low = json.loads((proj / "lowering.json").read_text())
    graph = load_graph(out / "model_int8.npz")
    streamed = plan_memory(graph, PlanOptions(stream=True)).peak_sram
    assert streamed <= LIMIT < plan_memory(graph).peak_sram == lbl
    assert low["arena_bytes"] == plan_memory(graph, PlanOptions(stream=True)).arena_bytes
    if shutil.which("make") and shutil.which("gcc"):
        r = subprocess.run(["make", "-C", str(proj), "check"], check=False, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0 and "host output matches reference_output.bin" in r.stdout, r.stdout + r.stderr

    # --no-stream would not fit: refused with the figures
    rc = engine_main(["gen", str(out), "--board", "qemu-m4", "--out", str(tmp_path / "p2"), "--no-stream"])
    err = " ".join(capsys.readouterr().err.split())
    assert rc == 2 and "--no-stream" in err and f"{lbl:,} B" in err and f"{LIMIT:,} B" in err
    assert "Traceback" not in err
