"""No pickle anywhere: the int8 graph's safe format round-trips, and crafted pickle payloads (an old
search folder's model_int8.pkl, an .npz with an object array, a training checkpoint) run nothing."""
from __future__ import annotations

import os
import pickle
import zipfile

import numpy as np
import pytest
import torch

from codegen.generate import calibration_images, generate
from search_spaces.zoo import load_model
from tinyengine.frontend.quantize import quantize_model
from tinyengine.frontend.weights import random_model
from tinyengine.ir.graph_io import load_graph, save_graph
from tinyengine.numerics.reference import run_graph
from tinyml_cli.engine import main as te_main
from tinyml_errors import ModelImportError, StateError
from tinynas.train import TrainConfig, load_checkpoint, train


class _Payload:
    """Unpickling this creates the file ``path`` (what an attacker's code would do)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.makedirs, (self.path,))


@pytest.fixture(scope="module")
def int8_graph():
    torch.set_num_threads(1)
    arch = load_model("mcunet-in0")
    return arch, quantize_model(arch, random_model(arch, 0), calibration_images(arch, 2, 0))


def test_graph_round_trip_is_exact(tmp_path, int8_graph):
    arch, g = int8_graph
    path = save_graph(g, tmp_path / "model_int8.npz")
    h = load_graph(path)
    assert h.name == g.name and h.inputs == g.inputs and h.outputs == g.outputs
    assert h.tensors == g.tensors
    for a, b in zip(g.ops, h.ops, strict=True):
        assert (a.name, a.kind, a.inputs, a.output, a.role, a.block, a.attrs) == \
               (b.name, b.kind, b.inputs, b.output, b.role, b.block, b.attrs)
        assert a.params.keys() == b.params.keys()
        for k in a.params:
            assert a.params[k].dtype == b.params[k].dtype and np.array_equal(a.params[k], b.params[k]), k
    x = np.random.default_rng(1).integers(-128, 128, g.tensors[g.inputs[0]].shape, dtype=np.int8)
    assert np.array_equal(run_graph(g, x)[g.outputs[0]], run_graph(h, x)[h.outputs[0]])


def test_npz_with_a_pickled_object_runs_nothing(tmp_path, int8_graph):
    _, g = int8_graph
    good = save_graph(g, tmp_path / "good.npz")
    marker = tmp_path / "pwned"
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == "op0/weight.npy":  # replace one array by an object array (pickled inside the .npy)
                import io
                buf = io.BytesIO()
                np.save(buf, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
                data = buf.getvalue()
            zout.writestr(item, data)
    with pytest.raises(ModelImportError, match="bad.npz"):
        load_graph(bad)
    assert not marker.exists()


def test_truncated_and_foreign_files_are_named(tmp_path, int8_graph):
    _, g = int8_graph
    data = save_graph(g, tmp_path / "g.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelImportError, match=r"cut\.npz: .*corrupt or truncated"):
        load_graph(tmp_path / "cut.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ModelImportError, match=r"other\.npz: not a tinyml-graph/1 file"):
        load_graph(tmp_path / "other.npz")


def _search_folder(tmp_path, arch):
    d = tmp_path / "search"
    d.mkdir()
    arch.save(d / "arch.json")
    return d


def test_gen_refuses_an_old_pickled_search_folder(tmp_path, int8_graph, capsys):
    arch, _ = int8_graph
    d = _search_folder(tmp_path, arch)
    marker = tmp_path / "pwned"
    with open(d / "model_int8.pkl", "wb") as f:
        pickle.dump(_Payload(marker), f)
    with pytest.raises(ModelImportError, match=r"model_int8\.pkl: a pickle .* re-run the same `tinynas search"):
        generate(str(d), "qemu-m4", tmp_path / "proj")
    assert te_main(["gen", str(d), "--board", "qemu-m4", "--out", str(tmp_path / "proj")]) == 2
    err = capsys.readouterr().err
    assert "model_int8.pkl" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()


def test_gen_reads_the_safe_search_output(tmp_path, int8_graph):
    arch, g = int8_graph
    d = _search_folder(tmp_path, arch)
    save_graph(g, d / "model_int8.npz")
    proj = generate(str(d), "qemu-m4", tmp_path / "proj")
    assert (proj.root / "src" / "weights.c").is_file()


def test_crafted_checkpoint_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "checkpoints" / "supernet.pt"
    ckpt.parent.mkdir()
    torch.save({"model": _Payload(marker), "optimizer": {}, "scheduler": {}, "epoch": 1, "rng": {}}, ckpt)
    with pytest.raises(StateError, match=r"supernet\.pt: not a checkpoint this version can load safely"):
        load_checkpoint(ckpt)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x, y = torch.zeros((4, 1, 2, 2), dtype=torch.uint8), torch.zeros(4, dtype=torch.long)
    with pytest.raises(StateError):
        train(net, x, y, 2, 1, TrainConfig(epochs=1, batch_size=4), ckpt, progress=False)
    assert not marker.exists()


def test_own_checkpoint_loads_with_weights_only(tmp_path):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x, y = torch.zeros((4, 1, 2, 2), dtype=torch.uint8), torch.zeros(4, dtype=torch.long)
    ckpt = tmp_path / "c.pt"
    train(net, x, y, 2, 1, TrainConfig(epochs=1, batch_size=4), ckpt, progress=False)
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 1 and load_checkpoint(ckpt)["epoch"] == 1
