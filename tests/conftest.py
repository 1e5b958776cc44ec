"""Shared fixtures: command lines run in-process with plain (uncoloured, unwrapped) console output."""
from __future__ import annotations

import os
import re

import pytest

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def flat(text: str) -> str:
    """Console text without colour codes, with line wrapping undone."""
    return " ".join(ANSI.sub("", text).split())


@pytest.fixture
def plain_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def tinyengine_cli(plain_console, capsys):
    """run(argv) -> (exit status, flattened stdout, stderr) of ``tinyengine argv``."""
    from tinyml_cli import engine as cli

    def run(argv):
        try:
            rc = cli.main(argv)
        except SystemExit as e:  # argparse errors
            rc = e.code
        out, err = capsys.readouterr()
        return rc, flat(out), err
    return run


@pytest.fixture
def one_torch_thread():
    """One torch thread: on a busy 2-core machine OpenMP barriers make two threads ~10x slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def private_pio_core(tmp_path_factory):
    """A fresh PlatformIO core for a test module: what a newcomer's machine starts with."""
    old = os.environ.get("TINYENGINE_PIO_CORE")
    os.environ["TINYENGINE_PIO_CORE"] = str(tmp_path_factory.mktemp("pio-core"))
    yield
    if old is None:
        os.environ.pop("TINYENGINE_PIO_CORE", None)
    else:
        os.environ["TINYENGINE_PIO_CORE"] = old
