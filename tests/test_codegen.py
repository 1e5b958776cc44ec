"""Code generation: lowering decisions, the Winograd weight transform, and generated C that builds
with -Werror (host gcc, sanitisers, arm-none-eabi-gcc for M4/M7) and reproduces the NumPy reference
byte for byte, every intermediate tensor included; the whole model also under QEMU when the firmware
runtime exists.

The kernel library is compiled once per flavour per session; each model compiles only its own
model.c/weights.c and links against those objects.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from boards import load_board
from codegen.emit import c_array_body, c_float
from codegen.generate import calibration_images, generate
from codegen.lower import CArray, LoweringError, lower
from codegen.project import FIRMWARE, Project, write_project
from codegen.winograd import transform_weights, winograd_conv_reference
from search_spaces.arch import ArchConfig, BlockConfig, StageConfig
from search_spaces.space import SearchSpace
from search_spaces.zoo import load_model
from tinyengine.frontend.quantize import quantize_model
from tinyengine.frontend.weights import random_model
from tinyengine.ir.graph import build_graph
from tinyengine.kernels.choice import AlignmentError, kernel_choices
from tinyengine.numerics.reference import run_graph
from tinyengine.pipeline import plan_memory
from tinyengine.planner import Buffer, PlanOptions
from tinyml_cli import gen as gen_cli
from tinyml_errors import TinyMLError

WARN = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
FLAVOURS = {
    "host": ("gcc", ["-O2"]),
    "asan": ("gcc", ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                     "-fno-sanitize-recover=all"]),
    # the Cortex-M SIMD code path, run on the host through the kernels' bit-exact C models of SMLAD etc.
    "dsp": ("gcc", ["-O2", "-DTE_USE_DSP", "-DTE_DSP_EMULATE"]),
    "m4": ("arm-none-eabi-gcc", ["-O2", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard",
                                 "-DTE_USE_DSP"]),
    "m7": ("arm-none-eabi-gcc", ["-O2", "-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard",
                                 "-DTE_USE_DSP"]),
}
DEBIAN = {"gcc": "gcc", "make": "make", "arm-none-eabi-gcc": "gcc-arm-none-eabi",
          "arm-none-eabi-nm": "binutils-arm-none-eabi", "qemu-system-arm": "qemu-system-arm"}
HOST_FLAVOURS = ("host", "asan", "dsp")
BOARD = load_board("qemu-m4")


def need(tool: str) -> str:
    """The tool's path; the test FAILS (not skips) naming the Debian package when it is missing."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"'{tool}' not found on PATH: install the Debian package '{DEBIAN[tool]}'")
    return path


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"command failed ({r.returncode}): {' '.join(map(str, cmd))}\n{r.stdout}\n{r.stderr}"
    return r


# --------------------------------------------------------------------------- models
def random_arch(seed: int, in_channels: int, dw_kernel: int) -> ArchConfig:
    """A small random sub-network (W 0.3, R in 32..64, 10 classes) whose stride-2 blocks use ``dw_kernel``."""
    space = SearchSpace(num_classes=10, in_channels=in_channels)
    rng = np.random.default_rng(seed)
    g = space.sample_genes(rng, 1)
    k = g.kernel_idx[0].copy()
    for s, stride in enumerate(space.strides):
        if stride == 2:
            k[s, 0] = space.kernel_choices.index(dw_kernel)
    r = int(rng.integers(32, 65))
    return space.build(0.3, r, k, g.expand_idx[0], g.depth[0], name=f"rand{seed}")


RANDOM = {f"rand{s}-c{c}-k{k}": (s, c, k) for s, c, k in ((0, 3, 3), (1, 1, 5), (2, 3, 7))}


@dataclass
class Case:
    arch: ArchConfig
    graph: object
    plan: object
    project: Project


def make_case(arch: ArchConfig, out: Path, seed: int = 0, winograd: bool = False,
              options: PlanOptions | None = None) -> Case:
    model = random_model(arch, seed)
    graph = quantize_model(arch, model, calibration_images(arch, 8, seed))
    plan = plan_memory(graph, options)
    proj = write_project(out, arch, plan, BOARD, winograd=winograd, seed=seed)
    return Case(arch, graph, plan, proj)


@pytest.fixture(scope="session")
def cases(tmp_path_factory) -> dict[str, Case]:
    out = {}
    for name, (s, c, k) in RANDOM.items():
        out[name] = make_case(random_arch(s, c, k), tmp_path_factory.mktemp(name), seed=s)
    for name in ("mcunet-vww1", "mcunet-in0"):
        out[name] = make_case(load_model(name), tmp_path_factory.mktemp(name))
    return out


# --------------------------------------------------------------------------- C builds
@pytest.fixture(scope="session")
def kernel_objects(tmp_path_factory) -> dict[str, list[Path]]:
    """firmware/src/*.c compiled once per flavour (host, asan, m4, m7), all with -Werror."""
    for cc, _ in FLAVOURS.values():
        need(cc)
    sources = sorted((FIRMWARE / "src").glob("*.c"))
    assert sources, f"no kernel sources in {FIRMWARE / 'src'}"
    root = tmp_path_factory.mktemp("kernels")
    jobs = []
    objs: dict[str, list[Path]] = {}
    for fl, (cc, flags) in FLAVOURS.items():
        (root / fl).mkdir()
        for src in sources:
            o = root / fl / (src.stem + ".o")
            objs.setdefault(fl, []).append(o)
            jobs.append([cc, *WARN, *flags, f"-I{FIRMWARE / 'include'}", f"-I{FIRMWARE / 'src'}", "-c", src,
                         "-o", o])
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(run, jobs))
    return objs


def compile_model(proj: Project, flavour: str, kernel_objects) -> Path:
    """Compile the generated sources for ``flavour``; host flavours link a program, arm ones stop at -c."""
    cc, flags = FLAVOURS[flavour]
    src = proj.root / "src"
    out = proj.root / f"build-{flavour}"
    out.mkdir(exist_ok=True)
    files = [src / "model.c", src / "weights.c"]
    if flavour in HOST_FLAVOURS:
        files.append(proj.root / "host" / "host_main.c")
    jobs, objs = [], []
    for f in files:
        o = out / (f.stem + ".o")
        objs.append(o)
        jobs.append([cc, *WARN, *flags, "-DTE_DUMP_HOOK", f"-I{src}", "-c", f, "-o", o])
    with ThreadPoolExecutor(2) as ex:
        list(ex.map(run, jobs))
    if flavour not in HOST_FLAVOURS:
        return out
    exe = out / "model_host"
    run([cc, *flags, *objs, *kernel_objects[flavour], "-o", exe])
    return exe


@pytest.fixture(scope="session")
def host_programs(cases, kernel_objects) -> dict[tuple[str, str], Path]:
    progs = {}
    for name, case in cases.items():
        for fl in HOST_FLAVOURS:
            progs[name, fl] = compile_model(case.project, fl, kernel_objects)
    return progs


def run_host(exe: Path, x: np.ndarray, work: Path, dump: bool = False) -> tuple[np.ndarray, Path | None]:
    inp, outp = work / "in.bin", work / "out.bin"
    inp.write_bytes(x.astype(np.int8).tobytes())
    dump_dir = None
    cmd = [exe, inp, outp]
    if dump:
        dump_dir = work / "dump"
        shutil.rmtree(dump_dir, ignore_errors=True)
        dump_dir.mkdir()
        cmd.append(dump_dir)
    run(cmd, timeout=120)
    return np.frombuffer(outp.read_bytes(), np.int8), dump_dir


def inputs_for(case: Case, n: int = 3) -> list[np.ndarray]:
    """The project's reference input plus n-1 uniformly random int8 images."""
    shape = case.graph.tensors[case.graph.inputs[0]].shape
    rng = np.random.default_rng(1234)
    return [case.project.reference_input] + [rng.integers(-128, 128, shape, dtype=np.int8) for _ in range(n - 1)]


# --------------------------------------------------------------------------- Winograd transform
@pytest.mark.parametrize("h,w,cin,cout,pad", [(8, 8, 3, 5, (1, 1, 1, 1)), (7, 9, 4, 3, (1, 1, 1, 1)),
                                              (5, 6, 2, 2, (0, 0, 0, 0)), (1, 1, 3, 2, (1, 1, 1, 1)),
                                              (6, 5, 8, 4, (1, 0, 1, 0))])
def test_winograd_transform_matches_direct_convolution(h, w, cin, cout, pad):
    rng = np.random.default_rng(h * 100 + w)
    x = rng.integers(-128, 128, (h, w, cin), dtype=np.int8)
    g = rng.integers(-127, 128, (cout, 3, 3, cin), dtype=np.int8)
    zp = int(rng.integers(-128, 128))
    xp = np.pad(x.astype(np.int64) - zp, ((pad[0], pad[1]), (pad[2], pad[3]), (0, 0)))
    ho, wo = xp.shape[0] - 2, xp.shape[1] - 2
    direct = np.zeros((ho, wo, cout), np.int64)
    for ky in range(3):
        for kx in range(3):
            direct += xp[ky:ky + ho, kx:kx + wo] @ g[:, ky, kx, :].T.astype(np.int64)
    u = transform_weights(g)
    assert u.dtype == np.int32 and u.shape == (cout, 4, 4, cin)
    np.testing.assert_array_equal(winograd_conv_reference(x, zp, u, pad, (ho, wo)), direct)


def test_winograd_transform_is_four_times_textbook_and_extreme_weights_fit():
    g = np.full((2, 3, 3, 3), -127, np.int8)
    g[1] = 127
    u = transform_weights(g)
    G = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]])
    for o in range(2):
        for c in range(3):
            np.testing.assert_array_equal(u[o, :, :, c], 4 * G @ g[o, :, :, c].astype(float) @ G.T)
    assert np.abs(u).max() == 9 * 127
    with pytest.raises(TinyMLError, match="3x3"):
        transform_weights(np.zeros((2, 5, 5, 3), np.int8))


# --------------------------------------------------------------------------- lowering decisions
def test_vww1_kernel_choices_and_arena_equal_the_plan(cases):
    c = cases["mcunet-vww1"]
    low = c.project.lowering
    kinds = [o.kernel for o in low.ops]
    g = c.plan.graph  # the graph that runs: each residual add fused with its projection (passes.fuse_add)
    assert low.arena_bytes == c.plan.arena_bytes == c.plan.peak_sram
    m = re.search(r"#define TE_ARENA_BYTES (\d+)", (c.project.root / "src" / "model.h").read_text())
    assert m and int(m.group(1)) == c.plan.arena_bytes
    assert kinds[0] == "te_conv_stem_s8"  # the stem (3 input channels)
    for o, op in zip(low.ops, g.ops):
        if op.kind == "conv2d" and op.attrs["kernel"] == (1, 1):
            assert o.kernel == "te_conv_pointwise_s8"
        if op.kind == "conv2d_add":
            assert o.kernel == "te_conv_pointwise_add_s8" and o.inplace_of == op.inputs[1]
        if op.kind == "depthwise_conv2d":
            assert o.kernel == ("te_depthwise_inplace_s8" if op.output in c.plan.inplace else "te_depthwise_s8")
        if o.scratch_type in ("int16", "int32"):
            assert o.scratch_offset % 4 == 0 and o.scratch_nudge == 0  # the planner aligns
        if o.scratch_offset is not None:
            assert o.scratch_offset + o.scratch_bytes <= low.arena_bytes
    # the layout pass runs the late small-spatial depthwise out of place (the plan has slack there)
    assert kinds.count("te_depthwise_inplace_s8") == sum(op.kind == "depthwise_conv2d" and op.output in c.plan.inplace
                                                         for op in g.ops) > 0
    assert kinds.count("te_depthwise_s8") == sum(r["choice"] == "out of place" for r in c.plan.layout.values()) > 0
    assert kinds.count("te_conv_pointwise_add_s8") == sum(op.kind == "add" for op in c.graph.ops) == 8
    assert "te_add_s8" not in kinds and len(c.plan.fused) == 8
    assert kinds[-2:] == ["te_avg_pool_s8", "te_fully_connected_s8"]
    text = (c.project.root / "src" / "model.c").read_text()
    assert text.count("TE_LAYER_BEGIN(") == len(g.ops) and "b1.dw" in text and "in place over 'b1.expand'" in text


def test_kernel_choices_work_without_quantisation_and_follow_the_plan():
    arch = load_model("mcunet-in0")
    g = build_graph(arch)
    table = kernel_choices(plan_memory(g))
    assert {r["kernel"] for r in table} >= {"te_conv_stem_s8", "te_conv_pointwise_s8",
                                            "te_depthwise_inplace_s8", "te_conv_pointwise_add_s8",
                                            "te_avg_pool_s8", "te_fully_connected_s8"}
    assert "te_add_s8" in {r["kernel"] for r in kernel_choices(plan_memory(g, PlanOptions(fuse_add="off")))}
    off = kernel_choices(plan_memory(g, PlanOptions(inplace_depthwise=False, inplace_add=False)))
    dw = [r for r in off if r["kind"] == "depthwise_conv2d"]
    assert dw and all(r["kernel"] == "te_depthwise_s8" and r["scratch_offset"] is None for r in dw)
    with pytest.raises(LoweringError, match="not quantised"):
        lower(plan_memory(g))


def test_unaligned_plan_scratch_is_nudged_or_reported():
    """A plan made without alignment: codegen moves an int16 scratch by a few bytes when they are free
    at that step (the arena size unchanged), and otherwise names the planner change needed."""
    g = build_graph(load_model("mcunet-in0"))
    plan = plan_memory(g)
    i = next(k for k, op in enumerate(g.ops) if op.kind == "conv2d" and op.attrs["kernel"] == (1, 1))
    buf = next(b for b in plan.buffers if b.name == f"{g.ops[i].name}.scratch")
    base = -(-plan.arena_bytes // 4) * 4
    buf.offset, plan.arena_bytes = base + 1, base + buf.size + 4  # free bytes above it
    row = kernel_choices(plan)[i]
    assert (row["scratch_offset"], row["scratch_nudge"]) == (base + 4, 3)
    plan.arena_bytes = base + 1 + buf.size  # nothing free above; one byte below taken at that step
    plan.buffers.append(Buffer("blocker", [], [(i, i, 1)], kind="scratch", offset=base))
    with pytest.raises(AlignmentError, match="planner must align scratch"):
        kernel_choices(plan)


def test_patched_and_unsupported_graphs_are_rejected():
    arch = load_model("mcunet-in0")
    g = build_graph(arch)
    patched = plan_memory(g, PlanOptions(patches=2))
    with pytest.raises(LoweringError, match="patch-based"):
        kernel_choices(patched)
    with pytest.raises(LoweringError, match="include_input"):
        kernel_choices(plan_memory(g, PlanOptions(include_input=False)))
    g.ops[-1].kind = "concatenation"  # no C kernel (PAD has one since te_pad_s8)
    with pytest.raises(LoweringError, match="no C kernel"):
        kernel_choices(plan_memory(g))


def test_c_literals():
    assert c_float(1.0) == "1.0" and np.float32(float(c_float(0.1))) == np.float32(0.1)
    body = c_array_body(CArray("x", "int32_t", np.array([-(1 << 31), 5, -7], np.int64)))
    assert body == "(-2147483647-1),5,-7"
    body = c_array_body(CArray("x", "int8_t", np.arange(-3, 67, dtype=np.int8)))
    assert body.count("\n") == 2 and body.startswith("-3,-2,-1,0,")


# --------------------------------------------------------------------------- host builds, bit-exact
def test_random_nets_cover_the_space(cases):
    """The random nets include the expand-1 first block, residual adds, 1- and 3-channel inputs and
    stride-2 depthwise convs with k = 3, 5 and 7."""
    seen_k, cin = set(), set()
    for name in RANDOM:
        g = cases[name].graph
        assert g.ops[1].name == "b0.dw" and g.ops[2].name == "b0.project"  # no b0.expand
        assert any(op.kind == "add" for op in g.ops)
        cin.add(g.tensors["input"].shape[2])
        seen_k |= {op.attrs["kernel"][0] for op in g.ops
                   if op.kind == "depthwise_conv2d" and op.attrs["stride"] == (2, 2)}
    assert seen_k == {3, 5, 7} and cin == {1, 3}


@pytest.mark.parametrize("name", [*RANDOM, "mcunet-vww1", "mcunet-in0"])
def test_host_output_matches_reference(name, cases, host_programs, tmp_path):
    case = cases[name]
    for k, x in enumerate(inputs_for(case)):
        ref = run_graph(case.graph, x)
        want = ref[case.graph.outputs[0]].reshape(-1)
        for fl in HOST_FLAVOURS:
            got, dump = run_host(host_programs[name, fl], x, tmp_path, dump=(k == 0 and fl == "host"))
            np.testing.assert_array_equal(got, want, err_msg=f"{name} {fl} input {k}: output differs")
            if dump is None:
                continue
            files = sorted(dump.iterdir())
            runs = case.plan.graph  # the graph that runs: fused projection + add ops dump the add's output
            assert len(files) == len(runs.ops)
            for i, op in enumerate(runs.ops):
                f = dump / f"{i:03d}_{op.output}.bin"
                got_t = np.frombuffer(f.read_bytes(), np.int8)
                want_t = ref[op.output].reshape(-1)
                if not np.array_equal(got_t, want_t):
                    bad = np.flatnonzero(got_t != want_t)
                    pytest.fail(f"{name}: layer {i} '{op.name}' ({case.project.lowering.ops[i].kernel}) differs "
                                f"from the reference in {bad.size}/{want_t.size} bytes, first at {bad[0]}: "
                                f"C {got_t[bad[0]]} vs NumPy {want_t[bad[0]]}")
    assert np.array_equal(case.project.reference_output.reshape(-1),
                          run_graph(case.graph, case.project.reference_input)[case.graph.outputs[0]].reshape(-1))


@pytest.mark.parametrize("name", ["rand0-c3-k3", "mcunet-vww1"])
def test_cortex_m4_m7_compile_with_werror(name, cases, kernel_objects):
    need("arm-none-eabi-nm")
    case = cases[name]
    for fl in ("m4", "m7"):
        out = compile_model(case.project, fl, kernel_objects)
        sym = run(["arm-none-eabi-nm", "-S", out / "model.o"]).stdout
        m = re.search(r"^[0-9a-f]+ ([0-9a-f]+) [bB] te_arena$", sym, re.M)
        assert m, f"te_arena not in {out / 'model.o'}:\n{sym}"
        assert int(m.group(1), 16) == case.plan.arena_bytes  # the arena in the object == planner peak


HOOKS_H = """
void hook(int layer, int end);
#define TE_LAYER_BEGIN(i) hook((i), 0)
#define TE_LAYER_END(i) hook((i), 1)
"""
HOOKS_MAIN = r"""
#include <stdio.h>
#include "model.h"
static int seen = 0, bad = 0;
void hook(int layer, int end)
{
    if (layer != seen / 2 || end != seen % 2) bad = 1;
    seen++;
}
int main(void)
{
    static int8_t out[TE_OUTPUT_BYTES];
    static int8_t in[TE_INPUT_BYTES];
    unsigned long macs = 0;
    te_model_run(in, out);
    for (int i = 0; i < TE_NUM_LAYERS; i++) macs += te_layer_macs[i];
    printf("%d %d %lu %s\n", seen, bad, macs, te_layer_names[TE_NUM_LAYERS - 1]);
    return 0;
}
"""


def test_layer_hooks_from_a_hooks_header(cases, kernel_objects, tmp_path):
    """TE_HOOKS_HEADER lets firmware wrap every layer (profiling): begin/end in order, once per layer."""
    case = cases["rand2-c3-k7"]
    (tmp_path / "hooks.h").write_text(HOOKS_H)
    (tmp_path / "main.c").write_text(HOOKS_MAIN)
    src = case.project.root / "src"
    exe = tmp_path / "hooked"
    run(["gcc", *WARN, "-O1", f"-I{src}", f"-I{tmp_path}", '-DTE_HOOKS_HEADER="hooks.h"', tmp_path / "main.c",
         src / "model.c", src / "weights.c", *kernel_objects["host"], "-o", exe])
    seen, bad, macs, last = run([exe]).stdout.split()
    n = len(case.plan.graph.ops)  # the graph that runs (projection + add fused: one layer)
    assert (int(seen), int(bad), int(macs), last) == (2 * n, 0, case.project.lowering.macs, "classifier")


def test_generated_makefile_builds_and_checks(cases):
    need("make")
    need("gcc")
    root = cases["rand1-c1-k5"].project.root
    need("arm-none-eabi-gcc")
    r = run(["make", "-C", root, "-j2", "check", "check-asan", "arm"], timeout=300)
    assert "host output matches reference_output.bin" in r.stdout
    assert "host-asan output matches reference_output.bin" in r.stdout
    assert (root / "build" / "m4" / "model.o").is_file() and (root / "build" / "m7" / "weights.o").is_file()
    readme = (root / "README.txt").read_text()
    assert "te_model_invoke" in readme and str(cases["rand1-c1-k5"].plan.arena_bytes) in readme
    ini = (root / "platformio.ini").read_text()
    # an emulated board: one environment, the local dev-platform with the board's manifest and limits
    assert "platform = symlink://${sysenv.TINYENGINE_ARMBARE_PLATFORM}" in ini and "board = mps2_an386" in ini
    manifest = json.loads((root / "boards" / "mps2_an386.json").read_text())
    assert manifest["upload"]["maximum_ram_size"] == BOARD.sram_bytes
    assert manifest["debug"]["qemu_machine"] == BOARD.qemu_machine == "mps2-an386"
    assert f"LENGTH = {BOARD.sram_bytes}" in (root / "ld" / "qemu-m4.ld").read_text()
    assert (root / "src" / "app" / "board.h").is_file() and (root / "src" / "board" / "qemu" / "startup.c").is_file()
    assert (root / "src" / "tinyengine.h").is_file() and (root / "lowering.json").is_file()


def winograd_arch() -> ArchConfig:
    """A net whose stem is a 3x3 stride-1 regular conv (the only place the space has one)."""
    return ArchConfig(resolution=21, stem_channels=8, first_channels=8, stem_stride=1, num_classes=4,
                      in_channels=3, name="wino",
                      stages=(StageConfig(16, 2, (BlockConfig(3, 3), BlockConfig(5, 4))),
                              StageConfig(24, 2, (BlockConfig(7, 3), BlockConfig(3, 3)))))


def test_winograd_stem_end_to_end(tmp_path, kernel_objects):
    """--winograd: the stride-1 3x3 stem runs te_conv_winograd3x3_s8 on U weights; host, sanitiser and
    DSP builds agree with run_graph on every tensor; without the flag the same stem uses the stem kernel."""
    arch = winograd_arch()
    plain = kernel_choices(plan_memory(build_graph(arch)))
    assert plain[0]["kernel"] == "te_conv_stem_s8"
    case = make_case(arch, tmp_path / "proj", seed=4, winograd=True)
    stem = case.project.lowering.ops[0]
    assert stem.kernel == "te_conv_winograd3x3_s8" and stem.scratch_type == "int32"
    assert stem.arrays[0].values.shape == (8, 4, 4, 3) and stem.arrays[0].ctype == "int32_t"
    assert stem.scratch_bytes >= 16 * 3 * 2 and stem.scratch_offset % 4 == 0
    assert all(o.kernel != "te_conv_winograd3x3_s8" for o in case.project.lowering.ops[1:])
    for fl in HOST_FLAVOURS:
        exe = compile_model(case.project, fl, kernel_objects)
        for k, x in enumerate(inputs_for(case, 2)):
            ref = run_graph(case.graph, x)
            got, dump = run_host(exe, x, tmp_path, dump=True)
            np.testing.assert_array_equal(got, ref["logits"].reshape(-1), err_msg=f"{fl} input {k}")
            for i, op in enumerate(case.plan.graph.ops):
                got_t = np.frombuffer((dump / f"{i:03d}_{op.output}.bin").read_bytes(), np.int8)
                np.testing.assert_array_equal(got_t, ref[op.output].reshape(-1), err_msg=f"{fl} {op.name}")


# --------------------------------------------------------------------------- CLI
def _gen_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd")
    gen_cli.add_gen_parser(sub)
    return p.parse_args(["gen", *argv])


class _Console:
    def __init__(self):
        self.lines: list[str] = []

    def print(self, *a, **_):
        self.lines.append(" ".join(map(str, a)))


def test_cli_gen_random_and_state_dict_give_the_same_project(tmp_path):
    arch = random_arch(5, 3, 5)
    arch_path = tmp_path / "net.json"
    arch.save(arch_path)
    con = _Console()
    rc = gen_cli.cmd_gen(_gen_args([str(arch_path), "--board", "qemu-m7", "--out", str(tmp_path / "a"),
                                    "--seed", "3"]), con)
    assert rc == 0 and any("arena" in line for line in con.lines)
    sd_path = tmp_path / "w.pt"
    torch.save(random_model(arch, 3).state_dict(), sd_path)
    rc = gen_cli.cmd_gen(_gen_args([str(arch_path), "--board", "qemu-m7", "--out", str(tmp_path / "b"),
                                    "--seed", "3", "--weights", str(sd_path)]), _Console())
    assert rc == 0
    for f in ("src/weights.c", "src/model.c", "reference_output.bin"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    ini = (tmp_path / "a" / "platformio.ini").read_text()
    assert "board = mps2_an500" in ini


def test_cli_gen_rejects_mismatched_weights(tmp_path):
    sd = random_model(random_arch(6, 3, 3), 0).state_dict()
    torch.save(sd, tmp_path / "w.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(TinyMLError, match="does not match architecture 'mcunet-in0'.*(missing|wrong shape)"):
        generate("mcunet-in0", "qemu-m4", tmp_path / "o", weights=str(tmp_path / "w.pt"))
    with pytest.raises(TinyMLError, match="not a PyTorch state_dict"):
        generate("mcunet-in0", "qemu-m4", tmp_path / "o", weights=str(tmp_path / "junk.pt"))
    with pytest.raises(TinyMLError, match="no such file"):
        generate("mcunet-in0", "qemu-m4", tmp_path / "o", weights=str(tmp_path / "nope.pt"))
    with pytest.raises(TinyMLError, match="unknown board"):
        generate("mcunet-in0", "nope", tmp_path / "o")


def test_cli_gen_build_flag_builds_and_checks(tmp_path):
    con = _Console()
    arch = random_arch(7, 1, 3)
    arch.save(tmp_path / "n.json")
    rc = gen_cli.cmd_gen(_gen_args([str(tmp_path / "n.json"), "--board", "qemu-m4", "--out",
                                    str(tmp_path / "p"), "--build"]), con)
    assert rc == 0, "\n".join(con.lines)
    assert (tmp_path / "p" / "build" / "host" / "model_host").is_file()
    assert any("matches the NumPy reference" in line for line in con.lines)


# --------------------------------------------------------------------------- QEMU (Cortex-M4, DSP)
QEMU_MAIN = r"""
#include <stdint.h>

#include "model.h"
#include "timer.h"
#include "uart.h"

static const int8_t inputs[%(n)d][TE_INPUT_BYTES] = {
%(inputs)s
};

int main(void)
{
    static int8_t out[TE_OUTPUT_BYTES];
    int bad = te_model_check();
    if (bad) {
        uart_puts("SCRATCH ");
        uart_put_u32((uint32_t)bad);
        uart_puts("\n");
        return 3;
    }
    timer_init();
    for (int k = 0; k < %(n)d; k++) {
        uint64_t t0 = timer_ticks();
        int rc = te_model_run(inputs[k], out);
        uint64_t t1 = timer_ticks();
        uart_puts("OUT ");
        for (int i = 0; i < TE_OUTPUT_BYTES; i++) uart_put_hex8((uint8_t)out[i]);
        uart_puts(" RC ");
        uart_put_i32(rc);
        uart_puts(" TICKS ");
        uart_put_u64(t1 - t0);
        uart_puts("\n");
    }
    return 0;
}
"""


@pytest.mark.parametrize("name,machine,flavour", [("mcunet-vww1", "mps2-an386", "m4"),
                                                   ("wino", "mps2-an500", "m7")])
def test_whole_model_bit_exact_in_qemu(name, machine, flavour, cases, tmp_path):
    """A whole model linked with -DTE_USE_DSP against the project's own startup code and linker script
    (the board's 320 KB SRAM / 1 MB flash enforced) and run in QEMU: mcunet-vww1 (random weights) on
    the Cortex-M4 mps2-an386, the Winograd-stem net on the Cortex-M7 mps2-an500. Every output byte
    equals run_graph's, and the linker map's te_arena is the planner's arena."""
    rt = FIRMWARE / "qemu"
    for f in ("startup.c", "uart.c", "semihost.c", "timer.c", f"{machine}.ld"):
        assert (rt / f).is_file(), f"firmware QEMU runtime incomplete: {rt / f} missing"
    cc, qemu = need("arm-none-eabi-gcc"), need("qemu-system-arm")
    case = cases[name] if name in cases else make_case(winograd_arch(), tmp_path / "proj", seed=4, winograd=True)
    xs = inputs_for(case, 2)
    rows = ",\n".join("{" + ",".join(map(str, x.reshape(-1).tolist())) + "}" for x in xs)
    main_c = tmp_path / "main.c"
    main_c.write_text(QEMU_MAIN % {"n": len(xs), "inputs": rows})
    src = case.project.root / "src"
    _, flags = FLAVOURS[flavour]
    elf, mapf = tmp_path / "fw.elf", tmp_path / "fw.map"
    c_files = [main_c, src / "model.c", src / "weights.c", *(case.project.root / k for k in case.project.kernel_sources),
               *(rt / f for f in ("startup.c", "uart.c", "semihost.c", "timer.c"))]
    run([cc, *WARN, *flags, "-ffunction-sections", "-fdata-sections", f"-I{src}", f"-I{rt}", *c_files,
         "-nostartfiles", f"-L{rt}", "-T", rt / f"{machine}.ld", "-Wl,--gc-sections", f"-Wl,-Map={mapf}",
         "-o", elf])
    m = re.search(r"\.bss\.te_arena\s+0x[0-9a-f]+\s+0x([0-9a-f]+)", mapf.read_text())
    assert m and int(m.group(1), 16) == case.plan.arena_bytes, "te_arena in the link map != planner arena"
    r = subprocess.run([qemu, "-M", machine, "-nographic", "-semihosting-config", "enable=on,target=native",
                        "-icount", "shift=0", "-kernel", elf], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"QEMU exit {r.returncode}:\n{r.stdout}\n{r.stderr}"
    outs = re.findall(r"OUT ([0-9a-f]*) RC (-?\d+) TICKS (\d+)", r.stdout)
    assert len(outs) == len(xs), r.stdout
    for x, (hexs, rc, ticks) in zip(xs, outs):
        want = run_graph(case.graph, x)[case.graph.outputs[0]].reshape(-1)
        got = np.frombuffer(bytes.fromhex(hexs), np.int8)
        assert rc == "0" and int(ticks) > 0
        np.testing.assert_array_equal(got, want, err_msg=f"{name} on QEMU {machine} differs from run_graph")
    print(f"{name} on {machine}: {int(outs[0][2]) * 40} instructions per inference (icount shift=0)")


def test_cli_gen_calibration_data_sources(tmp_path):
    arch = random_arch(8, 1, 3)
    arch.save(tmp_path / "n.json")
    proj = generate(str(tmp_path / "n.json"), "qemu-m4", tmp_path / "fm", calib=8, calib_data="fashion-mnist",
                    datasets=gen_cli.DATASETS)
    assert "calibrated on 8 fashion-mnist images" in (tmp_path / "fm" / "README.txt").read_text()
    assert proj.lowering.arena_bytes > 0
    generate(str(tmp_path / "n.json"), "qemu-m4", tmp_path / "rnd", calib=8)
    x = calibration_images(arch, 8, 0, "fashion-mnist", gen_cli.DATASETS)
    np.save(tmp_path / "x.npy", x)
    generate(str(tmp_path / "n.json"), "qemu-m4", tmp_path / "npy", calib=8, calib_data=str(tmp_path / "x.npy"))
    assert (tmp_path / "npy" / "src" / "weights.c").read_bytes() == (tmp_path / "fm" / "src" / "weights.c").read_bytes()
    assert (tmp_path / "rnd" / "src" / "weights.c").read_bytes() != (tmp_path / "fm" / "src" / "weights.c").read_bytes()
    np.save(tmp_path / "bad.npy", x[:, :, :4, :4])
    with pytest.raises(TinyMLError, match=r"bad.npy: shape \(8, 1, 4, 4\), the model takes \(N, 1, "):
        generate(str(tmp_path / "n.json"), "qemu-m4", tmp_path / "b", calib_data=str(tmp_path / "bad.npy"))
    with pytest.raises(TinyMLError, match="--calib-data imagenet: give 'random', 'fashion-mnist'"):
        generate(str(tmp_path / "n.json"), "qemu-m4", tmp_path / "b", calib_data="imagenet", datasets=gen_cli.DATASETS)
