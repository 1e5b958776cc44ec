"""Train a tiny supernet with tinynas.train (single process, or one rank under torchrun) and save
each rank's final weights and history to OUT/rank<R>.pt; with ``grads``, one DDP sandwich step's
gradients against the local ones (OUT/grads<R>.pt). Used by tests/test_ddp.py."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from search_spaces.space import SearchSpace  # noqa: E402
from search_spaces.supernet import SuperNet  # noqa: E402
from tinynas.train import TrainConfig, dist_info, init_distributed, train  # noqa: E402


def grads(out: str) -> None:
    """One sandwich step on a rank-specific batch and rank-specific sub-networks: the gradients one
    backward per sub-network gives locally (the single-process path), and those after the DDP step."""
    import numpy as np
    import torch.nn.functional as F

    from tinynas.ddp import ddp_step, wrap
    torch.set_num_threads(1)
    init_distributed()
    rank, world = dist_info()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2 * 8, 1, 32, 32, generator=g)[rank * 8:(rank + 1) * 8]
    y = torch.randint(0, 2, (16,), generator=g)[rank * 8:(rank + 1) * 8]
    sp = SearchSpace(num_classes=2, in_channels=1, resolution_choices=(32,), width_choices=(0.25,))
    torch.manual_seed(0)
    net = SuperNet(sp, 0.25)
    rng = np.random.default_rng([5, rank])
    archs = [sp.smallest(0.25, 32), sp.sample(rng, 0.25, 32)]  # the smallest skips every deep block
    cfg = TrainConfig(kd=1.0)
    out0 = net(x, archs[0])
    F.cross_entropy(out0, y, label_smoothing=cfg.label_smoothing).backward()
    soft = F.softmax(out0.detach(), 1)
    o = net(x, archs[1])
    sub = F.cross_entropy(o, y, label_smoothing=cfg.label_smoothing)
    ((sub + F.kl_div(F.log_softmax(o, 1), soft, reduction="batchmean")) / 2).backward()
    local = {n: None if p.grad is None else p.grad.clone() for n, p in net.named_parameters()}
    net.zero_grad(set_to_none=True)
    ddp_step(wrap(net, "cpu", sandwich=True), x, y, cfg, archs)
    synced = {n: None if p.grad is None else p.grad.clone() for n, p in net.named_parameters()}
    torch.save({"local": local, "ddp": synced, "world": world}, Path(out) / f"grads{rank}.pt")
    if world > 1:
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()


def main(out: str) -> None:
    torch.set_num_threads(1)
    init_distributed()
    rank, world = dist_info()
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (256,), generator=g)
    x = torch.randint(0, 60, (256, 1, 32, 32), generator=g, dtype=torch.int64)
    x[y == 1, :, 8:24, 8:24] += 150  # a learnable pattern: a bright square means class 1
    x = x.to(torch.uint8)
    sp = SearchSpace(num_classes=2, in_channels=1, resolution_choices=(32,), width_choices=(0.25,))
    torch.manual_seed(0)
    net = SuperNet(sp, 0.25)
    cfg = TrainConfig(epochs=3, largest_epochs=1, batch_size=32 // world, lr=0.1, n_random=1)
    hist = train(net, x, y, 32, 1, cfg, Path(out) / "ckpt.pt", space=sp, width_mult=0.25, progress=False)
    torch.save({"state": net.state_dict(), "history": hist, "world": world},
               Path(out) / f"rank{rank}.pt")
    if world > 1:
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    (grads if sys.argv[2:] == ["grads"] else main)(sys.argv[1])
