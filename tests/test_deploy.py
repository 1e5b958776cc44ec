"""Deployment end to end: `tinyengine gen` -> `tinyengine build` (PlatformIO offline, local dev-platform)
-> `tinyengine emulate` (QEMU, -icount shift=0) / `tinyengine probe` (the serial protocol), with the
output bytes checked against the NumPy reference; a model too large for its board fails at build
naming the overflow."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from boards import load_board
from codegen.generate import generate
from tinyengine.deploy import pio
from tinyengine.deploy.protocol import ProbeClient
from tinyengine.deploy.qemu import qemu_serial
from tinyengine.deploy.session import build_project, read_project


@pytest.fixture(scope="module", autouse=True)
def _private_core(private_pio_core):
    """Every test here builds in a fresh PlatformIO core (conftest)."""




@pytest.fixture(scope="module")
def vww1(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vww1") / "proj"
    generate("mcunet-vww1", "qemu-m4", root, seed=1)
    return root


def test_seeded_core_has_scons_owned_by_platformio_and_toolchain_stubs():
    dirs = pio.seed_core()
    piopm = json.loads((dirs["core"] / "packages" / "tool-scons" / ".piopm").read_text())
    assert piopm["spec"]["owner"] == "platformio" and piopm["version"] == pio.SCONS_PIO_VERSION
    gcc = dirs["toolchain"] / "bin" / "arm-none-eabi-gcc"
    assert gcc.is_symlink() and os.path.realpath(gcc).startswith("/usr")
    again = pio.seed_core()  # idempotent
    assert again == dirs


def test_build_reports_elf_use_and_the_planned_arena(vww1, tinyengine_cli):
    rc, out, err = tinyengine_cli(["build", str(vww1)])
    assert rc == 0, out + err
    _, meta, board = read_project(vww1)
    res = build_project(vww1, meta, board)  # no-op rebuild: the same ELF
    assert res.arena_bytes == meta["arena_bytes"] == 89_632
    assert meta["weight_bytes"] < res.flash_bytes < board.flash_bytes
    assert meta["arena_bytes"] < res.ram_bytes <= board.sram_bytes
    assert f"{res.flash_bytes:,} B" in out and "= the planner's peak SRAM" in out


def test_emulate_probes_latency_layers_and_reference_output(vww1, tmp_path, tinyengine_cli):
    js = tmp_path / "probe.json"
    rc, out, err = tinyengine_cli(["emulate", str(vww1), "--runs", "3", "--layers", "--json", str(js)])
    assert rc == 0, out + err
    rec = json.loads(js.read_text())
    _, meta, _ = read_project(vww1)
    assert rec["checks"] == {"model_hash": True, "arena_bytes": True, "output_equals_reference": True}
    assert rec["emulated"] and rec["unit"] == "instructions" and rec["icount_shift"] == 0
    # icount: deterministic up to where the count falls against a 40-instruction SysTick tick
    assert len(rec["runs"]) == 3 and max(rec["runs"]) - min(rec["runs"]) <= 1
    per_run = rec["latency"]["median"]
    assert 2.0 * meta["macs"] < per_run < 8.0 * meta["macs"]  # 2-8 instructions per MAC
    assert [la["name"] for la in rec["layers"]] == [la["name"] for la in meta["layers"]]
    assert [la["kernel"] for la in rec["layers"]] == [la["kernel"] for la in meta["layers"]]
    layer_sum = sum(la["ticks"] for la in rec["layers"])
    assert 0.97 * rec["profile_total_ticks"] <= layer_sum <= rec["profile_total_ticks"]
    assert "output equals reference: yes" in out and "per layer" in out
    # the shipped latency model (fitted on other networks) predicts this measurement layer by layer
    from tinyengine.latency import default_model
    pred = default_model(load_board("qemu-m4")).predict_layers(meta["layers"])
    rel = [abs(p - la["instructions"]) / la["instructions"] for p, la in zip(pred, rec["layers"])]
    assert sum(r <= 0.10 for r in rel) >= 0.9 * len(rel), sorted(rel)[-5:]
    assert abs(sum(pred) / sum(la["instructions"] for la in rec["layers"]) - 1) < 0.05


def test_probe_rejects_a_project_the_board_does_not_run(vww1, tmp_path, tinyengine_cli):
    _, meta, board = read_project(vww1)
    res = build_project(vww1, meta, board)
    other = tmp_path / "other"
    generate("mcunet-vww1", "qemu-m4", other, seed=2)  # same network, other weights: other hash
    with qemu_serial(res.elf, board.qemu_machine) as q:
        rc, out, err = tinyengine_cli(["probe", "--port", q.url, "--project", str(other), "--runs", "1"])
        assert rc == 2 and "model hash" in err and "flash the project first" in err
        rc, out, err = tinyengine_cli(["probe", "--port", q.url, "--runs", "2"])  # no project: no checks
        assert rc == 0 and "mcunet-vww1" in out
        with ProbeClient.open(q.url) as c:  # the firmware is still answering
            assert c.ping(b"ok") >= 0


def test_probe_unreachable_port_is_one_clear_error(tinyengine_cli):
    rc, out, err = tinyengine_cli(["probe", "--port", "socket://127.0.0.1:9", "--runs", "1", "--timeout", "1"])
    assert rc == 1 and "socket://127.0.0.1:9" in out


def test_model_too_large_fails_at_build_naming_the_overflow(tmp_path, tinyengine_cli):
    root = tmp_path / "big"
    generate("mbv2-w0.35", "stm32f412", root)  # arena 290,304 B > 256 KB
    rc, out, err = tinyengine_cli(["build", str(root)])
    assert rc == 1
    m = re.search(r"does not fit stm32f412's 256 KB SRAM: region RAM overflowed by ([\d,]+) B", out)
    assert m, out
    _, meta, _ = read_project(root)
    assert int(m.group(1).replace(",", "")) > meta["arena_bytes"] - 256 * 1024  # + stack and runtime
    ini = (root / "platformio.ini").read_text()
    assert "platform = ststm32" in ini and "board = nucleo_f412zg" in ini  # the real board's env is there too


def test_build_errors_name_the_folder(tmp_path, tinyengine_cli):
    rc, out, err = tinyengine_cli(["build", str(tmp_path / "nope")])
    assert rc == 2 and "no such project folder" in err
    rc, out, err = tinyengine_cli(["build", str(tmp_path)])
    assert rc == 2 and "not a generated project" in err


def test_streamed_vww1_is_bit_exact_in_qemu_cortex_m7(tmp_path, tinyengine_cli):
    """Fused streaming (gen --stream) on the Cortex-M7 stand-in (mps2-an500): the whole firmware built
    offline with PlatformIO, run in QEMU and probed: the output equals the reference (the unfused
    model's bytes: tests/test_stream*.py tie the two) and the linker map's arena equals the streamed plan."""
    root = tmp_path / "proj"
    rc, out, err = tinyengine_cli(["gen", "mcunet-vww1", "--board", "qemu-m7", "--stream", "--out", str(root)])
    assert rc == 0, out + err
    _, meta, _ = read_project(root)
    assert meta["arena_bytes"] == 21_888  # 89,632 B layer by layer
    assert any(la["kernel"] == "te_stream_segment" for la in meta["layers"])
    js = tmp_path / "probe.json"
    rc, out, err = tinyengine_cli(["emulate", str(root), "--runs", "1", "--json", str(js)])
    assert rc == 0, out + err
    rec = json.loads(js.read_text())
    assert rec["checks"] == {"model_hash": True, "arena_bytes": True, "output_equals_reference": True}
    assert rec["firmware"]["machine"] == "mps2-an500"
