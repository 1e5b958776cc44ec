"""Elastic supernet: weight sharing, sub-network extraction, dynamic BN, sandwich training, resume."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from search_spaces.arch import ArchError
from search_spaces.space import SearchSpace
from search_spaces.supernet import DynamicBatchNorm2d, SuperNet, centre_crop, recalibrate_bn
from search_spaces.torch_model import build_torch_model
from tinyml_errors import TinyMLError
from tinynas.train import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


SPACE = SearchSpace(num_classes=10, in_channels=1, resolution_choices=(32,))
W, R = 0.3, 32


def _warm(net: SuperNet, rng: np.random.Generator) -> None:
    """A few train-mode passes so that BN statistics differ per channel (not the 0/1 defaults)."""
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(8, 1, R, R) * 3, SPACE.sample(rng, W, R))
            net(torch.rand(8, 1, R, R) * 3, SPACE.largest(W, R))
    net.eval()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_extracted_subnet_matches_supernet(seed):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = SuperNet(SPACE, W)
    _warm(net, rng)
    x = torch.rand(4, 1, R, R)
    for arch in (SPACE.sample(rng, W, R), SPACE.smallest(W, R), SPACE.largest(W, R)):
        sub = net.extract_subnet(arch).eval()
        with torch.no_grad():
            torch.testing.assert_close(sub(x), net(x, arch), rtol=1e-5, atol=1e-5)
        # the state dict is what build_torch_model(arch) expects (tinyengine gen --weights loads it)
        build_torch_model(arch).load_state_dict(sub.state_dict(), strict=True)


def test_largest_subnet_copies_all_weights():
    torch.manual_seed(0)
    net = SuperNet(SPACE, W)
    arch = SPACE.largest(W, R)
    sub = net.extract_subnet(arch)
    blk = net.stages[2][1]
    sb = sub.blocks[1 + 4 + 4 + 1]  # the first block, two stages of depth 4, then stage 2's second
    assert torch.equal(sb.expand.conv.weight, blk.expand.conv.weight)
    assert torch.equal(sb.dw.conv.weight, blk.dw.conv.weight)
    assert torch.equal(sb.project.conv.weight, blk.project.conv.weight)
    assert torch.equal(sub.classifier.weight, net.classifier.weight)
    n_sub = sum(p.numel() for p in sub.parameters())
    n_super = sum(p.numel() for p in net.parameters())
    assert n_sub == n_super  # the largest sub-network is the whole supernet


def test_smaller_choices_slice_first_channels_and_centre():
    torch.manual_seed(0)
    net = SuperNet(SPACE, W)
    k = np.zeros((SPACE.n_stages, SPACE.max_depth), int)      # kernel 3
    e = np.zeros((SPACE.n_stages, SPACE.max_depth), int)      # expand 3
    arch = SPACE.build(W, R, k, e, [2, 2, 2, 2, 2, 1])
    sub = net.extract_subnet(arch)
    blk, sb = net.stages[0][0], sub.blocks[1]
    mid = sb.spec.mid_channels
    assert mid < blk.max_mid
    assert torch.equal(sb.expand.conv.weight, blk.expand.conv.weight[:mid])
    assert torch.equal(sb.dw.conv.weight, blk.dw.conv.weight[:mid, :, 2:5, 2:5])
    assert torch.equal(sb.project.conv.weight, blk.project.conv.weight[:, :mid])
    assert torch.equal(sb.expand.bn.running_var, blk.expand.bn.running_var[:mid])
    assert torch.equal(centre_crop(torch.arange(49.).view(7, 7), 3), torch.arange(49.).view(7, 7)[2:5, 2:5])


def test_dynamic_bn_slices_first_channels():
    torch.manual_seed(0)
    bn = DynamicBatchNorm2d(8, momentum=0.5)
    with torch.no_grad():
        bn.weight.copy_(torch.arange(1., 9.))
        bn.bias.copy_(torch.arange(8.) / 10)
    x = torch.randn(16, 5, 4, 4) * 2 + 3
    bn.train()
    y = bn(x)
    mean = x.mean((0, 2, 3))
    torch.testing.assert_close(bn.running_mean[:5], 0.5 * mean)
    assert torch.equal(bn.running_mean[5:], torch.zeros(3))       # untouched channels
    assert torch.equal(bn.running_var[5:], torch.ones(3))
    ref = (x - mean[None, :, None, None]) / torch.sqrt(x.var((0, 2, 3), unbiased=False)[None, :, None, None] + bn.eps)
    torch.testing.assert_close(y, ref * bn.weight[:5, None, None] + bn.bias[:5, None, None], rtol=1e-4, atol=1e-4)
    bn.eval()
    ye = bn(x)
    ref_e = (x - bn.running_mean[None, :5, None, None]) / torch.sqrt(bn.running_var[None, :5, None, None] + bn.eps)
    torch.testing.assert_close(ye, ref_e * bn.weight[:5, None, None] + bn.bias[:5, None, None], rtol=1e-4, atol=1e-4)


def test_recalibrate_bn_sets_statistics_of_the_data():
    torch.manual_seed(0)
    arch = SPACE.smallest(W, R)
    net = build_torch_model(arch)
    x = torch.rand(64, 1, R, R) * 4 + 1
    net.eval()
    recalibrate_bn(net, x, batch_size=16)
    with torch.no_grad():
        torch.testing.assert_close(net.stem.bn.running_mean, net.stem.conv(x).mean((0, 2, 3)), rtol=1e-4, atol=1e-4)
    assert net.stem.bn.momentum == 0.1 and not net.training  # momentum and mode restored


def test_extract_rejects_foreign_arch():
    net = SuperNet(SPACE, W)
    with pytest.raises(ArchError, match="not a sub-network"):
        net.extract_subnet(SPACE.largest(0.5, R))


def _tiny_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = (torch.rand(n, 1, 16, 16, generator=g) * 40 + y[:, None, None, None] * 20).to(torch.uint8)
    return x, y  # brightness tells the class: learnable in a few steps


def test_sandwich_steps_reduce_loss():
    torch.manual_seed(0)
    net = SuperNet(SPACE, W)
    x, y = _tiny_data(32)
    cfg = TrainConfig(epochs=8, largest_epochs=0, batch_size=8, lr=0.2, n_random=1, label_smoothing=0.0,
                      weight_decay=0.0)
    hist = train(net, x, y, R, 1, cfg, None, space=SPACE, width_mult=W, progress=False)
    assert hist[-1]["loss"] < 0.8 * hist[0]["loss"]
    assert all(h["phase"] == "sandwich" for h in hist)


def test_training_resume_equals_uninterrupted(tmp_path):
    x, y = _tiny_data(48)
    cfg = TrainConfig(epochs=3, largest_epochs=1, batch_size=16, lr=0.05, n_random=1)

    def run(ckpt, interrupt_after=None):
        torch.manual_seed(0)
        net = SuperNet(SPACE, W)

        def log(msg):
            if interrupt_after and f"epoch {interrupt_after}/" in msg:
                raise KeyboardInterrupt
        train(net, x, y, R, 1, cfg, ckpt, space=SPACE, width_mult=W, progress=False, log=log)
        return net

    ref = run(tmp_path / "a.pt")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b.pt", interrupt_after=2)
    assert torch.load(tmp_path / "b.pt", weights_only=True)["epoch"] == 2
    torch.manual_seed(123)  # a different global state must not matter: the checkpoint restores it
    resumed = run(tmp_path / "b.pt")
    for (k, a), b in zip(ref.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    hist = torch.load(tmp_path / "b.pt", weights_only=True)["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3] and hist[0]["phase"] == "largest"


def test_resume_rejects_other_settings(tmp_path):
    x, y = _tiny_data(16)
    net = build_torch_model(SPACE.smallest(W, R))
    train(net, x, y, R, 1, TrainConfig(epochs=1, batch_size=16), tmp_path / "c.pt", progress=False)
    with pytest.raises(TinyMLError, match="other training settings"):
        train(net, x, y, R, 1, TrainConfig(epochs=2, batch_size=16), tmp_path / "c.pt", progress=False)
