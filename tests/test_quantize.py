"""Import (BN folding), post-training quantisation and the NumPy reference executor."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from search_spaces.arch import ArchConfig, BlockConfig, StageConfig
from search_spaces.space import SearchSpace
from search_spaces.torch_model import build_torch_model
from tinyengine.frontend.archnet import fold_bn, import_torch
from tinyengine.frontend.quantize import calibrate, quantize_graph, quantize_model
from tinyengine.ir.graph import Graph, Op, Tensor
from tinyengine.numerics.reference import predict, quantize_input, run_graph
from tinyml_errors import GraphError, ModelImportError


def _randomise_bn(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)


def test_fold_bn_matches_conv_then_bn():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 6, 3, 1, 1, bias=False)
    bn = torch.nn.BatchNorm2d(6)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.2, 3)
    bn.weight.data.uniform_(0.5, 2)
    bn.bias.data.uniform_(-1, 1)
    bn.eval()
    x = torch.randn(2, 4, 5, 5)
    w, b = fold_bn(conv, bn)
    ref = bn(conv(x)).detach().numpy()
    got = torch.nn.functional.conv2d(x, torch.from_numpy(w), torch.from_numpy(b), padding=1).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_single_pointwise_conv_by_hand():
    """A 1x1 conv on a 1x2x2 input, every number worked out by hand (double-rounding requant)."""
    g = Graph("hand", {"x": Tensor("x", (1, 2, 2), scale=0.5, zero_point=-1),
                       "y": Tensor("y", (1, 2, 1), scale=1.0, zero_point=3)},
              [Op("c", "conv2d", ("x",), "y",
                  {"kernel": (1, 1), "stride": (1, 1), "padding": (0, 0, 0, 0), "weight_shape": (1, 1, 1, 2),
                   "activation": None, "act_min": -128, "act_max": 127},
                  params={"weight": np.array([[[[2, -3]]]], np.int8), "bias": np.array([5], np.int32),
                          # multiplier 2^30 with shift 0 is the real multiplier 0.5
                          "mult": np.array([1 << 30], np.int32), "shift": np.array([0], np.int32)})],
              ["x"], ["y"])
    x = np.array([[[3, 1], [-1, 6]]], np.int8)  # pixel 0: (3, 1), pixel 1: (-1, 6)
    # pixel 0: acc = 5 + 2*(3+1) - 3*(1+1) = 7; 7 * 0.5 = 3.5 -> rounds half away from zero to 4; +3 = 7
    # pixel 1: acc = 5 + 2*(-1+1) - 3*(6+1) = -16; -16 * 0.5 = -8; +3 = -5
    y = run_graph(g, x)["y"]
    assert y.dtype == np.int8
    assert y.reshape(-1).tolist() == [7, -5]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_int8_reference_tracks_float_model(seed):
    """Random sub-networks with random BN statistics: int8 logits stay within quantisation error."""
    space = SearchSpace(num_classes=10, in_channels=3)
    rng = np.random.default_rng(seed)
    arch = space.sample(rng, float(rng.choice([0.3, 0.4, 0.5])), int(rng.choice([32, 48])))
    torch.manual_seed(seed)
    model = build_torch_model(arch)
    _randomise_bn(model, seed)
    model.eval()
    x = torch.rand(48, 3, arch.resolution, arch.resolution)
    graph = quantize_model(arch, model, x[:32])
    q = predict(graph, x[32:].numpy())
    f = model(x[32:]).detach().numpy()
    spread = f.max() - f.min()
    assert np.abs(q - f).max() < 0.08 * spread, (np.abs(q - f).max(), spread)
    assert np.corrcoef(q.ravel(), f.ravel())[0, 1] > 0.99


def test_quantised_params_follow_tflite_conventions():
    space = SearchSpace(num_classes=5, in_channels=1)
    arch = space.smallest(0.3, 32)
    model = build_torch_model(arch)
    _randomise_bn(model, 3)
    g = quantize_model(arch, model, torch.rand(8, 1, 32, 32))
    for op in g.ops:
        out = g.tensors[op.output]
        assert out.scale > 0 and -128 <= out.zero_point <= 127
        if op.weight_shape is None:
            continue
        w = op.params["weight"]
        assert w.dtype == np.int8 and w.shape == op.weight_shape and w.min() >= -127
        n = op.weight_shape[2] if op.kind == "depthwise_conv2d" else op.weight_shape[0]
        assert op.params["bias"].dtype == np.int32 and op.params["bias"].shape == (n,)
        assert op.params["mult"].shape == (n,) and op.params["shift"].shape == (n,)
        nz = op.params["mult"] != 0
        assert np.all(op.params["mult"][nz] >= 1 << 30)  # normalised Q31 multipliers
        if op.attrs.get("activation") == "relu6":
            # ReLU6 outputs: zero point at the bottom of the range, 6.0 representable
            assert op.attrs["act_min"] == out.zero_point
    pool = next(op for op in g.ops if op.kind == "global_avg_pool")
    a, b = g.tensors[pool.inputs[0]], g.tensors[pool.output]
    assert (a.scale, a.zero_point) == (b.scale, b.zero_point)


def test_fashion_mnist_int8_agrees_with_float():
    """A small net trained briefly on Fashion-MNIST: int8 (NumPy reference) vs float top-1."""
    from tinynas.data import load_fashion_mnist

    torch.manual_seed(0)
    torch.set_num_threads(2)
    xtr, ytr = load_fashion_mnist("train", resolution=32, limit=8000)
    xte, yte = load_fashion_mnist("test", resolution=32, limit=400)
    arch = SearchSpace(num_classes=10, in_channels=1).smallest(0.3, 32)
    model = build_torch_model(arch)
    opt = torch.optim.AdamW(model.parameters(), 3e-3)
    X, Y = torch.from_numpy(xtr), torch.from_numpy(ytr)
    for _ in range(2):
        model.train()
        perm = torch.randperm(len(X))
        for i in range(0, len(X), 128):
            idx = perm[i:i + 128]
            loss = torch.nn.functional.cross_entropy(model(X[idx]), Y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        f = model(torch.from_numpy(xte)).numpy().argmax(1)
    graph = quantize_model(arch, model, xtr[:256])
    q = predict(graph, xte).argmax(1)
    float_acc, int8_acc, agree = (f == yte).mean(), (q == yte).mean(), (f == q).mean()
    print(f"Fashion-MNIST (400 test images): float {float_acc:.3f} int8 {int8_acc:.3f} agreement {agree:.3f}")
    assert float_acc > 0.6  # it learned something
    assert agree >= 0.95
    assert int8_acc >= float_acc - 0.03


def test_errors_name_the_tensor_and_op():
    arch = SearchSpace(num_classes=4, in_channels=1).smallest(0.3, 32)
    model = build_torch_model(arch)
    g = import_torch(arch, model)
    with pytest.raises(GraphError, match="tensor 'input'.*not quantised"):
        run_graph(g, np.zeros((32, 32, 1), np.int8))
    gq = quantize_graph(g, calibrate(model, torch.rand(4, 1, 32, 32)))
    with pytest.raises(GraphError, match=r"input 'input' must be int8 of shape \(32, 32, 1\)"):
        run_graph(gq, np.zeros((32, 32, 3), np.int8))
    with pytest.raises(ModelImportError, match="no calibration range for tensor 'stem'"):
        quantize_graph(import_torch(arch, model), {"input": (0.0, 1.0)})
    with pytest.raises(ModelImportError, match="NCHW"):
        calibrate(model, np.zeros((32, 32)))
    with pytest.raises(GraphError, match="expected an image of shape"):
        quantize_input(gq, np.zeros((5, 5)))


def test_import_rejects_mismatched_model():
    a = SearchSpace(num_classes=4, in_channels=1).smallest(0.3, 32)
    b = ArchConfig(**{**a.__dict__, "stages": a.stages[:-1] + (StageConfig(
        a.stages[-1].out_channels, 1, (BlockConfig(5, 3),)),)})
    with pytest.raises(ModelImportError, match="expects weights"):
        import_torch(b, build_torch_model(a))
