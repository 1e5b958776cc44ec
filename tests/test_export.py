"""Export to TFLite/ONNX: the .tflite parses back, runs in TFLite Micro bit-exactly with our reference
(every tensor), TFLM's arena exceeds our planner's, and ``tinyengine export`` fails clearly."""
from __future__ import annotations

import argparse
import io
import sys

import numpy as np
import pytest
import tflite_micro  # noqa: E402,F401  (a dependency: its absence is a failure, not a skip)
from rich.console import Console

from codegen.generate import calibration_images
from search_spaces.space import SearchSpace
from search_spaces.zoo import load_zoo
from tinyengine.export import export_tflite, tflite_summary
from tinyengine.export.tflm import tflm_arena, tflm_arena_bytes, tflm_invoke, tflm_tensors  # noqa: E402
from tinyengine.frontend.quantize import quantize_model
from tinyengine.frontend.weights import random_model
from tinyengine.numerics.kernels_ref import same_padding
from tinyengine.numerics.reference import run_graph
from tinyengine.pipeline import plan_memory
from tinyml_errors import TinyMLError

TFL_OF = {"conv2d": "CONV_2D", "depthwise_conv2d": "DEPTHWISE_CONV_2D", "add": "ADD",
          "global_avg_pool": "AVERAGE_POOL_2D", "fully_connected": "FULLY_CONNECTED"}


def small_graph(seed: int, resolution: int, width: float = 0.3, classes: int = 10):
    space = SearchSpace(num_classes=classes, in_channels=3)
    arch = space.sample(np.random.default_rng(seed), width, resolution)
    g = quantize_model(arch, random_model(arch, seed), calibration_images(arch, 4, seed))
    return arch, g


def rand_input(g, seed: int = 7) -> np.ndarray:
    shape = g.tensors[g.inputs[0]].shape
    return np.random.default_rng(seed).integers(-128, 128, shape, dtype=np.int16).astype(np.int8)


def needs_pad(g, op) -> bool:
    """Whether TFLite SAME padding reads other windows than our explicit padding (stride 2, even size)."""
    if op.kind not in ("conv2d", "depthwise_conv2d") or not any(op.attrs["padding"]):
        return False
    h, w = g.tensors[op.inputs[0]].shape[:2]
    t, _, l, _ = op.attrs["padding"]
    st, _, sl, _ = same_padding((h, w), op.attrs["kernel"], op.attrs["stride"])
    return (st, sl) != (t, l)


@pytest.fixture(scope="module")
def small():
    return small_graph(3, 40)


def test_flatbuffer_parses_back_with_the_expected_ops_and_tensors(small):
    arch, g = small
    data = export_tflite(g)
    s = tflite_summary(data)
    assert s["version"] == 3 and data[4:8] == b"TFL3"
    expected = []
    for op in g.ops:
        if needs_pad(g, op):
            expected.append("PAD")
        expected.append(TFL_OF[op.kind])
    assert s["ops"] == expected
    assert "PAD" in expected  # the fixture has a stride-2 conv on an even size: the padding path is tested
    tensors = {name: (shape, ttype) for name, shape, ttype in s["tensors"]}
    for name, t in g.tensors.items():
        shape = (1, 1, 1, *t.shape) if name == "pool" else (1, *t.shape)
        assert tensors[name] == (shape, "INT8"), name
    for op in g.ops:
        if op.weight_shape is not None:
            assert tensors[f"{op.name}/bias"][1] == "INT32"
            n = op.weight_shape[0] if op.kind != "depthwise_conv2d" else op.weight_shape[2]
            assert tensors[f"{op.name}/bias"][0] == (n,)
    r = arch.resolution
    assert s["tensors"][s["inputs"][0]][1] == (1, r, r, 3)
    assert s["tensors"][s["outputs"][0]][1] == (1, 10)


@pytest.mark.parametrize("seed,res", [(0, 32), (1, 40), (2, 36), (3, 48)])
def test_tflm_matches_reference_on_every_tensor(seed, res):
    _, g = small_graph(seed, res)
    x = rand_input(g, seed)
    data = export_tflite(g)
    ref = run_graph(g, x)
    got = tflm_tensors(data, x)
    assert set(ref) <= set(got)
    for name, v in ref.items():
        assert np.array_equal(got[name].reshape(-1), v.reshape(-1)), f"tensor '{name}' differs"
    assert np.array_equal(tflm_invoke(data, x), ref[g.outputs[0]].reshape(-1))


def test_relu6_upper_clamp_is_exported():
    """Calibrated ReLU6 outputs rarely reach the upper clamp (6/s > 127): widen their range to 8.0 and
    scale the weights up so that the clamp at zp + round(6/s) < 127 is hit, then compare with TFLM."""
    import torch

    from tinyengine.frontend.archnet import import_torch
    from tinyengine.frontend.quantize import calibrate, quantize_graph
    arch = SearchSpace(num_classes=10, in_channels=3).sample(np.random.default_rng(3), 0.3, 40)
    model = random_model(arch, 3)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight *= 4
    ranges = calibrate(model, calibration_images(arch, 4, 3))
    g = import_torch(arch, model)
    for op in g.ops:
        if op.attrs.get("activation") == "relu6":
            ranges[op.output] = (ranges[op.output][0], 8.0)
    quantize_graph(g, ranges)
    x = rand_input(g)
    ref, got = run_graph(g, x), tflm_tensors(export_tflite(g), x)
    clamped = 0
    for op in g.ops:
        assert np.array_equal(got[op.output].reshape(-1), ref[op.output].reshape(-1)), op.name
        if op.attrs.get("activation") == "relu6":
            assert op.attrs["act_max"] < 127
            clamped += int(np.sum(ref[op.output] == op.attrs["act_max"]))
    assert clamped > 100


def test_zoo_model_runs_bit_exact_in_tflm_and_its_arena_is_larger():
    arch = load_zoo("mcunet-in0")
    g = quantize_model(arch, random_model(arch, 0), calibration_images(arch, 2, 0))
    x = rand_input(g)
    data = export_tflite(g)
    ref = run_graph(g, x)
    got = tflm_tensors(data, x)
    bad = [n for n in ref if not np.array_equal(got[n].reshape(-1), ref[n].reshape(-1))]
    assert not bad, bad
    assert np.array_equal(tflm_invoke(data, x), ref[g.outputs[0]].reshape(-1))
    a = tflm_arena(data)
    assert a.total == tflm_arena_bytes(data) >= a.head + a.tail
    assert plan_memory(g).arena_bytes < a.total


def test_tflm_arena_of_a_small_model_exceeds_ours(small):
    _, g = small
    ours = plan_memory(g).arena_bytes
    for padding in ("exact", "same"):
        a = tflm_arena(export_tflite(g, padding=padding))
        assert a.head > 0 and a.tail > 0
        assert ours < a.total, (padding, ours, a)
    # the input image is in both: TFLM's tensor section alone holds at least input + first output
    inp = g.tensors[g.inputs[0]].nbytes
    assert a.head >= inp + g.tensors[g.ops[0].output].nbytes


def test_same_padding_has_no_pad_ops_and_differs_only_after_padded_stride2_layers(small):
    _, g = small
    same = export_tflite(g, padding="same")
    s = tflite_summary(same)
    assert "PAD" not in s["ops"] and len(s["ops"]) == len(g.ops)
    x = rand_input(g)
    ref, got = run_graph(g, x), tflm_tensors(same, x)
    first = next(i for i, op in enumerate(g.ops) if needs_pad(g, op))
    for op in g.ops[:first]:
        assert np.array_equal(got[op.output].reshape(-1), ref[op.output].reshape(-1)), op.name
    assert not np.array_equal(got[g.ops[first].output], ref[g.ops[first].output])


def test_export_rejects_what_tflite_cannot_express(small):
    _, g = small
    op = next(o for o in g.ops if o.attrs.get("activation") == "relu6")
    saved = op.attrs["act_max"]
    op.attrs["act_max"] = saved - 1
    try:
        with pytest.raises(TinyMLError, match=f"'{op.name}' clamps to"):
            export_tflite(g)
    finally:
        op.attrs["act_max"] = saved
    op.attrs["out_region"] = (0, 1, 0, 1)
    try:
        with pytest.raises(TinyMLError, match="patch-based"):
            export_tflite(g)
    finally:
        del op.attrs["out_region"]
    with pytest.raises(TinyMLError, match="padding must be"):
        export_tflite(g, padding="valid")
    with pytest.raises(TinyMLError, match="TFL3"):
        tflite_summary(b"not a flatbuffer")
    export_tflite(g)  # restored: exports again


def test_missing_tflite_micro_is_named(monkeypatch):
    import tinyengine.export.tflm as tflm
    monkeypatch.setitem(sys.modules, "tflite_micro", None)
    with pytest.raises(TinyMLError, match="tflite-micro"):
        tflm.tflm_arena_bytes(b"")


# ---------------------------------------------------------------------------- CLI
def parser():
    from tinyml_cli.export import add_export_parser
    p = argparse.ArgumentParser(prog="tinyengine")
    add_export_parser(p.add_subparsers(dest="cmd", required=True))
    return p


def run_export(argv):
    from tinyml_cli.export import cmd_export
    buf = io.StringIO()
    rc = cmd_export(parser().parse_args(["export", *argv]), Console(file=buf, width=300, no_color=True))
    return rc, buf.getvalue()


def test_cli_export_tflite_with_check(tmp_path):
    out = tmp_path / "m.tflite"
    rc, text = run_export(["mcunet-in0", "--tflite", str(out), "--calib", "2", "--check"])
    assert rc == 0, text
    assert out.is_file() and tflite_summary(out.read_bytes())["ops"][-1] == "FULLY_CONNECTED"
    assert "matches our reference bit for bit on all" in text and "ours/TFLM" in text
    rc, text = run_export(["mcunet-in0", "--tflite", str(tmp_path), "--calib", "1"])  # a folder: MODEL.tflite
    assert rc == 0 and (tmp_path / "mcunet-in0.tflite").is_file()
    rc, text = run_export(["mcunet-in0", "--tflite", str(out), "--calib", "1", "--padding", "same", "--check"])
    assert rc == 0 and "expected with --padding same" in text, text


def test_cli_export_onnx(tmp_path):
    import onnx
    out = tmp_path / "m.onnx"
    rc, text = run_export(["mcunet-in0", "--onnx", str(out)])
    assert rc == 0 and out.is_file(), text
    m = onnx.load(str(out))
    onnx.checker.check_model(m)
    assert [i.name for i in m.graph.input] == ["input"] and [o.name for o in m.graph.output] == ["logits"]
    assert any(n.op_type == "Conv" for n in m.graph.node)


def test_onnx_export_computes_the_float_model(tmp_path):
    import onnx  # noqa: F401
    import torch
    from onnx.reference import ReferenceEvaluator

    from tinyengine.export import export_onnx
    arch = SearchSpace(num_classes=10, in_channels=3).sample(np.random.default_rng(3), 0.3, 40)
    model = random_model(arch, 3)
    path = export_onnx(arch, model, tmp_path / "s.onnx")
    x = np.random.default_rng(0).random((1, 3, 40, 40), dtype=np.float32)
    y = ReferenceEvaluator(str(path)).run(None, {"input": x})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert y.shape == (1, 10)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))


def test_cli_errors(tmp_path):
    with pytest.raises(TinyMLError, match="unknown zoo model 'mcunet-in9'"):
        run_export(["mcunet-in9", "--tflite", str(tmp_path / "x.tflite")])
    with pytest.raises(TinyMLError, match="no such architecture file"):
        run_export([str(tmp_path / "missing.json"), "--tflite"])
    with pytest.raises(TinyMLError, match="does not exist"):
        run_export(["mcunet-in0", "--tflite", str(tmp_path / "nodir" / "x.tflite")])
    with pytest.raises(TinyMLError, match="nothing to export"):
        run_export(["mcunet-in0"])
    with pytest.raises(TinyMLError, match="no such file"):
        run_export(["mcunet-in0", "--tflite", str(tmp_path / "x.tflite"), "--weights", str(tmp_path / "w.pt")])
    with pytest.raises(SystemExit):
        parser().parse_args(["export", "mcunet-in0", "--padding", "valid"])
