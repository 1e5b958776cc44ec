"""fashion-vww: the visual-wake-words-like binary task built from Fashion-MNIST items."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from tinyml_errors import DatasetError
from tinynas.vww import VWWSpec, is_vww, make_vww, parse_spec


def _write_split(root, stem, value, n=60):
    """A fake Fashion-MNIST split: every image a constant ``value`` (odd rows value-1), labels i % 10."""
    img = np.full((n, 28, 28), value, np.uint8)
    img[:, ::2] = value - 1
    with gzip.open(root / f"{stem}-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\0" * 16 + img.tobytes())
    with gzip.open(root / f"{stem}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\0" * 8 + (np.arange(n) % 10).astype(np.uint8).tobytes())


@pytest.fixture
def fake_root(tmp_path):
    _write_split(tmp_path, "train", 100)
    _write_split(tmp_path, "t10k", 200)
    return tmp_path


def test_deterministic_from_seed(fake_root):
    spec = VWWSpec(canvas=64)
    a = make_vww(spec, "train", 40, seed=3, root=fake_root, return_sources=True)
    b = make_vww(spec, "train", 40, seed=3, root=fake_root, return_sources=True)
    c = make_vww(spec, "train", 40, seed=4, root=fake_root, return_sources=True)
    for u, v in zip(a, b):
        assert np.array_equal(u, v)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("n", [2, 41, 100])
def test_labels_balanced_and_match_contents(fake_root, n):
    spec = VWWSpec(canvas=72, target=7)
    x, y, src = make_vww(spec, "train", n, seed=0, root=fake_root, return_sources=True)
    assert x.shape == (n, 1, 72, 72) and x.dtype == np.uint8 and y.dtype == np.int64
    assert y.sum() == (n + 1) // 2                      # exactly balanced
    labels = np.arange(60) % 10                         # the fake split's labels
    for i in range(n):
        used = src[i][src[i] >= 0]
        assert 1 <= len(used) <= spec.max_items and x[i].max() > 0
        has_target = bool(np.any(labels[used] == spec.target))
        assert has_target == bool(y[i])                 # positives hold the target, negatives never


def test_train_and_test_come_from_their_own_source_split(fake_root):
    spec = VWWSpec(canvas=64)
    xtr, _ = make_vww(spec, "train", 30, root=fake_root)
    xte, _ = make_vww(spec, "test", 30, root=fake_root)
    # the fake train items are grey 99/100, the test items 199/200: no picture mixes them
    assert set(np.unique(xtr).tolist()) == {0, 99, 100}
    assert set(np.unique(xte).tolist()) == {0, 199, 200}


def test_spec_parsing_and_errors():
    assert is_vww("fashion-vww") and is_vww("fashion-vww:96") and not is_vww("fashion-mnist")
    assert parse_spec("fashion-vww") == VWWSpec(64, 7)
    assert parse_spec("fashion-vww:128:bag") == VWWSpec(128, 8)
    assert parse_spec("fashion-vww:96:2").target == 2
    assert parse_spec("fashion-vww:64").resolutions()[-1] == 64
    for bad, msg in (("fashion-vww:40", "must be 64..128"), ("fashion-vww:big", "not a whole number"),
                     ("fashion-vww:64:hat", "target class 'hat'"), ("fashion-vww:64:1:2", "too many")):
        with pytest.raises(DatasetError, match=msg):
            parse_spec(bad)


def test_cli_rejects_bad_vww_spec(tmp_path, capsys):
    from tinyml_cli.nas import main
    rc = main(["search", "--sram", "64KB", "--flash", "256KB", "--data", "fashion-vww:300",
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "canvas 300" in err and "Traceback" not in err
