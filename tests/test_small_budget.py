"""Small budgets and small inputs: stage-1 variants, the MobileNetV2 grid baseline, fit-only supernet
sampling, the fair protocol's statistics, per-image augmentation and the rerun settings guard."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from search_spaces.arch import ArchError
from search_spaces.space import SearchSpace
from tinyengine.cost import fast_costs
from tinyml_errors import SearchError
from tinynas.baseline_grid import baseline_grid, grid_summary, top_fitting
from tinynas.constraints import constraints_from_args
from tinynas.evolution import Feasibility
from tinynas.fair import kendall_tau, paired_t, train_from_scratch
from tinynas.fit_sampler import FitSampler
from tinynas.run_settings import check_run_settings
from tinynas.stage1 import optimize_variants, search_space_variants
from tinynas.train import TrainConfig, to_input, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VWW_RES = (32, 40, 48, 56, 64)


def _base(res=VWW_RES, classes=2):
    return SearchSpace(num_classes=classes, in_channels=1, resolution_choices=res)


def test_variants_cover_small_widths_stride1_and_stage_widths():
    vs = {v.name: v.space for v in search_space_variants(_base())}
    assert {"s2-uniform", "s1-uniform", "s1-slim-late", "s2-slim-early"} <= set(vs)
    assert min(vs["s2-uniform"].width_choices) < 0.2
    assert vs["s1-uniform"].strides[0] == 1 and vs["s2-uniform"].strides[0] == 2
    # per-stage width factors change the stage widths and nothing else
    wu, wl = vs["s2-uniform"].widths(1.0), vs["s2-slim-late"].widths(1.0)
    assert wu[:5] == wl[:5] and all(b < a for a, b in zip(wu[5:], wl[5:]))
    # large inputs get no stride-1 first stage
    assert not any(n.startswith("s1") for n in (v.name for v in search_space_variants(_base((96, 128)))))
    with pytest.raises(ArchError, match="stage_width_mults"):
        SearchSpace(stage_width_mults=(1.0, 0.5))


def test_stage1_says_which_limit_binds():
    tight = optimize_variants(_base(), constraints_from_args(None, "16KB", "64KB"), samples=40)
    assert tight.choice is not None and "sram" in tight.binding()["chosen"]
    assert tight.choice.width_mult < 0.2  # only the new narrow widths serve 16 KB / 64 KB
    assert "binds" in tight.describe_binding()
    roomy = optimize_variants(_base(), constraints_from_args(None, "16MB", "64MB"), samples=20)
    assert roomy.binding()["chosen"] == [] and roomy.binding()["sram_rejects"] == 0
    # nothing binds: MCUNet's rule takes the most computation (stride-1 start, full width)
    assert roomy.variant.startswith("s1") and roomy.choice.width_mult == 1.0
    d = json.loads(json.dumps(tight.to_dict()))
    assert d["variant"] == tight.variant and d["choice"]["width_mult"] == tight.choice.width_mult


def test_baseline_grid_lists_every_point_with_costs():
    cons = constraints_from_args(None, "32KB", "128KB")
    pts = baseline_grid(2, 1, VWW_RES, cons)
    assert len(pts) == 11 * len(VWW_RES) * 4 * 3
    for p in pts[::37]:
        c = fast_costs(p.arch)
        assert (p.macs, p.peak_sram, p.flash_bytes) == (c.macs, c.peak_sram, c.flash_bytes)
        assert p.fits == c.fits(cons.sram_bytes, cons.flash_bytes)
        assert all(b.kernel_size == 3 for s in p.arch.stages for b in s.blocks)
    summ = grid_summary(pts)
    assert summ["over_sram"] > 0 and 0 < summ["fit"] < summ["points"]  # SRAM binds the baseline
    top = top_fitting(pts, 3)
    assert all(p.fits for p in top) and [p.macs for p in top] == sorted((p.macs for p in top), reverse=True)
    assert len({(p.width_mult, p.resolution) for p in top}) == 3


def test_fit_sampler_draws_only_fitting_near_budget():
    cons = constraints_from_args(None, "32KB", "128KB")
    st = optimize_variants(_base(), cons, samples=40)
    feas = Feasibility(st.space, st.choice.width_mult, st.choice.resolution, cons)
    fs = FitSampler(feas, n=3, pool=64, seed=1)
    rng = np.random.default_rng(0)
    q = np.quantile(fs.utilisation, 0.75)
    for _ in range(5):
        archs = fs(rng)
        assert len(archs) == 3
        for a in archs:
            assert fast_costs(a).fits(cons.sram_bytes, cons.flash_bytes)
        c = fast_costs(archs[0])
        assert max(c.peak_sram / cons.sram_bytes, c.flash_bytes / cons.flash_bytes) >= q


def test_supernet_training_uses_the_sampler():
    from search_spaces.supernet import SuperNet
    sp = SearchSpace(num_classes=2, in_channels=1, resolution_choices=(32,), width_choices=(0.25,))
    net = SuperNet(sp, 0.25)
    seen = []

    def sampler(rng):
        a = sp.sample(rng, 0.25, 32)
        seen.append(a)
        return [a]
    x = torch.randint(0, 255, (16, 1, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 2, (16,))
    train(net, x, y, 32, 1, TrainConfig(epochs=2, largest_epochs=1, batch_size=8), space=sp, width_mult=0.25,
          progress=False, sampler=sampler)
    assert len(seen) == 2  # one per sandwich step (epoch 2, two batches), none in the largest-only epoch


def test_per_image_augmentation():
    x = torch.zeros(32, 1, 16, 16, dtype=torch.uint8)
    x[:, :, 4:8, 2:6] = 255
    out = to_input(x, 16, 1, shift=torch.Generator().manual_seed(0))
    assert len({tuple(o.flatten().nonzero().flatten().tolist()) for o in out}) > 4
    assert torch.equal(out, to_input(x, 16, 1, shift=torch.Generator().manual_seed(0)))


def test_same_seed_same_training():
    sp = SearchSpace(num_classes=2, in_channels=1, resolution_choices=(32,))
    arch = sp.smallest(0.2, 32)
    x = torch.randint(0, 255, (24, 1, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 2, (24,))
    cfg = TrainConfig(epochs=1, batch_size=8, augment=True)
    a, b, c = (train_from_scratch(arch, x, y, cfg, s) for s in (5, 5, 6))
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_statistics():
    r = paired_t([1, 2, 3, 4], [0, 1, 1, 2])
    assert r["mean_diff"] == pytest.approx(1.5) and r["t"] == pytest.approx(5.19615, rel=1e-4)
    assert r["p_two_sided"] == pytest.approx(0.01385, abs=2e-4)  # Student t, 3 degrees of freedom
    assert paired_t([1, 2, 3], [1, 2, 3])["p_two_sided"] == pytest.approx(1.0, abs=1e-3)
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(2 / 3)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1)


def test_settings_guard(tmp_path):
    s = {"constraints": {"sram_bytes": 16384}, "data": "fashion-vww"}
    check_run_settings(tmp_path, s)
    check_run_settings(tmp_path, s)  # same settings: resume
    with pytest.raises(SearchError, match=r"constraints.sram_bytes: saved 16384, now 15360"):
        check_run_settings(tmp_path, {**s, "constraints": {"sram_bytes": 15360}})


def test_cli_rerun_with_other_limits_is_refused(tmp_path, capsys, monkeypatch):
    from dataclasses import replace

    from tinyml_cli.nas import main
    from tinynas import search as search_mod
    tiny = replace(search_mod.BUDGETS["smoke"], train_limit=400, holdout=50, calib=16, test_limit=20,
                   space_samples=10)
    monkeypatch.setitem(search_mod.BUDGETS, "smoke", tiny)
    out = str(tmp_path / "o")
    # 1 KB fits nothing: the run stops after stage 1, but the folder now belongs to these settings
    assert main(["search", "--sram", "1KB", "--flash", "256KB", "--budget", "smoke", "--out", out,
                 "--no-progress"]) == 2
    capsys.readouterr()
    rc = main(["search", "--sram", "2KB", "--flash", "256KB", "--budget", "smoke", "--out", out, "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "holds a search run with other settings" in err and "1024" in err and "2048" in err
    assert "Traceback" not in err and err.count("\n") == 1
