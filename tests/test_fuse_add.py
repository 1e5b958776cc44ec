"""Residual-add fusion (tinyengine/passes/fuse_add.py, te_conv_pointwise_add_s8): which pairs fuse, the
plan never grows, the reference of the fused graph equals the unfused one, streaming and patches are
left alone, and a generated model with fused blocks built on the host (portable and emulated-DSP
paths) reproduces the unfused reference byte for byte, every layer's output included."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from boards import load_board
from codegen.generate import calibration_images
from codegen.project import write_project
from search_spaces.space import SearchSpace
from search_spaces.zoo import load_model
from tinyengine.frontend.quantize import quantize_model
from tinyengine.frontend.weights import random_model
from tinyengine.ir.graph import INPLACE_ATTR, Graph, Op, Tensor, build_graph
from tinyengine.kernels.choice import kernel_choices
from tinyengine.numerics.reference import run_graph
from tinyengine.passes.fuse_add import FUSED_KIND, candidates
from tinyengine.pipeline import plan_memory
from tinyengine.planner import PlanOptions
from tinyml_errors import UsageError

OFF = PlanOptions(fuse_add="off")


def small_residual_arch(seed: int, width: float = 0.5, res: int | None = None):
    """A random sub-network of the search space with every stage at its deepest (residual blocks)."""
    space = SearchSpace(num_classes=10, in_channels=3)
    rng = np.random.default_rng(seed)
    g = space.sample_genes(rng, 1)
    depth = np.array([max(space.stage_depth_choices(s)) for s in range(len(g.depth[0]))])
    return space.build(width, res or int(rng.integers(40, 81)), g.kernel_idx[0], g.expand_idx[0], depth,
                       name=f"res{seed}")


def _fused(plan) -> list[Op]:
    return [op for op in plan.graph.ops if op.kind == FUSED_KIND]


@pytest.mark.parametrize("arch", [load_model("mcunet-vww1"), load_model("mcunet-in3"), small_residual_arch(1),
                                  small_residual_arch(2, 0.3, 32), small_residual_arch(3, 0.35, 48)],
                         ids=lambda a: a.name)
def test_projection_and_add_fuse_and_the_plan_never_grows(arch):
    g = build_graph(arch)
    pairs = candidates(g)
    adds = [op for op in g.ops if op.kind == "add"]
    assert len(pairs) == len(adds) > 0  # every residual add follows its block's projection
    off, on = plan_memory(g, OFF), plan_memory(g)
    assert on.arena_bytes <= off.arena_bytes
    assert not _fused(off) and len(off.graph.ops) == len(g.ops)
    fused = _fused(on)
    assert len(on.graph.ops) == len(g.ops) - len(fused)
    on.graph.validate()
    for op in fused:
        f = op.attrs["fused_add"]
        assert op.attrs["covers"] == [f["project"], f["add"]] and op.name == f["project"]
        assert all(f["mid"] not in b.tensors for b in on.buffers)  # the projection's output is gone
        assert on.fused[op.name]["fused"] == [f["project"], f["add"]]
    if arch.name in ("mcunet-vww1", "mcunet-in3"):
        assert len(fused) == len(adds)
        # each fused op writes over the residual, which dies there
        assert all(op.attrs.get(INPLACE_ATTR) == op.inputs[1] for op in fused)


def test_fusion_is_refused_where_the_arena_would_grow():
    """Tiny tensors: the fused kernel's 1 KB table would make the block the peak, so nothing fuses."""
    t = {n: Tensor(n, s) for n, s in (("x", (2, 2, 8)), ("e", (2, 2, 16)), ("p", (2, 2, 8)), ("y", (2, 2, 8)))}
    pw = {"kernel": (1, 1), "stride": (1, 1), "padding": (0, 0, 0, 0), "activation": None, "bias": True}
    ops = [Op("expand", "conv2d", ("x",), "e", dict(pw, weight_shape=(16, 1, 1, 8)), "expand", 0),
           Op("project", "conv2d", ("e",), "p", dict(pw, weight_shape=(8, 1, 1, 16)), "project", 0),
           Op("add", "add", ("p", "x"), "y", {"activation": None}, "add", 0)]
    g = Graph("tiny", t, ops, ["x"], ["y"])
    assert candidates(g) == [(1, 2)]
    on, off = plan_memory(g), plan_memory(g, OFF)
    assert not _fused(on) and on.fused == {} and on.arena_bytes == off.arena_bytes


def test_pairs_that_must_not_fuse():
    """A projection read by another op too, a strided conv, and an add of two non-adjacent ops stay."""
    pw = {"kernel": (1, 1), "stride": (1, 1), "padding": (0, 0, 0, 0), "activation": None, "bias": True}
    t = {n: Tensor(n, (4, 4, 8)) for n in ("x", "p", "y", "z")}
    two_readers = Graph("g", t, [Op("p", "conv2d", ("x",), "p", dict(pw, weight_shape=(8, 1, 1, 8))),
                                 Op("y", "add", ("p", "x"), "y"), Op("z", "add", ("p", "y"), "z")], ["x"], ["z"])
    assert candidates(two_readers) == []
    strided = Graph("g", t, [Op("p", "conv2d", ("x",), "p", dict(pw, kernel=(3, 3), padding=(1, 1, 1, 1),
                                                                  weight_shape=(8, 3, 3, 8))),
                             Op("y", "add", ("p", "x"), "y")], ["x"], ["y"])
    assert candidates(strided) == []
    with pytest.raises(UsageError, match="--fuse-add"):
        plan_memory(two_readers, PlanOptions(fuse_add="maybe"))


def test_streamed_segments_are_left_unfused():
    """With streaming the segments' members stay as they are; blocks outside them still fuse."""
    g = build_graph(load_model("mcunet-vww1"))
    plan = plan_memory(g, PlanOptions(stream=True))
    segs = [op for op in plan.graph.ops if op.kind == "stream_segment"]
    assert segs, "vww1 streams its first blocks"
    members = {m.name for s in segs for m in s.attrs["stream"].members}
    assert all(m.kind != FUSED_KIND for s in segs for m in s.attrs["stream"].members)
    assert _fused(plan) and not {op.name for op in _fused(plan)} & members
    assert plan.arena_bytes <= plan_memory(g, PlanOptions(stream=True, fuse_add="off")).arena_bytes


@pytest.fixture(scope="module")
def quantised():
    arch = small_residual_arch(4, 0.5, 48)
    graph = quantize_model(arch, random_model(arch, 4), calibration_images(arch, 8, 4))
    return arch, graph


def test_reference_of_the_fused_graph_equals_the_unfused(quantised):
    _, graph = quantised
    plan = plan_memory(graph)
    assert _fused(plan)
    rng = np.random.default_rng(0)
    for _ in range(2):
        x = rng.integers(-128, 128, graph.tensors[graph.inputs[0]].shape, dtype=np.int8)
        ref, got = run_graph(graph, x), run_graph(plan.graph, x)
        for op in plan.graph.ops:
            assert np.array_equal(got[op.output], ref[op.output]), op.name


def test_kernel_choice_shows_the_fusion(quantised):
    _, graph = quantised
    plan = plan_memory(graph)
    rows = kernel_choices(plan)
    fused = [r for r in rows if r["kernel"] == "te_conv_pointwise_add_s8"]
    assert fused and len(fused) == len(_fused(plan))
    for r in fused:
        assert "fused with the residual add" in r["reason"] and r["scratch_type"] == "int16"
        assert len(r["inputs"]) == 2 and r["args"]["n_pixels"] * r["args"]["out_c"] == np.prod(r["out_shape"])


def _host_build(root: Path, cflags: str) -> Path:
    if shutil.which("make") is None or shutil.which("gcc") is None:
        pytest.fail("make and gcc are needed: install the Debian packages 'make' and 'gcc'")
    r = subprocess.run(["make", "-B", "-C", str(root), "host", f"CFLAGS={cflags}"], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return root / "build" / "host" / "model_host"


def test_generated_model_with_fused_blocks_is_bit_exact_on_host(quantised, tmp_path):
    """Portable and emulated-DSP builds of a generated model whose residual blocks run fused: output and
    every layer's tensor equal the unfused graph's reference; lowering.json records the fused kernels."""
    arch, graph = quantised
    plan = plan_memory(graph)
    n_fused = len(_fused(plan))
    assert n_fused >= 2
    proj = write_project(tmp_path / "p", arch, plan, load_board("qemu-m4"), seed=4)
    low = json.loads((proj.root / "lowering.json").read_text())
    kernels = [la["kernel"] for la in low["layers"]]
    assert kernels.count("te_conv_pointwise_add_s8") == n_fused and "te_add_s8" not in kernels
    assert low["arena_bytes"] == plan.arena_bytes <= plan_memory(graph, OFF).arena_bytes
    rng = np.random.default_rng(1)
    xs = [proj.reference_input, rng.integers(-128, 128, proj.reference_input.shape, dtype=np.int8)]
    for cflags in ("-O2", "-O2 -DTE_USE_DSP -DTE_DSP_EMULATE"):
        exe = _host_build(proj.root, cflags)
        for k, x in enumerate(xs):
            (tmp_path / "in.bin").write_bytes(x.tobytes())
            dump = tmp_path / f"dump{k}"
            shutil.rmtree(dump, ignore_errors=True)
            dump.mkdir()
            r = subprocess.run([exe, tmp_path / "in.bin", tmp_path / "out.bin", dump], capture_output=True,
                               text=True, timeout=120)
            assert r.returncode == 0, r.stderr
            ref = run_graph(graph, x)  # the unfused graph
            got = np.frombuffer((tmp_path / "out.bin").read_bytes(), np.int8)
            assert np.array_equal(got, ref[graph.outputs[0]].reshape(-1)), f"{cflags}: output differs"
            for i, op in enumerate(plan.graph.ops):
                t = np.frombuffer((dump / f"{i:03d}_{op.output}.bin").read_bytes(), np.int8)
                assert np.array_equal(t, ref[op.output].reshape(-1)), f"{cflags}: layer {i} '{op.name}' differs"


def test_projection_with_int16_weights_keeps_its_kernel():
    """The fused kernel reads int8 weights: a projection given int16 weights (gen --pw-weights) is not fused,
    so the flash figure and the kernel that runs agree."""
    g = build_graph(load_model("mcunet-vww1"))
    pairs = candidates(g)
    assert pairs
    proj = g.ops[pairs[0][0]]
    proj.attrs["pw_weights"] = "int16"
    assert (pairs[0] not in candidates(g)) and len(candidates(g)) == len(pairs) - 1
    plan = plan_memory(g)
    assert proj.name in [op.name for op in plan.graph.ops if op.kind == "conv2d"]
    assert all(proj.name not in op.attrs.get("covers", ()) for op in plan.graph.ops if op.kind == FUSED_KIND)
