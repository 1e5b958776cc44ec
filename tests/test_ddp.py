"""Supernet training under ``torchrun --nproc_per_node=2`` (Gloo on CPU) against the single-process run."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "helpers" / "ddp_supernet.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="")
    return env


def test_torchrun_two_processes_match_single_process(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    subprocess.run([sys.executable, str(WORKER), str(one)], check=True, env=_env(), timeout=300)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                        "--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(WORKER), str(two)],
                       env=_env(), timeout=300, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    single = torch.load(one / "rank0.pt", weights_only=True)
    r0, r1 = (torch.load(two / f"rank{i}.pt", weights_only=True) for i in (0, 1))
    assert r0["world"] == r1["world"] == 2 and single["world"] == 1
    # gradients are averaged over ranks: both ranks hold exactly the same weights after training
    for k, v in r0["state"].items():
        if k.endswith("num_batches_tracked") or "running_" in k:
            continue  # BN statistics are per rank (each sees its own shard), as in DDP without SyncBN
        assert torch.equal(v, r1["state"][k]), k
    # the same number of optimiser steps and images per epoch as the single process ...
    assert len(r0["history"]) == len(single["history"]) == 3
    # ... and the same learning curve: not bit-equal (each rank samples its own sub-networks and
    # normalises over its own half batch), but both fit the task to the same training loss
    ls, l2 = single["history"][-1]["loss"], (r0["history"][-1]["loss"] + r1["history"][-1]["loss"]) / 2
    assert ls < 0.45 and l2 < 0.45 and abs(ls - l2) < 0.1, (ls, l2)
    assert min(single["history"][-1]["train_acc"], r0["history"][-1]["train_acc"]) > 0.85
    assert (two / "ckpt.pt").exists()  # rank 0 checkpoints
    # the ranks trained under DistributedDataParallel (tinynas.ddp), the single process without it
    assert all(h.get("processes") == 2 for h in r0["history"]) and "processes" not in single["history"][0]


def test_ddp_sandwich_step_averages_the_ranks_gradients(tmp_path):
    """Weight sharing under DDP: one forward of every sub-network of a step and one backward give each
    rank the mean over ranks of the gradients the single-process path computes (one backward per
    sub-network); weights no rank used keep no gradient, weights one rank used get half its gradient."""
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                        "--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(WORKER), str(tmp_path),
                        "grads"], env=_env(), timeout=300, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    g0, g1 = (torch.load(tmp_path / f"grads{i}.pt", weights_only=True) for i in (0, 1))
    assert g0["world"] == g1["world"] == 2
    used_by_one = unused = 0
    for name, l0 in g0["local"].items():
        l1 = g1["local"][name]
        if l0 is None and l1 is None:
            assert g0["ddp"][name] is None and g1["ddp"][name] is None, name
            unused += 1
            continue
        used_by_one += (l0 is None) != (l1 is None)
        z = torch.zeros_like(l0 if l0 is not None else l1)
        want = ((l0 if l0 is not None else z) + (l1 if l1 is not None else z)) / 2
        for g in (g0, g1):
            assert torch.allclose(g["ddp"][name], want, atol=1e-6, rtol=1e-4), name
    assert unused > 0 and used_by_one > 0  # the case DDP needs find_unused_parameters for is exercised
