"""The per-kernel latency model: terms, fitting, records, the calibrate/analyze commands."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from boards import load_board
from search_spaces.space import SearchSpace
from search_spaces.zoo import load_zoo
from tinyengine.ir.graph import build_graph
from tinyengine.kernels.choice import kernel_choices
from tinyengine.latency import (
    CPI_ESTIMATE,
    LatencyError,
    LatencyModel,
    Sample,
    default_model,
    evaluate,
    fit,
    layer_features,
    read_records,
)
from tinyengine.pipeline import plan_memory


def layers_of(arch) -> list[dict]:
    g = build_graph(arch)
    return kernel_choices(plan_memory(g))


def random_layers(n_nets: int, seed: int) -> list[tuple[str, dict]]:
    space = SearchSpace()
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_nets):
        arch = space.sample(rng, float(rng.choice([0.3, 0.5, 0.7])), int(rng.choice([64, 96, 128])))
        out += [(f"net{seed}-{i}", la) for la in layers_of(arch)]
    return out


def synthetic(layers, truth: dict[str, np.ndarray], noise: float = 0.0, seed: int = 0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    out = []
    for model, la in layers:
        k, _, x = layer_features(la)
        out.append(Sample(model, la, float(np.dot(truth[k], x)) * (1 + noise * rng.standard_normal())))
    return out


def truth_for(layers, seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = {}
    for _, la in layers:
        k, terms, _ = layer_features(la)
        if k not in truth:  # a MAC term near the kernels' 2-6 instructions/MAC, small positive overheads
            truth[k] = np.array([rng.uniform(2, 6) if t in ("macs", "tile_mults") else rng.uniform(0.5, 40)
                                 for t in terms])
    return truth


def test_every_kernel_of_the_zoo_has_terms_and_macs_term_is_the_ops_macs():
    for name in ("mcunet-vww1", "mcunet-in3", "proxyless-w0.3"):
        for la in layers_of(load_zoo(name)):
            k, terms, x = layer_features(la)
            assert terms[-1] == "call" and x[-1] == 1 and (x >= 0).all()
            if "macs" in terms:
                assert x[terms.index("macs")] == la["macs"], (name, la["name"])


def test_fit_recovers_a_linear_cost_exactly_and_generalises_to_other_networks():
    train, test = random_layers(12, 1), random_layers(4, 2)
    truth = truth_for(train + test)
    model = fit(synthetic(train, truth), target="t", core="cortex-m4", unit="instructions")
    ev = evaluate(model, synthetic(test, truth))
    assert ev["rmspe"] < 1e-3 and ev["within_10pct"] == 1.0
    # with 5% measurement noise the held-out error stays near the noise level
    noisy = fit(synthetic(train, truth, 0.05, 1), target="t", core="cortex-m4", unit="instructions")
    ev = evaluate(noisy, synthetic(test, truth))
    assert ev["rmspe"] < 0.05 and ev["within_10pct"] > 0.9


def test_model_round_trips_and_unknown_kernels_are_named(tmp_path):
    layers = random_layers(3, 4)
    model = fit(synthetic(layers, truth_for(layers)), target="t", core="cortex-m4", unit="instructions")
    model.save(tmp_path / "m.json")
    back = LatencyModel.load(tmp_path / "m.json")
    la = [la for _, la in layers]
    assert back.predict_layers(la) == pytest.approx(model.predict_layers(la))
    del back.kernels["te_conv_pointwise_s8"]
    with pytest.raises(LatencyError, match="not calibrated for kernel 'te_conv_pointwise_s8'"):
        back.predict_layers(la)
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(LatencyError, match="not a tinyml-latency/1 file"):
        LatencyModel.load(tmp_path / "bad.json")
    with pytest.raises(LatencyError, match="no such file"):
        LatencyModel.load(tmp_path / "none.json")


def test_shipped_model_gives_instructions_on_qemu_and_estimated_cycles_on_a_real_board():
    arch = load_zoo("mcunet-vww1")
    q = default_model(load_board("qemu-m4"))
    f7 = default_model(load_board("stm32f746g-disco"))
    assert q.out_unit == "instructions" and f7.out_unit == "cycles"
    assert f7.predict_arch(arch) == pytest.approx(q.predict_arch(arch) * CPI_ESTIMATE["cortex-m7"])
    assert 2.0 < q.predict_arch(arch) / arch_macs(arch) < 8.0


def arch_macs(arch) -> int:
    return sum(la["macs"] for la in layers_of(arch))


def _record(path, layers, measured, unit="instructions", core="cortex-m4", lowering=True):
    rec = {"model": path.stem, "board": "qemu-m4", "core": core, "unit": unit,
           "layers": [{"index": i, "name": la["name"], "macs": la["macs"], unit: m}
                      for i, (la, m) in enumerate(zip(layers, measured))]}
    if lowering:
        rec["lowering"] = [dict(la, index=i) for i, la in enumerate(layers)]
    path.write_text(json.dumps(rec))
    return path


def test_calibrate_and_analyze_commands(tmp_path, tinyengine_cli):
    train, test = random_layers(10, 5), random_layers(2, 6)
    truth = truth_for(train + test)
    recs = []
    for j, group in enumerate((train, test)):
        by_net: dict[str, list] = {}
        for m, la in group:
            by_net.setdefault(m, []).append(la)
        for m, las in by_net.items():
            meas = [s.measured for s in synthetic([(m, la) for la in las], truth)]
            recs.append(_record(tmp_path / f"{m}.json", las, meas))
    held = [str(p) for p in recs[-2:]]
    out_model = tmp_path / "lat.json"
    rc, out, err = tinyengine_cli(["calibrate", *map(str, recs), "--board", "qemu-m4", "--out", str(out_model),
                        "--holdout", *held])
    assert rc == 0, err
    assert "within +-10%: 100.0%" in out and out_model.is_file()
    js = tmp_path / "a.json"
    rc, out, err = tinyengine_cli(["analyze", "mcunet-vww1", "--latency-model", str(out_model), "--json", str(js)])
    assert rc == 0, err
    d = json.loads(js.read_text())
    model = LatencyModel.load(out_model)
    want = model.predict_layers(layers_of(load_zoo("mcunet-vww1")))
    assert [r["predicted_latency"] for r in d["layers"]] == pytest.approx(want)
    assert d["totals"]["predicted_latency"]["unit"] == "instructions"
    assert f"predicted latency {sum(want):,.0f} instructions" in out
    rc, out, err = tinyengine_cli(["analyze", "mcunet-vww1", "--board", "stm32f746g-disco", "--quiet"])
    assert rc == 0 and re.search(r"predicted latency [\d,]+ cycles = [\d.]+ ms at 216 MHz", out), out


def test_calibrate_errors_name_the_record(tmp_path, tinyengine_cli):
    las = layers_of(load_zoo("mcunet-vww1"))
    no_low = _record(tmp_path / "nolow.json", las, [1.0] * len(las), lowering=False)
    rc, out, err = tinyengine_cli(["calibrate", str(no_low), "--board", "qemu-m4"])
    assert rc == 2 and "nolow.json: no lowering" in err
    a = _record(tmp_path / "a.json", las, [1.0] * len(las))
    b = _record(tmp_path / "b.json", las, [1.0] * len(las), unit="cycles")
    with pytest.raises(LatencyError, match="b.json: unit 'cycles' differs"):
        read_records([a, b])
    (tmp_path / "junk.json").write_text("{")
    rc, out, err = tinyengine_cli(["calibrate", str(tmp_path / "junk.json"), "--board", "qemu-m4"])
    assert rc == 2 and "junk.json: not valid JSON" in err


def test_cached_prediction_equals_the_whole_network_prediction():
    model = default_model()
    space = SearchSpace()
    rng = np.random.default_rng(9)
    archs = [load_zoo(n) for n in ("mcunet-vww1", "mcunet-in3")] + [space.sample(rng, 0.4, 96) for _ in range(10)]
    for a in archs:
        assert model.predict_fast(a) == pytest.approx(model.predict_arch(a), rel=1e-9)


def test_stage1_keeps_only_spaces_and_samples_under_the_latency_limit():
    from tinynas.constraints import constraints_from_args
    from tinynas.space_opt import optimize_space

    space = SearchSpace(num_classes=10, in_channels=1, width_choices=(0.2, 0.4, 0.6), resolution_choices=(32, 48))
    model = default_model(load_board("stm32f746g-disco"))
    lat = lambda a: model.seconds(model.predict_fast(a), 216_000_000)  # noqa: E731
    free = optimize_space(space, constraints_from_args(None, "64KB", "256KB"), samples=60)
    limited = constraints_from_args("stm32f746g-disco", "64KB", "256KB", "15ms")
    res = optimize_space(space, limited, samples=60, latency=lat)
    assert sum(s.fit for s in res.stats) < sum(s.fit for s in free.stats)
    assert res.choice is not None and res.choice.mean_macs < free.choice.mean_macs
    # re-draw the chosen space's samples: the fitting ones are exactly those in memory and under 15 ms
    from tinyengine.cost import fast_costs
    wi, ri = space.width_choices.index(res.choice.width_mult), space.resolution_choices.index(res.choice.resolution)
    g = space.sample_genes(np.random.default_rng([0, wi, ri]), 60)
    fit = 0
    for i in range(60):
        arch = space.build(res.choice.width_mult, res.choice.resolution, g.kernel_idx[i], g.expand_idx[i], g.depth[i])
        c = fast_costs(arch)
        fit += c.peak_sram <= 64 * 1024 and c.flash_bytes <= 256 * 1024 and lat(arch) <= 0.015
    assert fit == res.choice.fit > 0
