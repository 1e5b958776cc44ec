"""Fused streaming execution (tinyengine.ir.stream, tinyengine.numerics.stream_ref,
tinyengine.passes.stream): row by row in rings of the planned size gives the same bytes as layer by
layer, with the same MACs, and lowers the planned peak."""
from __future__ import annotations

import numpy as np
import pytest
from test_patch import random_input, random_quantize

from tinyengine.ir.graph import Graph, _Builder
from tinyengine.ir.opcost import op_macs
from tinyengine.ir.stream import build_schedule
from tinyengine.numerics.reference import run_graph
from tinyengine.passes.stream import candidate_spans, choose_segments, fuse
from tinyengine.planner import PlanOptions, plan_graph
from tinyml_errors import PlanError


def _block(b: _Builder, x: str, name: str, mid: int, out: int, k: int, s: int, residual: bool,
           expand: bool = True) -> str:
    inp = x
    if expand:
        x = b.conv(f"{name}.expand", x, mid, 1, 1, role="expand", block=0)
    x = b.conv(f"{name}.dw", x, 0, k, s, depthwise=True, role="depthwise", block=0)
    x = b.conv(f"{name}.project", x, out, 1, 1, act=None, role="project", block=0)
    if residual:
        from tinyengine.ir.graph import Op
        y = b.tensor(f"{name}.add", b.g.tensors[x].shape)
        b.g.ops.append(Op(f"{name}.add", "add", (x, inp), y, {"activation": None}, "add", 0))
        x = y
    return x


def _graph(h: int, w: int, c: int, blocks, stem: tuple[int, int, int] | None = None) -> Graph:
    b = _Builder("stream-test")
    x = b.tensor("input", (h, w, c))
    b.g.inputs.append(x)
    if stem:
        x = b.conv("stem", x, stem[0], stem[1], stem[2], role="stem", block=None)
    for i, blk in enumerate(blocks):
        x = _block(b, x, f"b{i}", *blk)
        for op in b.g.ops:
            if op.name.startswith(f"b{i}."):
                op.block = i
    b.g.outputs.append(x)
    b.g.validate()
    return b.g


def _check_same_bytes(g: Graph, spans, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    random_quantize(g, rng)
    x = random_input(g, rng)
    ref = run_graph(g, x)
    fused = fuse(g, spans)
    got = run_graph(fused, x)
    for name in g.outputs:
        assert got[name].tobytes() == ref[name].tobytes(), name
    assert sum(op_macs(fused, op) for op in fused.ops) == sum(op_macs(g, op) for op in g.ops)
    return fused


@pytest.mark.parametrize("k,s,residual", [(3, 1, True), (5, 1, True), (7, 1, True), (3, 2, False),
                                          (5, 2, False), (7, 2, False), (3, 1, False)])
def test_single_block_streams_bit_exact(k, s, residual):
    g = _graph(13, 11, 8, [(24, 8 if residual else 12, k, s, residual)])
    fused = _check_same_bytes(g, [(0, len(g.ops) - 1)], seed=k * 10 + s)
    seg = fused.ops[0]
    sch = seg.attrs["stream"]
    assert seg.kind == "stream_segment"
    assert sch.rings["b0.expand"] == k  # a k x k depthwise needs k rows of its input, stride 1 or 2
    assert sch.rings["b0.dw"] == 1
    if residual:  # the output row y lands on input row y, which nothing reads any more
        assert sch.inplace_of == "input"


def test_chain_stem_and_blocks_streams_bit_exact_and_saves_memory():
    g = _graph(64, 48, 3, [(16, 8, 3, 1, False, False), (24, 12, 7, 2, False), (36, 12, 5, 1, True)],
               stem=(16, 3, 2))
    fused = _check_same_bytes(g, [(0, len(g.ops) - 1)], seed=3)
    sch = fused.ops[0].attrs["stream"]
    assert sch.inplace_of == "input"  # the prefix's output lands on image rows already consumed
    before = plan_graph(g, PlanOptions()).arena_bytes
    after = plan_graph(fused, PlanOptions()).arena_bytes
    assert after < before


def test_undersized_ring_is_caught():
    g = _graph(9, 7, 4, [(8, 4, 3, 1, True)])
    rng = np.random.default_rng(1)
    random_quantize(g, rng)
    fused = fuse(g, [(0, len(g.ops) - 1)])
    fused.ops[0].attrs["stream"].rings["b0.expand"] = 2
    with pytest.raises(AssertionError, match="too small"):
        run_graph(fused, random_input(g, rng))


def test_schedule_rows_each_once():
    g = _graph(10, 6, 4, [(8, 6, 5, 2, False)])
    sch = build_schedule(g, g.ops)
    for i, m in enumerate(g.ops):
        assert sch.events.count(i) == g.tensors[m.output].shape[0]


def test_bad_segments_are_rejected():
    g = _graph(12, 12, 3, [(8, 4, 3, 1, False)], stem=(8, 3, 2))
    g.outputs.append("stem")  # an intermediate read outside the segment
    with pytest.raises(PlanError, match="cannot stream"):
        fuse(g, [(0, len(g.ops) - 1)])
    with pytest.raises(PlanError, match="overlap"):
        fuse(g, [(0, 2), (1, 3)])


def test_choose_segments_lowers_the_peak_and_stays_exact():
    g = _graph(32, 32, 3, [(16, 8, 3, 1, False, False), (32, 16, 5, 2, False), (48, 16, 3, 1, True)],
               stem=(16, 3, 2))
    rng = np.random.default_rng(5)
    random_quantize(g, rng)
    assert candidate_spans(g)
    res = choose_segments(g, PlanOptions())
    assert res.arena_after < res.arena_before and res.segments
    assert all(s.saved_bytes > 0 for s in res.segments)
    assert all(s.overhead_insn > 0 and "instructions" in s.explain() for s in res.segments)
    x = random_input(g, rng)
    assert run_graph(res.graph, x)[g.outputs[0]].tobytes() == run_graph(g, x)[g.outputs[0]].tobytes()


def test_plan_memory_stream_option_and_analyze_cli(tmp_path, capsys):
    import json

    from search_spaces.zoo import load_model
    from tinyengine.ir.graph import build_graph
    from tinyengine.pipeline import plan_memory
    from tinyml_cli.engine import main

    g = build_graph(load_model("mcunet-vww1"))
    off = plan_memory(g, PlanOptions())
    on = plan_memory(g, PlanOptions(stream=True))
    assert on.arena_bytes <= 61_000 < off.arena_bytes
    assert sum(op_macs(on.graph, op) for op in on.graph.ops) == sum(op_macs(g, op) for op in g.ops)
    assert any(op.kind == "stream_segment" for op in on.graph.ops)
    out = tmp_path / "a.json"
    assert main(["analyze", "mcunet-vww1", "--stream", "--quiet", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "streamed" in text and "extra MACs +0" in text
    d = json.loads(out.read_text())["streamed"]
    assert d["totals"]["peak_sram"] == on.arena_bytes and d["stream"]["arena_unfused"] == off.arena_bytes
    assert all(s["saved_bytes"] > 0 and s["rings"] for s in d["stream"]["segments"])


def test_cost_model_with_streaming_is_lower_and_conservative():
    from search_spaces.space import SearchSpace
    from tinyengine.cost import batch_costs
    from tinyengine.ir.graph import build_graph
    from tinyengine.pipeline import plan_memory

    space = SearchSpace(num_classes=10)
    rng = np.random.default_rng(4)
    genes = space.sample_genes(rng, 3)
    off = batch_costs(space, 0.4, 96, genes)
    on = batch_costs(space, 0.4, 96, genes, stream=True)
    assert (on.peak_sram <= off.peak_sram).all() and (on.peak_sram < off.peak_sram).any()
    assert (on.macs == off.macs).all() and (on.flash_bytes == off.flash_bytes).all()
    for i in range(2):  # gen --stream plans the whole graph: at most the per-block estimate here
        arch = space.build(0.4, 96, genes.kernel_idx[i], genes.expand_idx[i], genes.depth[i])
        assert plan_memory(build_graph(arch), PlanOptions(stream=True)).arena_bytes <= on.peak_sram[i]


def test_tinynas_space_stream_flag(tmp_path, capsys):
    import json

    from tinyml_cli.nas import main

    args = ["space", "--sram", "64KB", "--flash", "1MB", "--samples", "50", "--widths", "0.3,0.5",
            "--resolutions", "96,128"]
    assert main(args + ["--json", str(tmp_path / "off.json")]) in (0, 3)
    assert main(args + ["--stream", "--json", str(tmp_path / "on.json")]) == 0
    assert "fused streaming" in capsys.readouterr().out
    off = {(s["width_mult"], s["resolution"]): s for s in json.loads((tmp_path / "off.json").read_text())["spaces"]}
    on = json.loads((tmp_path / "on.json").read_text())["spaces"]
    assert all(s["fit"] >= off[s["width_mult"], s["resolution"]]["fit"] for s in on)
    assert sum(s["fit"] for s in on) > sum(s["fit"] for s in off.values())


def test_imported_tflite_model_streams_with_the_same_bytes(tmp_path):
    import json
    from pathlib import Path

    from tinyengine.frontend.model_source import load_model_file
    from tinyengine.pipeline import plan_memory
    from tinyml_cli.engine import main

    path = Path(__file__).parent / "fixtures" / "tflite" / "mobilenet_v2_small.tflite"
    g, _ = load_model_file(str(path))
    on = plan_memory(g, PlanOptions(stream=True))
    assert on.arena_bytes < plan_memory(g).arena_bytes
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, g.tensors[g.inputs[0]].shape, dtype=np.int8)
    assert run_graph(on.graph, x)[g.outputs[0]].tobytes() == run_graph(g, x)[g.outputs[0]].tobytes()
    out = tmp_path / "a.json"
    assert main(["analyze", str(path), "--stream", "--quiet", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["streamed"]["totals"]["peak_sram"] == on.arena_bytes
