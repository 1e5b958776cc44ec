"""Imported int8 .tflite models (made by TensorFlow's converter, tests/fixtures/tflite/) compute the same
bytes as TFLite Micro's interpreter; bad files and unsupported ops get one clear error."""
from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import pytest

from tinyengine.export.tflm import tflm_invoke, tflm_tensors
from tinyengine.frontend.tflite import SUPPORTED, graph_tensor_name, import_tflite
from tinyengine.numerics import kernels_ref_tflite as KT
from tinyengine.numerics.reference import run_graph
from tinyml_errors import ModelImportError

FIX = Path(__file__).parent / "fixtures" / "tflite"
FIXTURES = sorted(p.name for p in FIX.glob("*.tflite"))
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb  # noqa: E402


def test_fixture_set_is_complete():
    assert FIXTURES == ["ds_cnn.tflite", "mobilenet_v1_025_vww.tflite", "mobilenet_v2_small.tflite",
                        "resnet8.tflite", "small_cnn.tflite"]
    assert (FIX / "make_fixtures.py").is_file() and "tensorflow" in (FIX / "VERSIONS.json").read_text()


@pytest.mark.parametrize("name", FIXTURES)
def test_reference_matches_tflm_bit_exactly(name):
    data = (FIX / name).read_bytes()
    g = import_tflite(FIX / name)
    shape = g.tensors[g.inputs[0]].shape
    rng = np.random.default_rng(7)
    for _ in range(4):
        x = rng.integers(-128, 128, shape, dtype=np.int8)
        ours = run_graph(g, x)[g.outputs[0]]
        theirs = tflm_invoke(data, x)
        assert np.array_equal(ours.reshape(-1), theirs.reshape(-1)), name
    # layer by layer on the last input: every activation TFLM keeps is equal to ours
    tt = {graph_tensor_name(k): v for k, v in tflm_tensors(data, x).items()}
    vals = run_graph(g, x)
    checked = 0
    for op in g.ops:
        if op.output in tt:
            assert np.array_equal(vals[op.output].reshape(-1), tt[op.output].reshape(-1)), (name, op.name)
            checked += 1
    assert checked >= len(g.ops) // 2


def test_imported_ops_and_folding():
    g = import_tflite(FIX / "small_cnn.tflite")
    kinds = [o.kind for o in g.ops]
    # SHAPE -> STRIDED_SLICE -> PACK (Flatten with a dynamic batch) folded away; RESHAPE kept
    assert kinds == ["conv2d", "max_pool2d", "conv2d", "max_pool2d", "conv2d", "reshape", "fully_connected",
                     "fully_connected", "softmax"]
    assert g.ops[0].role == "stem" and g.ops[0].attrs["padding"] == (1, 1, 1, 1)
    assert g.ops[2].attrs["padding"] == (0, 0, 0, 0)  # VALID
    assert g.ops[3].attrs["kernel"] == (3, 3) and g.ops[3].attrs["padding"] == (0, 1, 0, 1)  # SAME, 7 -> 4
    relu6 = g.ops[2]
    zp = g.tensors[relu6.output].zero_point
    assert relu6.attrs["activation"] == "relu6" and relu6.attrs["act_min"] == max(-128, zp)
    ds = import_tflite(FIX / "ds_cnn.tflite")
    assert ds.ops[0].attrs["kernel"] == (10, 4) and ds.ops[0].attrs["stride"] == (2, 2)
    assert [o.kind for o in import_tflite(FIX / "mobilenet_v1_025_vww.tflite").ops][-3:] == \
        ["mean", "fully_connected", "softmax"]


def _mutate(name: str, fn) -> bytes:
    m = fb.ModelT.InitFromPackedBuf((FIX / name).read_bytes(), 0)
    fn(m)
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _op_index(m, code: int) -> int:
    for i, op in enumerate(m.subgraphs[0].operators):
        oc = m.operatorCodes[op.opcodeIndex]
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == code:
            return i
    raise AssertionError(code)


def test_unsupported_op_is_named_with_its_index_and_the_list():
    def to_tanh(m):
        i = _op_index(m, fb.BuiltinOperator.SOFTMAX)
        m.operatorCodes[m.subgraphs[0].operators[i].opcodeIndex].builtinCode = fb.BuiltinOperator.TANH
        m.operatorCodes[m.subgraphs[0].operators[i].opcodeIndex].deprecatedBuiltinCode = fb.BuiltinOperator.TANH
    with pytest.raises(ModelImportError) as e:
        import_tflite(_mutate("resnet8.tflite", to_tanh), "bad.tflite")
    msg = str(e.value)
    assert "op 18 (TANH" in msg and "is not supported" in msg and ", ".join(SUPPORTED) in msg
    assert "\n" not in msg


def test_unsupported_attributes():
    def dilate(m):
        i = _op_index(m, fb.BuiltinOperator.CONV_2D)
        m.subgraphs[0].operators[i].builtinOptions.dilationHFactor = 2
    with pytest.raises(ModelImportError, match=r"op 0 \(CONV_2D.*dilation 2x1 is not supported"):
        import_tflite(_mutate("resnet8.tflite", dilate), "bad.tflite")

    def multiplier(m):
        i = _op_index(m, fb.BuiltinOperator.DEPTHWISE_CONV_2D)
        m.subgraphs[0].operators[i].builtinOptions.depthMultiplier = 2
    with pytest.raises(ModelImportError, match=r"op 1 \(DEPTHWISE_CONV_2D.*depth multiplier 2 .*only 1\)"):
        import_tflite(_mutate("ds_cnn.tflite", multiplier), "bad.tflite")

    def tanh_fused(m):
        m.subgraphs[0].operators[0].builtinOptions.fusedActivationFunction = 4
    with pytest.raises(ModelImportError, match=r"fused activation TANH is not supported"):
        import_tflite(_mutate("ds_cnn.tflite", tanh_fused), "bad.tflite")


def test_corrupt_truncated_and_foreign_files(tmp_path):
    data = (FIX / "small_cnn.tflite").read_bytes()
    (tmp_path / "cut.tflite").write_bytes(data[:300])
    with pytest.raises(ModelImportError, match=r"cut\.tflite: corrupt or truncated"):
        import_tflite(tmp_path / "cut.tflite")
    (tmp_path / "cut2.tflite").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelImportError, match=r"cut2\.tflite: .*(corrupt|truncated)"):
        import_tflite(tmp_path / "cut2.tflite")
    (tmp_path / "x.tflite").write_text('{"not": "a flatbuffer"}')
    with pytest.raises(ModelImportError, match=r"x\.tflite: not a TFLite flatbuffer"):
        import_tflite(tmp_path / "x.tflite")
    with pytest.raises(ModelImportError, match="no such file"):
        import_tflite(tmp_path / "missing.tflite")


def test_mean_with_equal_qparams_matches_tflm():
    """MEAN whose output keeps the input's scale and zero point takes TFLM's other (truncating) path."""
    def same_q(m):
        sg = m.subgraphs[0]
        op = sg.operators[_op_index(m, fb.BuiltinOperator.MEAN)]
        qi, qo = sg.tensors[op.inputs[0]].quantization, sg.tensors[op.outputs[0]].quantization
        qo.scale, qo.zeroPoint = np.array(qi.scale), np.array(qi.zeroPoint)
    data = _mutate("mobilenet_v2_small.tflite", same_q)
    g = import_tflite(data, "same_q.tflite")
    mean = next(o for o in g.ops if o.kind == "mean")
    a, b = g.tensors[mean.inputs[0]], g.tensors[mean.output]
    assert (a.scale, a.zero_point) == (b.scale, b.zero_point)
    rng = np.random.default_rng(3)
    for _ in range(4):
        x = rng.integers(-128, 128, g.tensors[g.inputs[0]].shape, dtype=np.int8)
        tt = {graph_tensor_name(k): v for k, v in tflm_tensors(data, x).items()}
        assert np.array_equal(run_graph(g, x)[mean.output].reshape(-1), tt[mean.output].reshape(-1))


# ---------------------------------------------------------------- the new reference kernels, by hand
def test_max_pool2d_ignores_padding_and_clamps():
    x = np.array([[-100, -50], [-20, -120]], np.int8).reshape(2, 2, 1)
    y = KT.max_pool2d(x, (2, 2), (1, 1), (0, 1, 0, 1))  # SAME: every window sees only real pixels
    assert y[..., 0].tolist() == [[-20, -50], [-20, -120]]
    assert KT.max_pool2d(x, (2, 2), (2, 2), (0, 0, 0, 0), act_min=-10)[..., 0].tolist() == [[-10]]


def test_mean_requantises_with_count_folded_into_the_multiplier():
    x = np.array([[1, -1], [2, -2], [2, -2], [2, -2]], np.int8).reshape(2, 2, 2)
    p = KT.mean_params(0.5, 0, 0.5, 0, 4)
    assert KT.mean_hw(x, 0, 0, p).tolist() == [2, -2]  # 7/4 and -7/4 round half away from zero
    q = KT.mean_params(0.5, 3, 0.25, -5, 4)
    y = KT.mean_hw(x, 3, -5, q)
    real = 0.5 * (x.reshape(4, 2).astype(float).mean(0) - 3) / 0.25 - 5
    assert np.all(np.abs(y - real) <= 1)


def test_softmax_is_a_distribution():
    p = KT.softmax_params(1.0, 0.05)
    x = np.array([10, 0, -20, 5, 12, -30, 8, 9, 11, 3], np.int8)
    y = (KT.softmax(x, p).astype(int) + 128) / 256
    e = np.exp(0.05 * (x.astype(float) - x.max()))
    assert np.all(np.abs(y - e / e.sum()) <= 2 / 256)
    assert KT.softmax(np.array([5, -128, 5], np.int8), KT.softmax_params(1.0, 1.0)).tolist()[1] == -128


# ---------------------------------------------------------------- the command lines
def test_cli_analyze_gen_export_take_a_tflite(tinyengine_cli, tmp_path):
    rc, out, err = tinyengine_cli(["analyze", str(FIX / "ds_cnn.tflite"), "--board", "qemu-m4"])
    assert rc == 0, err
    assert "ds_cnn: 49x10x1 -> 12 classes" in out and "peak SRAM 15.9 KB (16,256 B" in out and "fits qemu-m4" in out
    rc, out, err = tinyengine_cli(["gen", str(FIX / "small_cnn.tflite"), "--board", "qemu-m4",
                                   "--out", str(tmp_path / "p")])
    assert rc == 0, err
    assert "te_max_pool_s8 x2" in out and "te_softmax_s8 x1" in out and (tmp_path / "p" / "src" / "model.c").is_file()
    rc, out, err = tinyengine_cli(["export", str(FIX / "mobilenet_v2_small.tflite"), "--tflite",
                                   str(tmp_path / "rt.tflite"), "--check"])
    assert rc == 0, err
    assert "TFLite Micro matches our reference bit for bit" in out


def test_cli_reports_a_bad_model_file_in_one_line(tinyengine_cli, tmp_path):
    (tmp_path / "bad.tflite").write_bytes((FIX / "small_cnn.tflite").read_bytes()[:200])
    for cmd in (["analyze", str(tmp_path / "bad.tflite")],
                ["gen", str(tmp_path / "bad.tflite"), "--board", "qemu-m4", "--out", str(tmp_path / "o")],
                ["export", str(tmp_path / "bad.tflite"), "--tflite", str(tmp_path / "x.tflite")]):
        rc, out, err = tinyengine_cli(cmd)
        assert rc == 2 and "bad.tflite: corrupt or truncated" in err, (cmd, out, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_float_edges_quantize_dequantize_are_dropped():
    """A model with float input/output (QUANTIZE first, DEQUANTIZE last) imports to the same int8 graph."""
    def float_edges(m):
        sg = m.subgraphs[0]
        codes = {}
        for name in ("QUANTIZE", "DEQUANTIZE"):
            oc = fb.OperatorCodeT()
            oc.builtinCode = oc.deprecatedBuiltinCode = getattr(fb.BuiltinOperator, name)
            oc.version = 1
            m.operatorCodes.append(oc)
            codes[name] = len(m.operatorCodes) - 1
        new = []
        for old in (int(sg.inputs[0]), int(sg.outputs[0])):
            t = fb.TensorT()
            t.name, t.shape, t.type, t.buffer = f"float_{old}", np.array(sg.tensors[old].shape), fb.TensorType.FLOAT32, 0
            sg.tensors.append(t)
            new.append(len(sg.tensors) - 1)
        q, dq = fb.OperatorT(), fb.OperatorT()
        q.opcodeIndex, q.inputs, q.outputs = codes["QUANTIZE"], np.array([new[0]]), np.array([sg.inputs[0]])
        dq.opcodeIndex, dq.inputs, dq.outputs = codes["DEQUANTIZE"], np.array([sg.outputs[0]]), np.array([new[1]])
        sg.operators = [q, *sg.operators, dq]
        sg.inputs, sg.outputs = np.array([new[0]]), np.array([new[1]])
    g0 = import_tflite(FIX / "small_cnn.tflite")
    g1 = import_tflite(_mutate("small_cnn.tflite", float_edges), "float_io.tflite")
    assert [o.kind for o in g1.ops] == [o.kind for o in g0.ops]
    assert g1.tensors[g1.inputs[0]] == g0.tensors[g0.inputs[0]]
    assert g1.tensors[g1.outputs[0]] == g0.tensors[g0.outputs[0]]
