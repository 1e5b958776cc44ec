"""Generated C for fused streaming segments (codegen/stream_lower.py, firmware/src/te_stream.c): compiles
with -Wall -Wextra -Werror for the host and Cortex-M4/M7, and its outputs on the host (plain and under
ASan/UBSan) are byte-equal to the NumPy reference of the *unfused* graph; the arena is the plan's."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_codegen import FLAVOURS, WARN, make_case, need, random_arch

from tinyengine.numerics.reference import run_graph
from tinyengine.planner import PlanOptions

HOST = {"host": ["-O2"], "asan": FLAVOURS["asan"][1],
        # the Cortex-M SIMD path of te_depthwise_row_s8 on the host (C models of SXTB16/SMLABB), under ASan
        "dsp-asan": [*FLAVOURS["asan"][1], "-DTE_USE_DSP", "-DTE_DSP_EMULATE"]}


@pytest.fixture(scope="module")
def streamed(tmp_path_factory):
    arch = random_arch(2, 3, 7)  # 7x7 stride-2 depthwise kernels
    return make_case(arch, tmp_path_factory.mktemp("stream"), seed=2, options=PlanOptions(stream=True))


def _run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_streamed_plan_has_segments_and_arena_equals_plan(streamed):
    low = streamed.project.lowering
    segs = [o for o in low.ops if o.kind == "stream_segment"]
    assert segs and all(o.kernel == "te_stream_segment" for o in segs)
    assert low.arena_bytes == streamed.plan.arena_bytes
    assert low.arena_bytes < plan_unfused(streamed)
    assert low.macs == sum(o.macs for o in low.ops)
    text = (streamed.project.root / "src" / "model.c").read_text()
    assert "te_depthwise_row_s8" in text and "te_conv_pointwise_s8" in text


def plan_unfused(case) -> int:
    from tinyengine.pipeline import plan_memory
    return plan_memory(case.graph).arena_bytes


@pytest.mark.parametrize("flavour", ["host", "asan", "dsp-asan"])
def test_streamed_c_is_bit_exact_with_the_unfused_reference(streamed, flavour, tmp_path):
    cc = need("gcc")
    root = streamed.project.root
    src = root / "src"
    exe = tmp_path / "model"
    _run([cc, *WARN, *HOST[flavour], f"-I{src}", *sorted(src.glob("te_*.c")), src / "model.c", src / "weights.c",
          root / "host" / "host_main.c", "-o", exe])
    g = streamed.graph  # the unfused quantised graph
    rng = np.random.default_rng(7)
    shape = g.tensors[g.inputs[0]].shape
    for x in (streamed.project.reference_input, rng.integers(-128, 128, shape, dtype=np.int8)):
        (tmp_path / "in.bin").write_bytes(np.asarray(x, np.int8).tobytes())
        _run([exe, tmp_path / "in.bin", tmp_path / "out.bin"], timeout=120)
        got = (tmp_path / "out.bin").read_bytes()
        assert got == np.asarray(run_graph(g, x)[g.outputs[0]], np.int8).tobytes()


@pytest.mark.parametrize("flavour", ["m4", "m7"])
def test_streamed_c_compiles_for_cortex_m(streamed, flavour, tmp_path):
    cc, flags = FLAVOURS[flavour]
    need(cc)
    src = streamed.project.root / "src"
    for f in [src / "model.c", src / "te_stream.c"]:
        _run([cc, *WARN, *flags, f"-I{src}", "-c", f, "-o", tmp_path / (Path(f).stem + ".o")])


# --------------------------------------------------------------------------- edge geometries
def _edge_graph(h: int, w: int):
    from test_stream import _graph
    # stem 3x3/s2, a 7x7 residual block, a 5x5/s2 block, a 3x3 residual block; odd, non-square sizes
    # expanded channels 18, 22, 27: not multiples of 4 (the row kernel's four-channel blocks leave a rest)
    return _graph(h, w, 3, [(18, 8, 7, 1, True), (22, 12, 5, 2, False), (27, 12, 3, 1, True)],
                  stem=(8, 3, 2))


@pytest.mark.parametrize("h,w,split,flavour", [(13, 7, False, "asan"), (13, 7, True, "dsp-asan"),
                                               (9, 3, True, "asan"), (22, 17, False, "dsp-asan")])
def test_streamed_c_edge_geometries_under_asan(h, w, split, flavour, tmp_path):
    from test_patch import random_input, random_quantize

    from boards import load_board
    from codegen.project import write_project
    from tinyengine.passes.stream import fuse, units
    from tinyengine.planner import plan_graph

    g = _edge_graph(h, w)
    rng = np.random.default_rng(h * 31 + w)
    random_quantize(g, rng)
    us = units(g)
    spans = [(us[0][0], us[1][1]), (us[2][0], us[-1][1])] if split else [(0, len(g.ops) - 1)]
    fused = fuse(g, spans)
    plan = plan_graph(fused, PlanOptions())
    proj = write_project(tmp_path / "p", None, plan, load_board("qemu-m4"))
    assert proj.lowering.arena_bytes == plan.arena_bytes
    src = proj.root / "src"
    exe = tmp_path / "model"
    _run([need("gcc"), *WARN, *HOST[flavour], f"-I{src}", *sorted(src.glob("te_*.c")), src / "model.c",
          src / "weights.c", proj.root / "host" / "host_main.c", "-o", exe])
    for x in (random_input(g, rng), random_input(g, rng)):
        (tmp_path / "in.bin").write_bytes(x.tobytes())
        _run([exe, tmp_path / "in.bin", tmp_path / "out.bin"], timeout=120)
        assert (tmp_path / "out.bin").read_bytes() == run_graph(g, x)[g.outputs[0]].tobytes()


def test_streamed_model_is_bit_exact_in_qemu_cortex_m4(streamed, tmp_path):
    """The streamed project built for Cortex-M4 (DSP path) and run in QEMU mps2-an386 (the method of
    benchmarks/model_instructions.py, which checks the output against the reference of the graph it
    runs, here the fused one: the other tests tie that one to the unfused graph)."""
    need("arm-none-eabi-gcc")
    need("qemu-system-arm")
    from benchmarks.model_instructions import measure

    r = measure("streamed", streamed.project, tmp_path, True)
    assert r["instructions"] > 0 and r["macs"] == streamed.project.lowering.macs
    g = streamed.graph
    want = run_graph(g, streamed.project.reference_input)[g.outputs[0]].tobytes()
    assert streamed.project.reference_output.tobytes() == want
