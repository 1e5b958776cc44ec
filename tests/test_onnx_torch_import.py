"""Float ONNX files and PyTorch modules imported, BN folded and quantised by our PTQ: the ONNX export of
a zoo model gives the same int8 graph as the module itself; a CNN with max/avg pooling and a spatial
Flatten runs through gen and the host build; bad files and unsupported layers get one clear error."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from codegen.generate import build_host, generate
from search_spaces.zoo import load_model
from tinyengine.export import export_onnx
from tinyengine.frontend.float_graph import run_float
from tinyengine.frontend.onnx import SUPPORTED, import_onnx, quantize_onnx
from tinyengine.frontend.torch_fx import import_module, quantize_module
from tinyengine.frontend.weights import random_model
from tinyengine.numerics.reference import dequantize_output, quantize_input, run_graph
from tinyml_errors import ModelImportError

torch.set_num_threads(1)


def _export(model: nn.Module, shape, path):
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(1, *shape),), str(path), dynamo=False,
                          input_names=["input"], output_names=["out"], opset_version=17)
    return path


def _same_int8_graph(a, b):
    assert [o.kind for o in a.ops] == [o.kind for o in b.ops]
    assert a.tensors == b.tensors  # shapes, scales and zero points
    for x, y in zip(a.ops, b.ops):
        assert x.attrs == y.attrs, x.name
        assert x.params.keys() == y.params.keys()
        for k in x.params:
            assert np.array_equal(x.params[k], y.params[k]), (x.name, k)


def test_onnx_export_of_a_zoo_model_gives_the_same_int8_graph_as_the_module(tmp_path):
    arch = load_model("mcunet-in0")
    model = random_model(arch, 0)  # randomised BatchNorm statistics: folding matters
    path = export_onnx(arch, model, tmp_path / "in0.onnx")
    q_onnx = quantize_onnx(path, calib=8, seed=3)
    q_torch = quantize_module(model, (3, arch.resolution, arch.resolution), name="in0", calib=8, seed=3)
    _same_int8_graph(q_onnx, q_torch)
    assert [o.kind for o in q_onnx.ops].count("conv2d") + [o.kind for o in q_onnx.ops].count("depthwise_conv2d") \
        == sum(1 for o in q_onnx.ops if o.weight_shape is not None and o.kind != "fully_connected")
    x = np.random.default_rng(0).random((2, 3, 48, 48), dtype=np.float32)
    with torch.no_grad():
        ref = model(torch.as_tensor(x)).numpy()
    f = import_onnx(path)
    np.testing.assert_allclose(run_float(f, x)[f.outputs[0]], ref, atol=1e-5)


class SmallCNN(nn.Module):
    """Max and average pooling, a 5x5 conv, BatchNorm with random statistics, Flatten of a 3x3 map."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.p1 = nn.MaxPool2d(2)
        self.c2 = nn.Conv2d(8, 12, 5, stride=1, padding=2)
        self.bn2 = nn.BatchNorm2d(12)
        self.p2 = nn.AvgPool2d(2)
        self.dw = nn.Conv2d(12, 12, 3, padding=1, groups=12)
        self.fc = nn.Linear(12 * 3 * 3, 10)

    def forward(self, x):
        x = self.p1(torch.relu(self.bn1(self.c1(x))))
        x = self.p2(nn.functional.relu6(self.bn2(self.c2(x))))
        x = torch.relu(self.dw(x)) + x
        return self.fc(torch.flatten(x, 1))


def _small_cnn():
    torch.manual_seed(0)
    m = SmallCNN()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for bn in (m.bn1, m.bn2):
            n = bn.num_features
            bn.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            bn.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            bn.weight.copy_(torch.rand(n, generator=g) + 0.5)
            bn.bias.copy_(torch.rand(n, generator=g) - 0.5)
    return m.eval()


def test_cnn_with_pooling_and_flatten(tmp_path):
    m = _small_cnn()
    path = _export(m, (1, 12, 12), tmp_path / "cnn.onnx")
    f = import_onnx(path)
    assert [o.kind for o in f.ops] == ["conv2d", "max_pool2d", "conv2d", "avg_pool2d", "depthwise_conv2d", "add",
                                       "reshape", "fully_connected"]
    x = np.random.default_rng(2).random((4, 1, 12, 12), dtype=np.float32)
    with torch.no_grad():
        ref = m(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(run_float(f, x)[f.outputs[0]], ref, atol=1e-5)  # FC columns permuted to HWC
    q = quantize_onnx(path, calib=16, seed=0)
    _same_int8_graph(q, quantize_module(m, (1, 12, 12), name="cnn", calib=16, seed=0))
    err = [np.abs(dequantize_output(q, run_graph(q, quantize_input(q, img))[q.outputs[0]]) - r).max()
           for img, r in zip(x, ref)]
    assert max(err) < 0.1 * np.abs(ref).max()
    proj = generate(str(path), "qemu-m4", tmp_path / "proj", calib=16)
    r = build_host(proj.root, "check")
    assert r.returncode == 0, r.stdout + r.stderr


def test_unsupported_nodes_and_bad_files(tmp_path):
    class Sig(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return torch.sigmoid(self.c(x))
    path = _export(Sig(), (3, 8, 8), tmp_path / "sig.onnx")
    with pytest.raises(ModelImportError) as e:
        import_onnx(path)
    msg = str(e.value)
    assert "node 1" in msg and "(Sigmoid) is not supported" in msg and ", ".join(SUPPORTED) in msg
    with pytest.raises(ModelImportError, match=r"node 2 'sigmoid' \(sigmoid\) is not supported"):
        import_module(Sig(), (3, 8, 8), "sig")
    grouped = nn.Sequential(nn.Conv2d(4, 8, 3, groups=2))
    with pytest.raises(ModelImportError, match=r"grouped convolution \(group 2"):
        import_module(grouped, (4, 8, 8), "grouped")
    data = path.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelImportError, match=r"cut\.onnx: corrupt or truncated"):
        import_onnx(tmp_path / "cut.onnx")
