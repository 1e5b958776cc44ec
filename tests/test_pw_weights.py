"""int16 pointwise weights in flash (``tinyengine gen --pw-weights``): the per-layer choice and its flash
accounting (tinyengine/kernels/pw_weights.py, ir/opcost.py), the weight layout (codegen/pw_weights.py)
and whole generated models with te_conv_pointwise_w16_s8 equal to the reference on the host (portable,
ASan/UBSan, emulated DSP) and on the emulated Cortex-M4 (the assembly loop)."""
from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from kernel_harness import run_model_qemu_m4

from boards import load_board
from codegen.generate import calibration_images
from codegen.project import write_project
from codegen.pw_weights import pw16_weights
from search_spaces.arch import ArchConfig, BlockConfig, StageConfig
from search_spaces.zoo import load_model
from tinyengine.cost import graph_costs
from tinyengine.frontend.quantize import quantize_model
from tinyengine.frontend.weights import random_model
from tinyengine.ir.graph import build_graph
from tinyengine.ir.opcost import op_flash
from tinyengine.kernels.choice import kernel_choices
from tinyengine.kernels.pw_weights import CODE_RESERVE_BYTES, choose_pw_weights, eligible, extra_flash
from tinyengine.numerics.reference import run_graph
from tinyengine.pipeline import plan_memory
from tinyengine.planner import PlanOptions
from tinyml_errors import UsageError

W16 = "te_conv_pointwise_w16_s8"


def _words_by_hand(w: np.ndarray) -> np.ndarray:
    """The layout of tinyengine.h written out one word at a time."""
    rows = w.reshape(w.shape[0], -1).astype(np.int64)
    co, ci = rows.shape
    out = []
    for o in range(0, co, 2):
        for g in range(ci // 4):
            for r in ((rows[o], rows[o + 1]) if o + 1 < co else (rows[o],)):
                for k in (4 * g, 4 * g + 1):
                    out.append((int(r[k]) & 0xFFFF) | ((int(r[k + 2]) & 0xFFFF) << 16))
    return np.asarray(out, np.uint32).view(np.int32)


@pytest.mark.parametrize("co,ci", [(7, 20), (6, 4), (1, 8), (33, 48)])
def test_layout_matches_the_header(co, ci):
    w = np.random.default_rng(co * ci).integers(-128, 128, size=(co, 1, 1, ci)).astype(np.int8)
    np.testing.assert_array_equal(pw16_weights(w), _words_by_hand(w))
    with pytest.raises(ValueError, match="multiple of 4"):
        pw16_weights(w[:, :, :, :-1] if ci > 4 else np.zeros((2, 1, 1, 6), np.int8))


def test_choice_modes_and_flash_accounting():
    g = build_graph(load_model("mcunet-vww1"))
    base = graph_costs(g, plan_memory(g)).flash_bytes
    cands = [op for op in g.ops if eligible(g, op)]
    assert cands and all(op.weight_shape[3] % 4 == 0 and op.weight_shape[3] not in (8, 16) for op in cands)
    assert any(op.kind == "conv2d" and op.weight_shape[3] in (8, 16) for op in g.ops)  # left to the int8 path

    rec = choose_pw_weights(g, "int8", 1 << 20)
    assert rec["int16_layers"] == [] and rec["extra_flash_bytes"] == 0

    rec = choose_pw_weights(g, "int16", 4 << 20)
    assert rec["int16_layers"] == [op.name for op in cands]
    extra = sum(extra_flash(op) for op in cands)
    assert rec["extra_flash_bytes"] == extra
    assert sum(op_flash(op) for op in g.ops) == base + extra
    assert graph_costs(g, plan_memory(g)).flash_bytes == base + extra
    chosen = {c["name"]: c for c in kernel_choices(plan_memory(g))}
    assert {n for n, c in chosen.items() if c["kernel"] == W16} == set(rec["int16_layers"])

    # auto: the flash left after the int8 model and the code reserve, largest saving per byte first
    room = 5000
    rec = choose_pw_weights(g, "auto", base + CODE_RESERVE_BYTES + room)
    assert 0 < rec["extra_flash_bytes"] <= room and rec["flash_budget_bytes"] == room
    picked = [op for op in g.ops if op.name in rec["int16_layers"]]
    left_out = [op for op in cands if op.name not in rec["int16_layers"]]
    px = lambda op: g.tensors[op.output].shape[0] * g.tensors[op.output].shape[1]  # noqa: E731
    assert all(px(a) >= px(b) or extra_flash(b) > room - rec["extra_flash_bytes"] for a in picked for b in left_out)
    assert sum(op_flash(op) for op in g.ops) == base + rec["extra_flash_bytes"]
    assert choose_pw_weights(g, "auto", base)["int16_layers"] == []  # no room
    assert sum(op_flash(op) for op in g.ops) == base  # the attribute is cleared again


def test_bad_choices_are_refused_by_name():
    g = build_graph(load_model("mcunet-vww1"))
    with pytest.raises(UsageError, match="--pw-weights: must be one of int8, int16, auto, got 'int32'"):
        choose_pw_weights(g, "int32", 1 << 20)
    with pytest.raises(UsageError, match="no DSP extension"):
        choose_pw_weights(g, "int16", 1 << 22, "m3-board", dsp=False)
    assert choose_pw_weights(g, "auto", 1 << 22, dsp=False)["int16_layers"] == []
    with pytest.raises(UsageError, match=r"--pw-weights int16: int16 weights add [\d,]+ B .* over tiny's 300,000 B"):
        choose_pw_weights(g, "int16", 300_000, "tiny")


def _net() -> ArchConfig:
    """A small net with pointwise layers of in_c 8, 16 (int8 path), 24, 40, 48, 96 (int16) and odd
    pixel counts (7x7, 5x5 ... down to 1x1)."""
    return ArchConfig(resolution=27, stem_channels=8, first_channels=8, num_classes=5, in_channels=3, name="pw16",
                      stages=(StageConfig(16, 2, (BlockConfig(3, 3), BlockConfig(3, 3))),
                              StageConfig(24, 2, (BlockConfig(5, 6), BlockConfig(3, 3))),
                              StageConfig(40, 2, (BlockConfig(3, 4),)),
                              StageConfig(48, 1, (BlockConfig(3, 3),))))


def _run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r




def test_int16_model_matches_reference_on_host_and_qemu_m4(tmp_path):
    for tool in ("make", "gcc", "arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.fail(f"'{tool}' not found on PATH")
    arch = _net()
    graph = quantize_model(arch, random_model(arch, 3), calibration_images(arch, 8, 3))
    # residual-add fusion off: the residual blocks' projections (in_c 48) stay 1x1 convs, int16 candidates
    plan = plan_memory(graph, PlanOptions(fuse_add="off"))
    board = load_board("qemu-m4")
    int8_bytes = write_project(tmp_path / "p8", arch, plan, board, seed=3).lowering.weight_bytes
    proj = write_project(tmp_path / "p16", arch, plan, board, seed=3, pw_weights="int16")
    low = proj.lowering
    w16 = [o for o in low.ops if o.kernel == W16]
    ins = {o.args["in_c"] for o in w16}
    assert {24, 40, 48} <= ins and not ins & {8, 16}, ins
    assert any(o.args["n_pixels"] % 2 for o in w16) and any(o.args["out_c"] % 2 == 0 for o in w16)
    rec = json.loads((proj.root / "lowering.json").read_text())["pw_weights"]
    assert rec["mode"] == "int16" and rec["int16_layers"] == [o.name for o in w16]
    assert low.weight_bytes == int8_bytes + rec["extra_flash_bytes"] > int8_bytes
    assert "int16 weights pre-widened in flash" in w16[0].reason

    # host: portable, ASan/UBSan, and the DSP path through the C models of SMLAD (the generated check
    # compares the output on reference_input.bin with the reference's)
    root = proj.root
    _run(["make", "-C", root, "-j2", "check", "check-asan"], timeout=300)
    _run(["make", "-C", root, "clean"])
    _run(["make", "-C", root, "-j2", "check", "CFLAGS=-O2 -DTE_USE_DSP -DTE_DSP_EMULATE"], timeout=300)

    # emulated Cortex-M4: the assembly loop, weights read in place from flash
    x = proj.reference_input
    want = run_graph(graph, x)[graph.outputs[0]].reshape(-1)
    np.testing.assert_array_equal(run_model_qemu_m4(proj, x, tmp_path), want)


def test_cli_gen_records_the_choice(tmp_path):
    from tinyml_cli.engine import main as engine_main
    out = tmp_path / "proj"
    assert engine_main(["gen", "mcunet-vww1", "--board", "qemu-m4", "--out", str(out), "--pw-weights", "auto"]) == 0
    rec = json.loads((out / "lowering.json").read_text())
    pw = rec["pw_weights"]
    assert pw["mode"] == "auto" and pw["int16_layers"] and pw["code_reserve_bytes"] == CODE_RESERVE_BYTES
    assert rec["weight_bytes"] == pw["int8_constants_bytes"] + pw["extra_flash_bytes"]
    assert pw["int8_constants_bytes"] + pw["extra_flash_bytes"] + CODE_RESERVE_BYTES <= 1 << 20
    layers = {la["name"]: la for la in rec["layers"]}
    assert all(layers[n]["kernel"] == W16 for n in pw["int16_layers"])


def test_cli_analyze_shows_the_flash_of_the_choice(tmp_path):
    from tinyml_cli.engine import main as engine_main
    out8, out16 = tmp_path / "a8.json", tmp_path / "a16.json"
    assert engine_main(["analyze", "mcunet-vww1", "--quiet", "--json", str(out8)]) == 0
    assert engine_main(["analyze", "mcunet-vww1", "--quiet", "--json", str(out16), "--pw-weights", "int16"]) == 0
    a8, a16 = json.loads(out8.read_text()), json.loads(out16.read_text())
    pw = a16["pw_weights"]
    assert "pw_weights" not in a8 and pw["mode"] == "int16" and len(pw["int16_layers"]) == pw["eligible_layers"] > 0
    assert a16["totals"]["flash_bytes"] == a8["totals"]["flash_bytes"] + pw["extra_flash_bytes"]
    f8 = {la["name"]: la["flash"] for la in a8["layers"]}
    for la in a16["layers"]:
        wide = la["name"] in pw["int16_layers"]
        assert la["flash"] > f8[la["name"]] if wide else la["flash"] == f8[la["name"]]
        assert (la["c_kernel"]["kernel"] == W16) == wide
    assert engine_main(["analyze", "mcunet-vww1", "--quiet", "--pw-weights", "auto"]) != 0  # needs --board


def test_quantised_layers_off_the_fast_path_keep_int8():
    """A shift outside [-23, -2] or a clamp inside int8 would send the int16 kernel to its plain loop."""
    g = build_graph(load_model("mcunet-vww1"))
    op = next(op for op in g.ops if eligible(g, op))
    co = op.weight_shape[0]
    for shift, act in (([-5] * co, (-128, 127)), ([-5] * (co - 1) + [-1], (-128, 127)),
                       ([-24] + [-5] * (co - 1), (-128, 127)), ([-5] * co, (-128, 100))):
        op.params["shift"] = np.array(shift, np.int32)
        op.attrs["act_min"], op.attrs["act_max"] = act
        want = shift == [-5] * co and act == (-128, 127)
        assert eligible(g, op) == want, (shift[:1], shift[-1:], act)
        assert (op.name in choose_pw_weights(g, "int16", 4 << 20)["int16_layers"]) == want
