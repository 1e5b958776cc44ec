"""The ``tinynas`` and ``tinyengine`` command lines, run in-process: outputs, files and exit codes."""

import json
import re

import numpy as np
import pytest

from boards import load_board
from boards.units import format_size
from search_spaces.reference import from_mcunet_config
from search_spaces.space import SearchSpace
from search_spaces.zoo import load_zoo
from tinyengine.cost import network_costs
from tinyml_cli import engine as te_cli
from tinyml_cli import nas as nas_cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@pytest.fixture(autouse=True)
def _plain_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


def flat(text: str) -> str:
    """Console text without colour codes, with line wrapping undone."""
    return " ".join(ANSI.sub("", text).split())


def run(main, argv, capsys):
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse errors
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


# ----------------------------------------------------------------------------- tinynas space
def test_space_writes_json_and_plot(tmp_path, capsys):
    js, png = tmp_path / "out" / "space.json", tmp_path / "out" / "cdf.png"
    rc, out, err = run(nas_cli.main, ["space", "--sram", "320KB", "--flash", "1MB", "--samples", "200",
                                      "--widths", "0.4:0.6:0.1", "--resolutions", "128,160,176",
                                      "--json", str(js), "--plot", str(png)], capsys)
    assert rc == 0, err
    assert png.read_bytes()[:8] == PNG_MAGIC
    res = json.loads(js.read_text())
    assert res["constraints"]["sram_bytes"] == 320 * 1024 and res["constraints"]["flash_bytes"] == 1024 ** 2
    spaces = res["spaces"]
    assert sorted((s["width_mult"], s["resolution"]) for s in spaces) == \
        sorted((w, r) for w in (0.4, 0.5, 0.6) for r in (128, 160, 176))
    assert all(s["samples"] == 200 and 0 <= s["fit"] <= 200 for s in spaces)
    min_fit = res["min_fit_ratio"]
    assert min_fit == 0.01
    eligible = [s for s in spaces if s["fit"] > 0 and s["fit"] / s["samples"] >= min_fit]
    assert eligible
    best = max(eligible, key=lambda s: s["mean_macs"])
    choice = res["choice"]
    assert choice is not None
    chosen = next(s for s in spaces if (s["width_mult"], s["resolution"]) == (choice["width_mult"],
                                                                              choice["resolution"]))
    assert chosen["mean_macs"] == best["mean_macs"]
    assert f"W={choice['width_mult']:g}, R={choice['resolution']}" in flat(out)

    # Cross-check the chosen space with the whole-graph planner: same samples (the documented
    # per-(W, R) seed [seed, w index, r index]), same fits, same mean MACs.
    widths, resolutions = (0.4, 0.5, 0.6), (128, 160, 176)
    wi, ri = widths.index(choice["width_mult"]), resolutions.index(choice["resolution"])
    space = SearchSpace(width_choices=widths, resolution_choices=resolutions)
    g = space.sample_genes(np.random.default_rng([0, wi, ri]), 200)
    fit_macs = []
    for i in range(200):
        c = network_costs(space.build(widths[wi], resolutions[ri], g.kernel_idx[i], g.expand_idx[i],
                                      g.depth[i]))
        if c.peak_sram <= 320 * 1024 and c.flash_bytes <= 1024 ** 2:
            fit_macs.append(c.macs)
    assert chosen["fit"] == len(fit_macs)
    assert chosen["mean_macs"] == pytest.approx(np.mean(fit_macs), rel=1e-12)


@pytest.mark.parametrize(("argv", "flag"), [
    (["--sram", "3x", "--flash", "1MB"], "--sram"),
    (["--sram", "320KB", "--flash=-1MB"], "--flash"),
    (["--sram", "320KB", "--flash", "1e6"], "--flash"),
    (["--sram=-5KB", "--flash", "1MB"], "--sram"),
    (["--sram", "0", "--flash", "1MB"], "--sram"),
])
def test_space_garbage_sizes(argv, flag, capsys):
    rc, out, err = run(nas_cli.main, ["space", *argv, "--samples", "5"], capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0]


def test_space_negative_size_as_separate_argument(capsys):
    """`--flash -1MB` (value as its own word, as users type it) must get the same one-line message as
    `--flash=-1MB`, not argparse's usage dump and 'expected one argument'."""
    rc, out, err = run(nas_cli.main, ["space", "--sram", "320KB", "--flash", "-1MB", "--samples", "5"], capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "--flash" in lines[0] and "positive" in lines[0]


def test_space_unknown_board_suggests(capsys):
    rc, out, err = run(nas_cli.main, ["space", "--board", "stm32f74", "--samples", "5"], capsys)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1
    assert "stm32f74" in err and "did you mean 'stm32f746g-disco'" in err.lower()


@pytest.mark.parametrize(("argv", "missing"), [([], ["--sram", "--flash"]), (["--sram", "320KB"], ["--flash"])])
def test_space_no_limits(argv, missing, capsys):
    rc, out, err = run(nas_cli.main, ["space", *argv, "--samples", "5"], capsys)
    assert rc == 2
    line = err.strip()
    assert "\n" not in line
    for m in missing:
        assert m in line
    assert f"missing {' and '.join(missing)};" in line


def test_space_impossible_budget(capsys):
    rc, out, err = run(nas_cli.main, ["space", "--sram", "2KB", "--flash", "1MB", "--samples", "50",
                                      "--widths", "0.2,0.3", "--resolutions", "48"], capsys)
    assert rc == 3
    text = flat(out)
    assert "no sub-network fits" in text
    # The smallest footprint among the sampled networks, recomputed with the whole-graph planner.
    space = SearchSpace(width_choices=(0.2, 0.3), resolution_choices=(48,))
    best = None
    for wi, w in enumerate(space.width_choices):
        g = space.sample_genes(np.random.default_rng([0, wi, 0]), 50)
        for i in range(50):
            p = network_costs(space.build(w, 48, g.kernel_idx[i], g.expand_idx[i], g.depth[i])).peak_sram
            if best is None or p < best[0]:
                best = (p, w)
    assert best[0] > 2048
    assert f"Smallest peak SRAM seen: {format_size(best[0])}" in text
    assert f"(w{best[1]:g}-r48)" in text


def test_space_reserve_larger_than_sram(capsys):
    rc, out, err = run(nas_cli.main, ["space", "--sram", "320KB", "--flash", "1MB",
                                      "--sram-reserve", "400KB", "--samples", "5"], capsys)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "--sram-reserve" in err


def test_space_reserve_is_subtracted(tmp_path, capsys):
    js = tmp_path / "s.json"
    rc, out, err = run(nas_cli.main, ["space", "--sram", "320KB", "--flash", "1MB", "--sram-reserve", "64KB",
                                      "--samples", "20", "--widths", "0.3", "--resolutions", "96",
                                      "--json", str(js)], capsys)
    assert rc == 0, err
    cons = json.loads(js.read_text())["constraints"]
    assert cons["sram_bytes"] == (320 - 64) * 1024 and cons["sram_reserve"] == 64 * 1024


# ----------------------------------------------------------------------------- tinyengine analyze
def test_analyze_zoo_json_totals(tmp_path, capsys):
    js = tmp_path / "a.json"
    rc, out, err = run(te_cli.main, ["analyze", "mcunet-in3", "--json", str(js), "--quiet"], capsys)
    assert rc == 0, err
    d = json.loads(js.read_text())
    c = network_costs(load_zoo("mcunet-in3"))
    t = d["totals"]
    assert (t["macs"], t["params"], t["flash_bytes"], t["peak_sram"]) == \
        (c.macs, c.params, c.flash_bytes, c.peak_sram)
    assert round(t["macs"] / 1e6, 1) == 81.8
    assert sum(r["macs"] for r in d["layers"]) == t["macs"]
    assert sum(r["params"] for r in d["layers"]) == t["params"]
    assert max(r["live_bytes"] + r["scratch"] for r in d["layers"]) == t["lower_bound"] <= t["peak_sram"]
    assert "81.79M" in flat(out)


def _tiny_net_config() -> dict:
    def mb(cin, cout, k, s, e, sc=False):
        return {"name": "MobileInvertedResidualBlock",
                "mobile_inverted_conv": {"name": "MBInvertedConvLayer", "in_channels": cin, "out_channels": cout,
                                         "kernel_size": k, "stride": s, "expand_ratio": e, "mid_channels": None},
                "shortcut": {"name": "IdentityLayer"} if sc else None}
    # the tiny network of test_cost.py: R=8, stem 3->8 s2, 8->8, 8->16 s2 e3, 16->16 e3 (+res), 4 classes
    return {"name": "ProxylessNASNets", "resolution": 8,
            "first_conv": {"name": "ConvLayer", "in_channels": 3, "out_channels": 8, "kernel_size": 3, "stride": 2},
            "blocks": [mb(8, 8, 3, 1, 1), mb(8, 16, 3, 2, 3), mb(16, 16, 3, 1, 3, sc=True)],
            "feature_mix_layer": None,
            "classifier": {"name": "LinearLayer", "in_features": 16, "out_features": 4}}


def test_analyze_mcunet_net_config_file(tmp_path, capsys):
    cfg = tmp_path / "net.config"
    cfg.write_text(json.dumps(_tiny_net_config()))
    js = tmp_path / "a.json"
    rc, out, err = run(te_cli.main, ["analyze", str(cfg), "--json", str(js)], capsys)
    assert rc == 0, err
    t = json.loads(js.read_text())["totals"]
    # Hand figures (derivation in test_cost.py): 19040 MACs, 3580 params, peak 544 B (P0 + E1 + scratch)
    assert (t["macs"], t["params"], t["peak_sram"]) == (19040, 3580, 544)
    c = network_costs(from_mcunet_config(_tiny_net_config()))
    assert (t["flash_bytes"], t["peak_sram"]) == (c.flash_bytes, c.peak_sram)
    assert "b2.add" in out  # the per-layer table is printed without --quiet


def test_analyze_mcunet_net_config_json_path(tmp_path, capsys):
    cfg = tmp_path / "tiny_imagenet.json"
    cfg.write_text(json.dumps(_tiny_net_config()))
    rc, out, err = run(te_cli.main, ["analyze", str(cfg), "--quiet"], capsys)
    assert rc == 0, err
    assert "peak SRAM 544 B (544 B, arena" in flat(out)


def test_analyze_plot_and_board_fit(tmp_path, capsys):
    png = tmp_path / "mem.png"
    rc, out, err = run(te_cli.main, ["analyze", "mcunet-in0", "--board", "stm32f746g-disco", "--quiet",
                                     "--plot", str(png)], capsys)
    assert rc == 0, err
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert "fits stm32f746g-disco" in flat(out)


def test_analyze_unknown_zoo_name(capsys):
    rc, out, err = run(te_cli.main, ["analyze", "mcunet-in33"], capsys)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1
    assert "mcunet-in33" in err and "did you mean 'mcunet-in3'" in err


def test_analyze_malformed_arch_file(tmp_path, capsys):
    bad = tmp_path / "my-arch.json"
    bad.write_text(json.dumps({
        "resolution": 64, "stem": {"out_channels": 8}, "first_block": {"out_channels": 8},
        "stages": [{"out_channels": 16, "stride": 2, "blocks": [{"kernel_size": 3, "expand_ratio": 3},
                                                               {"kernel_size": 4, "expand_ratio": 3}]}],
        "num_classes": 10}))
    rc, out, err = run(te_cli.main, ["analyze", str(bad)], capsys)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1
    assert "my-arch.json" in err and "stages[0].blocks[1].kernel_size" in err


def test_analyze_invalid_json_file(tmp_path, capsys):
    bad = tmp_path / "broken.json"
    bad.write_text('{\n "resolution": 64,\n}')
    rc, out, err = run(te_cli.main, ["analyze", str(bad)], capsys)
    assert rc == 2
    assert "broken.json" in err and "line 3" in err


def test_analyze_missing_file(tmp_path, capsys):
    rc, out, err = run(te_cli.main, ["analyze", str(tmp_path / "nope.json")], capsys)
    assert rc == 2 and "nope.json" in err


def test_analyze_does_not_fit_the_board(capsys):
    rc, out, err = run(te_cli.main, ["analyze", "mcunet-in4", "--board", "stm32f412", "--quiet"], capsys)
    assert rc == 1
    board = load_board("stm32f412")
    c = network_costs(load_zoo("mcunet-in4"))
    over_sram, over_flash = c.peak_sram - board.sram_bytes, c.flash_bytes - board.flash_bytes
    assert over_sram > 0 and over_flash > 0
    text = flat(out)
    assert "does not fit" in text
    assert f"by {format_size(over_sram)}" in text and f"by {format_size(over_flash)}" in text


def test_analyze_no_inplace_is_not_smaller(tmp_path, capsys):
    a, b = tmp_path / "on.json", tmp_path / "off.json"
    assert run(te_cli.main, ["analyze", "mcunet-in3", "--quiet", "--json", str(a)], capsys)[0] == 0
    assert run(te_cli.main, ["analyze", "mcunet-in3", "--quiet", "--no-inplace", "--json", str(b)], capsys)[0] == 0
    on, off = json.loads(a.read_text())["totals"], json.loads(b.read_text())["totals"]
    assert off["peak_sram"] > on["peak_sram"] and off["macs"] == on["macs"]


def test_analyze_shows_the_generated_code_kernels(tmp_path, capsys):
    """The per-op C kernel in the table and the JSON is codegen's own decision for the plan."""
    from tinyengine.analyze import analyze
    from tinyengine.kernels.choice import kernel_choices

    js = tmp_path / "a.json"
    rc, out, err = run(te_cli.main, ["analyze", "mcunet-vww1", "--json", str(js)], capsys)
    assert rc == 0, err
    layers = json.loads(js.read_text())["layers"]
    an = analyze(load_zoo("mcunet-vww1"))
    want = [k["kernel"] for k in kernel_choices(an.plan)]
    assert [r["c_kernel"]["kernel"] for r in layers] == want
    dw = {r["c_kernel"]["kernel"] for r in layers if r["kind"] == "depthwise_conv2d"}
    assert dw == {"te_depthwise_inplace_s8", "te_depthwise_s8"}  # in place at the peak, out of place off it
    assert all("layout_choice" in r["c_kernel"] for r in layers if r["kind"] == "depthwise_conv2d")
    assert layers[0]["c_kernel"]["kernel"] == "te_conv_stem_s8"  # the stem
    assert "depthwise_inplace" in flat(out) and "conv_pointwise" in flat(out)
    assert "layout choice (memory)" in flat(out) and "out of place" in flat(out)


def test_gen_is_a_tinyengine_subcommand(tmp_path, capsys):
    rc, out, err = run(te_cli.main, ["gen", "mcunet-vww1", "--board", "qemu-m4", "--out", str(tmp_path / "p")],
                       capsys)
    assert rc == 0, err
    assert (tmp_path / "p" / "src" / "model.c").is_file() and "arena" in flat(out)
    rc, out, err = run(te_cli.main, ["gen", "mcunet-vww1", "--board", "no-such-board", "--out",
                                     str(tmp_path / "q")], capsys)
    assert rc == 2 and "no-such-board" in err and not (tmp_path / "q").exists()
