"""Every .tflite fixture through `tinyengine gen --board qemu-m4`: the host build and the firmware built
with PlatformIO and run in QEMU (Cortex-M4, probed over the serial protocol) give the same output bytes
as the tflite-micro interpreter on 4 inputs."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from codegen.generate import build_host, generate
from tinyengine.export.tflm import tflm_invoke

FIX = Path(__file__).parent / "fixtures" / "tflite"
FIXTURES = sorted(p.stem for p in FIX.glob("*.tflite"))
N_INPUTS = 4


def _inputs(graph, n: int = N_INPUTS) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    shape = graph.tensors[graph.inputs[0]].shape
    return [rng.integers(-128, 128, shape, dtype=np.int8) for _ in range(n)]


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    root = tmp_path_factory.mktemp("tflite_gen")
    return {name: generate(str(FIX / f"{name}.tflite"), "qemu-m4", root / name) for name in FIXTURES}


@pytest.mark.parametrize("name", FIXTURES)
def test_host_build_matches_tflm(name, projects, tmp_path):
    proj = projects[name]
    r = build_host(proj.root, "host")
    assert r.returncode == 0, r.stdout + r.stderr
    data = (FIX / f"{name}.tflite").read_bytes()
    for k, x in enumerate(_inputs(proj.lowering.graph)):
        fin, fout = tmp_path / f"in{k}.bin", tmp_path / f"out{k}.bin"
        fin.write_bytes(x.tobytes())
        p = subprocess.run([str(proj.host_binary), str(fin), str(fout)], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        got = np.frombuffer(fout.read_bytes(), np.int8)
        assert np.array_equal(got, tflm_invoke(data, x).reshape(-1)), f"{name}: input {k}"


@pytest.mark.parametrize("name", FIXTURES)
def test_qemu_m4_firmware_matches_tflm(name, projects):
    from tinyengine.deploy.protocol import ProbeClient
    from tinyengine.deploy.qemu import qemu_serial
    from tinyengine.deploy.session import build_project, read_project
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.fail(f"'{tool}' not found: run scripts/setup.sh as root (Debian packages "
                        "gcc-arm-none-eabi, qemu-system-arm)")
    root, meta, board = read_project(projects[name].root)
    res = build_project(root, meta, board)
    data = (FIX / f"{name}.tflite").read_bytes()
    with qemu_serial(res.elf, board.qemu_machine, icount_shift=0) as q, ProbeClient.open(q.url, timeout=60) as c:
        for k, x in enumerate(_inputs(projects[name].lowering.graph)):
            out, ticks = c.infer(x.tobytes())
            assert ticks > 0
            assert np.array_equal(np.frombuffer(out, np.int8), tflm_invoke(data, x).reshape(-1)), f"{name}: input {k}"


def test_our_exported_model_with_pad_round_trips_through_import(tmp_path):
    """mcunet-in0 exported by `tinyengine export` (PAD before the stride-2 convs on even sizes), imported
    back: the PAD ops lower to te_pad_s8 and the host build equals TFLM and our original graph."""
    import torch

    from codegen.generate import calibration_images
    from search_spaces.zoo import load_model
    from tinyengine.export import export_tflite
    from tinyengine.frontend.quantize import quantize_model
    from tinyengine.frontend.weights import random_model
    from tinyengine.numerics.reference import run_graph
    torch.set_num_threads(1)
    arch = load_model("mcunet-in0")
    g = quantize_model(arch, random_model(arch, 0), calibration_images(arch, 4, 0))
    path = tmp_path / "in0.tflite"
    path.write_bytes(export_tflite(g))
    proj = generate(str(path), "qemu-m4", tmp_path / "proj")
    assert [o.kernel for o in proj.lowering.ops].count("te_pad_s8") == 4
    assert build_host(proj.root, "host").returncode == 0
    for k, x in enumerate(_inputs(proj.lowering.graph)):
        fin, fout = tmp_path / f"in{k}.bin", tmp_path / f"out{k}.bin"
        fin.write_bytes(x.tobytes())
        subprocess.run([str(proj.host_binary), str(fin), str(fout)], check=True, capture_output=True)
        got = np.frombuffer(fout.read_bytes(), np.int8)
        assert np.array_equal(got, tflm_invoke(path.read_bytes(), x).reshape(-1))
        assert np.array_equal(got, run_graph(g, x)[g.outputs[0]].reshape(-1))
