"""Patch-based inference (tinyengine.passes.patch): bit-exact outputs, region bookkeeping, planning, MACs."""
from __future__ import annotations

import numpy as np
import pytest

from search_spaces.space import SearchSpace
from search_spaces.zoo import load_model
from tinyengine.ir.graph import Graph, Op, Tensor, build_graph
from tinyengine.ir.opcost import op_macs
from tinyengine.numerics.reference import run_graph
from tinyengine.passes.patch import cut_points, input_window, patch_graph, tile_bounds
from tinyengine.pipeline import plan_memory
from tinyengine.planner import PlanOptions
from tinyml_errors import GraphError, PlanError


# ----------------------------------------------------------------------------- random int8 graphs
def random_quantize(graph: Graph, rng: np.random.Generator, x: np.ndarray | None = None) -> Graph:
    """Give a shape-only graph random but well-scaled int8 parameters, in place (tests only).

    Tensors get a scale in [0.02, 0.1] and a zero point in [-20, 20]; weighted ops int8 weights in
    the ``weight_shape`` layout, int32 bias, per-channel multipliers in [2^30, 2^31) and shifts in
    [-10, 0]; the fused clamp is a random ReLU-like sub-range or the full int8 range. The shifts are
    set op by op from the accumulator spread the sample input ``x`` produces (random if None), so
    that activations stay spread out instead of saturating or collapsing to a few values.
    """
    from tinyengine.numerics.reference import run_op

    for t in graph.tensors.values():
        t.scale = float(rng.uniform(0.02, 0.1))
        t.zero_point = int(rng.integers(-20, 21))
    vals = {graph.inputs[0]: random_input(graph, rng) if x is None else x}
    for op in graph.ops:
        src, out = graph.tensors[op.inputs[0]], graph.tensors[op.output]
        if op.kind in ("avg_pool2d", "global_avg_pool"):
            out.scale, out.zero_point = src.scale, src.zero_point
        if op.kind == "add":  # keep the sum in range: output scale >= the inputs'
            out.scale = max(graph.tensors[i].scale for i in op.inputs) * float(rng.uniform(1.0, 1.6))
        lo = int(rng.integers(-128, -60)) if op.attrs.get("activation") else -128
        op.attrs["act_min"], op.attrs["act_max"] = lo, 127
        ws = op.weight_shape
        if ws is not None:
            cout = ws[2] if op.kind == "depthwise_conv2d" else ws[0]
            fan_in = int(np.prod(ws)) // cout
            op.params["weight"] = rng.integers(-127, 128, size=ws).astype(np.int8)
            op.params["bias"] = rng.integers(-2000, 2000, size=cout).astype(np.int32)
            op.params["mult"] = rng.integers(1 << 30, (1 << 31) - 1, size=cout).astype(np.int32)
            x_std = max(float((vals[op.inputs[0]].astype(np.int64) - src.zero_point).std()), 1.0)
            acc_std = np.sqrt(fan_in) * 73 * x_std  # uniform int8 weights: std ~ 73
            base = -int(np.clip(np.round(np.log2(acc_std / 40)), 0, 10))  # aim at ~ +-40
            op.params["shift"] = np.clip(base + rng.integers(-1, 2, size=cout), -10, 0).astype(np.int32)
        vals[op.output] = run_op(graph, op, vals)
    return graph


def random_input(graph: Graph, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(-128, 128, size=graph.tensors[graph.inputs[0]].shape).astype(np.int8)


def _random_net(rng: np.random.Generator, space: SearchSpace) -> Graph:
    w = float(rng.choice([0.3, 0.4, 0.5]))
    r = int(rng.choice([32, 40, 48, 56, 64]))
    return build_graph(space.sample(rng, w, r))


def _hand_graph(h: int = 11, w: int = 9) -> Graph:
    """A non-square input through a stride-2 conv, an average pool with padding, a 5x5 depthwise
    and a residual add: what the search space alone does not produce."""
    def conv(name, x, y, kind, k, s, pad, ws):
        return Op(name, kind, (x,), y, {"kernel": (k, k), "stride": (s, s), "padding": pad,
                                        "activation": "relu6", "weight_shape": ws, "bias": True})
    t = {"x": Tensor("x", (h, w, 3)), "a": Tensor("a", (6, 5, 4)), "p": Tensor("p", (6, 5, 4)),
         "d": Tensor("d", (6, 5, 4)), "s": Tensor("s", (6, 5, 4)), "o": Tensor("o", (6, 5, 6)),
         "v": Tensor("v", (6,)), "y": Tensor("y", (3,))}
    ops = [conv("c0", "x", "a", "conv2d", 3, 2, (1, 1, 1, 1), (4, 3, 3, 3)),
           Op("pool", "avg_pool2d", ("a",), "p", {"kernel": (3, 3), "stride": (1, 1),
                                                   "padding": (1, 1, 1, 1), "activation": None}),
           conv("dw", "p", "d", "depthwise_conv2d", 5, 1, (2, 2, 2, 2), (5, 5, 4)),
           Op("add", "add", ("d", "p"), "s", {"activation": None}),
           conv("pw", "s", "o", "conv2d", 1, 1, (0, 0, 0, 0), (6, 1, 1, 4)),
           Op("gap", "global_avg_pool", ("o",), "v", {"kernel": (6, 5)}),
           Op("fc", "fully_connected", ("v",), "y", {"weight_shape": (3, 6), "bias": True,
                                                      "activation": None})]
    g = Graph("hand", t, ops, ["x"], ["y"])
    g.validate()
    return g


def _assert_same_bytes(g: Graph, pg, x: np.ndarray) -> None:
    ref = run_graph(g, x)
    got = run_graph(pg.graph, x)
    for name in [pg.output, *g.outputs, *(op.output for op in g.ops[pg.split + 1:])]:
        assert got[name].dtype == np.int8
        assert got[name].tobytes() == ref[name].tobytes(), (g.name, pg.n, pg.split_name, name)


# ----------------------------------------------------------------------------- bit-exactness
@pytest.mark.parametrize("seed", range(4))
def test_patched_outputs_are_bit_exact_on_random_nets(seed):
    rng = np.random.default_rng(seed)
    space = SearchSpace(num_classes=10)
    g = _random_net(rng, space)
    random_quantize(g, rng)
    x = random_input(g, rng)
    cuts = [s for s in cut_points(g) if g.tensors[g.ops[s].output].shape[0] >= 4]
    # an early, a middle and the deepest cut with a feature map of >= 4 pixels
    for s in sorted({cuts[1], cuts[len(cuts) // 2], cuts[-1]}):
        for n in (2, 3, 4):
            _assert_same_bytes(g, patch_graph(g, n, s), x)


def test_patched_outputs_are_bit_exact_on_hand_graph():
    rng = np.random.default_rng(7)
    g = random_quantize(_hand_graph(), rng)
    x = random_input(g, rng)
    for split in ("c0", "pool", "add", "pw"):
        for n in (2, 3, 5):
            _assert_same_bytes(g, patch_graph(g, n, split), x)


def test_default_split_is_bit_exact_and_within_budget():
    rng = np.random.default_rng(11)
    g = random_quantize(_random_net(rng, SearchSpace(num_classes=10)), rng)
    pg = patch_graph(g, 3)
    assert 0 <= pg.extra_macs_ratio <= 0.15
    _assert_same_bytes(g, pg, random_input(g, rng))


# ----------------------------------------------------------------------------- regions
def test_tiles_cover_the_output_exactly_once():
    g = build_graph(load_model("mcunet-vww1"))
    for n in (2, 3, 4, 7):
        pg = patch_graph(g, n, "b1.project")
        h, w = g.tensors[pg.output].shape[:2]
        cover = np.zeros((h, w), dtype=int)
        for y0, y1, x0, x1 in pg.tiles:
            cover[y0:y1, x0:x1] += 1
        assert (cover == 1).all()
        assert len(pg.tiles) == n * n
        writers = [op for op in pg.graph.ops if op.output == pg.output]
        assert [op.attrs["out_region"] for op in writers] == pg.tiles
        # every per-patch tensor lies inside its full tensor; windows lie inside what they read
        for need in pg.regions:
            for name, (y0, y1, x0, x1) in need.items():
                fh, fw = g.tensors[name].shape[:2]
                assert 0 <= y0 < y1 <= fh and 0 <= x0 < x1 <= fw
    assert tile_bounds(22, 4) == [0, 5, 11, 16, 22]


def test_hand_case_regions_padding_and_extra_macs():
    """8x8x1 -> 3x3 conv (pad 1) -> 8x8x2 -> 3x3 conv (pad 1) -> 8x8x3, 2x2 patches of 4x4.

    Each patch's first conv must produce a 5x5 region (its 4x4 tile plus a one-pixel halo towards
    the image centre): 4 * 25 = 100 pixels instead of 64, i.e. 36 extra pixels x 9 taps x 1 input
    channel x 2 output channels = 648 extra MACs; the second conv computes each pixel once."""
    conv = dict(kernel=(3, 3), stride=(1, 1), padding=(1, 1, 1, 1), activation=None, bias=True)
    g = Graph("two-convs", {"x": Tensor("x", (8, 8, 1)), "a": Tensor("a", (8, 8, 2)),
                            "b": Tensor("b", (8, 8, 3))},
              [Op("c1", "conv2d", ("x",), "a", dict(conv, weight_shape=(2, 3, 3, 1))),
               Op("c2", "conv2d", ("a",), "b", dict(conv, weight_shape=(3, 3, 3, 2)))], ["x"], ["b"])
    pg = patch_graph(g, 2, "c2")
    assert pg.original_macs == 64 * 9 * 2 + 64 * 9 * 2 * 3
    assert pg.extra_macs == 36 * 9 * 1 * 2 == 648
    ops = {op.name: op for op in pg.graph.ops}
    # top-left patch: reads image rows/cols 0..5, zero padding only on the image's top/left border
    c1 = ops["c1@p0_0"]
    assert c1.attrs["in_regions"] == ((0, 6, 0, 6),) and c1.attrs["padding"] == (1, 0, 1, 0)
    assert pg.graph.tensors[c1.output].shape == (5, 5, 2)
    assert ops["c2@p0_0"].attrs["padding"] == (1, 0, 1, 0)
    assert ops["c2@p0_0"].attrs["out_region"] == (0, 4, 0, 4)
    # bottom-right patch: image rows/cols 2..7, padding bottom/right only
    c1 = ops["c1@p1_1"]
    assert c1.attrs["in_regions"] == ((2, 8, 2, 8),) and c1.attrs["padding"] == (0, 1, 0, 1)
    assert ops["c2@p1_1"].attrs["out_region"] == (4, 8, 4, 8)
    assert input_window(g.ops[1], (4, 8, 0, 4), (8, 8, 2)) == ((3, 8, 0, 5), (0, 1, 1, 0))
    # MACs of the patched graph agree with op_macs summed by hand
    assert pg.macs == sum(op_macs(pg.graph, op) for op in pg.graph.ops) == pg.original_macs + 648


def test_residual_add_reads_a_window_of_the_block_input():
    g = build_graph(load_model("mcunet-vww1"))
    pg = patch_graph(g, 3, "b2.add")
    add = next(op for op in pg.graph.ops if op.name == "b2.add@p1_1")
    expand = next(op for op in pg.graph.ops if op.name == "b2.expand@p1_1")
    # the block input covers the depthwise halo; the add reads only its own tile out of it
    assert expand.inputs[0] == add.inputs[1]
    assert add.attrs["in_regions"][0] is None and add.attrs["in_regions"][1] is not None
    assert pg.graph.read_shape(add, 1) == pg.graph.write_shape(add)


def test_bad_splits_and_region_writers_are_rejected():
    g = build_graph(load_model("mcunet-vww1"))
    with pytest.raises(PlanError, match="cannot patch up to op .* 'b2.project'"):
        patch_graph(g, 2, "b2.project")  # the block input is still read by b2.add after it
    with pytest.raises(PlanError, match="no op named"):
        patch_graph(g, 2, "nope")
    with pytest.raises(PlanError, match="do not fit"):
        patch_graph(g, 25, "b1.project")
    pg = patch_graph(g, 2, "b1.project")
    writers = [op for op in pg.graph.ops if op.output == pg.output]
    writers[1].attrs["out_region"] = writers[0].attrs["out_region"]
    with pytest.raises(GraphError, match="overlaps"):
        pg.graph.validate()
    del writers[1].attrs["out_region"]
    with pytest.raises(GraphError, match="a second time"):
        pg.graph.validate()


# ----------------------------------------------------------------------------- planning
def _assert_no_overlap(plan) -> None:
    bufs = plan.buffers
    for i, a in enumerate(bufs):
        for b in bufs[i + 1:]:
            for a0, a1, sa in a.intervals:
                for b0, b1, sb in b.intervals:
                    if a0 <= b1 and b0 <= a1:  # alive at a common step
                        assert a.offset + sa <= b.offset or b.offset + sb <= a.offset, (a.name, b.name)
    assert plan.arena_bytes >= plan.lower_bound


@pytest.mark.parametrize("model,n,split", [("mcunet-vww1", 4, "b1.project"), ("mcunet-vww1", 3, "b3.add"),
                                          ("mcunet-in3", 2, "b1.project")])
def test_planner_invariants_on_patched_graphs(model, n, split):
    g = build_graph(load_model(model))
    pg = patch_graph(g, n, split)
    plan = plan_memory(pg.graph)
    _assert_no_overlap(plan)
    run = plan.graph  # the graph that runs (residual adds fused with their projections after the prefix)
    steps = [i for i, op in enumerate(run.ops) if op.output == pg.output]
    readers = [i for i, op in enumerate(run.ops) if pg.output in op.inputs]
    buf = next(b for b in plan.buffers if pg.output in b.tensors)
    assert buf.start == steps[0] and buf.end >= max(readers)        # born at the first tile
    # alive to its last reader; longer only when that reader writes over it (a fused projection + add)
    assert buf.end == max(readers) or plan.inplace.get(run.ops[max(readers)].output) == pg.output
    assert all(run.ops[i].output not in plan.inplace for i in steps)
    assert any(op.attrs.get("patch") and op.output in plan.inplace for op in run.ops
               if op.kind == "depthwise_conv2d")                       # in-place depthwise in patches
    inp = next(b for b in plan.buffers if g.inputs[0] in b.tensors)  # the whole image, to its last reader
    assert inp.size == g.tensors[g.inputs[0]].nbytes
    assert inp.end == max(i for i, op in enumerate(run.ops) if g.inputs[0] in op.inputs)
    # the options route plans the same patched graph
    via = plan_memory(g, PlanOptions(patches=n, patch_split=split))
    assert via.peak_sram == plan.peak_sram and len(via.graph.ops) == len(run.ops)


def test_patching_lowers_mcunet_peaks():
    g = build_graph(load_model("mcunet-in3"))
    assert plan_memory(g).peak_sram == 247_840                         # unchanged with patching off
    pg = patch_graph(g, 2)
    assert pg.extra_macs_ratio <= 0.15
    assert plan_memory(pg.graph).peak_sram < 247_840
    v = build_graph(load_model("mcunet-vww1"))
    base = plan_memory(v).peak_sram
    pv = patch_graph(v, 4)
    assert pv.split_name == "b1.project"
    assert base / plan_memory(pv.graph).peak_sram >= 2.5 and 0 < pv.extra_macs_ratio < 0.15


def test_cli_reports_patched_peak(tmp_path, capsys):
    from tinyml_cli.engine import main

    plot = tmp_path / "p.png"
    js = tmp_path / "a.json"
    assert main(["analyze", "mcunet-vww1", "--quiet", "--patches", "4", "--patch-split", "b1.project",
                 "--plot", str(plot), "--json", str(js)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "patched 4x4 up to b1.project" in out and "32,408 B" in out and "89,632 B" in out
    assert "extra MACs" in out and plot.stat().st_size > 0
    import json
    d = json.loads(js.read_text())
    assert d["totals"]["peak_sram"] == 89_632 and d["patched"]["totals"]["peak_sram"] == 32_408
    assert main(["analyze", "mcunet-vww1", "--quiet", "--patch-split", "b1.project"]) == 2


def test_patched_ptq_model_is_bit_exact():
    """The real pipeline (PyTorch model -> BN folding -> calibrated PTQ) patched: same bytes, both
    rounding modes."""
    import torch

    from search_spaces.torch_model import build_torch_model
    from tinyengine.frontend.quantize import quantize_model
    from tinyengine.numerics.reference import quantize_input

    rng = np.random.default_rng(5)
    arch = SearchSpace(num_classes=10).sample(rng, 0.4, 48)
    torch.manual_seed(5)
    model = build_torch_model(arch).eval()
    imgs = torch.rand(10, 3, 48, 48)
    g = quantize_model(arch, model, imgs[:8])
    pg = patch_graph(g, 3)
    for img in imgs[8:].numpy():
        x = quantize_input(g, img)
        for single in (False, True):
            ref, got = run_graph(g, x, single_rounding=single), run_graph(pg.graph, x, single_rounding=single)
            assert got[g.outputs[0]].tobytes() == ref[g.outputs[0]].tobytes()
            assert got[pg.output].tobytes() == ref[pg.output].tobytes()
