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
    single = torch.load(one / "rank0.pt", weights_only=False)
    r0, r1 = (torch.load(two / f"rank{i}.pt", weights_only=False) for i in (0, 1))
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
