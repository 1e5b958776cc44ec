"""The planner on a hand-made block, offsets asserted exactly (worked out by hand in the comments), and
its parts on their own: the in-place pass, lifetimes, first-fit packing. The invariant tests on the zoo
are in test_planner.py."""
from __future__ import annotations

from tinyengine.ir.graph import INPLACE_ATTR, Graph, Op, Tensor
from tinyengine.passes.inplace import annotate_inplace, decide_inplace
from tinyengine.pipeline import plan_memory
from tinyengine.planner import Buffer, PlanOptions, plan_graph
from tinyengine.planner.lifetimes import last_use
from tinyengine.planner.packing import first_fit


def block() -> Graph:
    """x (4x4x2, 32 B) -> expand 1x1 -> a (4x4x4, 64 B) -> dw 3x3 -> b (64 B) -> project 1x1 -> c (32 B);
    y = c + x (32 B): an inverted-residual block with its skip."""
    t = {n: Tensor(n, s) for n, s in (("x", (4, 4, 2)), ("a", (4, 4, 4)), ("b", (4, 4, 4)), ("c", (4, 4, 2)),
                                       ("y", (4, 4, 2)))}
    one = {"kernel": (1, 1), "stride": (1, 1), "padding": (0, 0, 0, 0)}
    ops = [Op("expand", "conv2d", ("x",), "a", {**one, "weight_shape": (4, 1, 1, 2)}, "expand", 0),
           Op("dw", "depthwise_conv2d", ("a",), "b", {"kernel": (3, 3), "stride": (1, 1), "padding": (1, 1, 1, 1),
                                                      "weight_shape": (3, 3, 4)}, "depthwise", 0),
           Op("project", "conv2d", ("b",), "c", {**one, "weight_shape": (2, 1, 1, 4)}, "project", 0),
           Op("add", "add", ("c", "x"), "y", {}, "add", 0)]
    g = Graph("block", t, ops, ["x"], ["y"])
    g.validate()
    return g


def offsets(plan) -> dict[str, int]:
    return {b.name: b.offset for b in plan.buffers}


def test_lifetimes_of_the_block():
    assert last_use(block()) == {"x": 3, "a": 1, "b": 2, "c": 3, "y": 3}


def test_plan_without_passes_exact_offsets():
    """No aliasing: live 96/160/128/96 B per step; scratch 8 B (expand: 2 x 2 int16), none for the
    out-of-place depthwise, 16 B (project). Largest first: a@0, b@64 (alive with a at step 1), x@128,
    c@0 (a is dead at step 2), y@32, project scratch@32, expand scratch@64: 160 B = the lower bound."""
    plan = plan_graph(block())
    assert plan.live_bytes == [96, 160, 128, 96] and plan.scratch_bytes == [8, 0, 16, 0]
    assert (plan.arena_bytes, plan.lower_bound, plan.strategy) == (160, 160, "largest-first")
    assert offsets(plan) == {"a": 0, "b": 64, "x": 128, "c": 0, "y": 32, "project.scratch": 32,
                             "expand.scratch": 64}
    assert plan.inplace == {}


def test_inplace_pass_decides_and_returns_a_new_graph():
    g = block()
    assert decide_inplace(g) == {"b": "a", "y": "c"}  # x is read again by the add, so not x
    assert decide_inplace(g, include_input=False) == {"b": "a", "y": "c"}
    assert decide_inplace(g, depthwise=False, add=False) == {}
    ann = annotate_inplace(g)
    assert ann is not g and ann.ops[1] is not g.ops[1]
    assert [op.attrs.get(INPLACE_ATTR) for op in ann.ops] == [None, "a", None, "c"]
    assert all(INPLACE_ATTR not in op.attrs for op in g.ops)  # the input graph is left as it was


def test_pipeline_plan_exact_offsets():
    """In place: b over a (one 64 B buffer to step 2), y over c; the in-place depthwise needs one
    padded channel (6 x 6 = 36 B). Live 96/96/128/64, lower bound 144 (step 2: 128 + 16). Largest
    first gives 148 B; by start step reaches 144: a@0, x@64, then expand scratch@96 (step 0), the
    depthwise's@96 (step 1), c@96 (steps 2-3), project scratch@128."""
    plan = plan_memory(block())
    assert plan.inplace == {"b": "a", "y": "c"}
    assert plan.live_bytes == [96, 96, 128, 64] and plan.scratch_bytes == [8, 36, 16, 0]
    assert (plan.arena_bytes, plan.lower_bound, plan.strategy) == (144, 144, "by-start")
    assert offsets(plan) == {"a": 0, "x": 64, "c": 96, "expand.scratch": 96, "dw.scratch": 96,
                             "project.scratch": 128}
    assert plan.tensor_offset == {"a": 0, "b": 0, "x": 64, "c": 96, "y": 96}
    a = next(b for b in plan.buffers if b.name == "a")
    assert a.tensors == ["a", "b"] and a.intervals == [(0, 1, 64), (2, 2, 64)]


def test_plan_options_reach_the_passes():
    plan = plan_memory(block(), PlanOptions(inplace_depthwise=False, inplace_add=False))
    assert plan.inplace == {} and plan.arena_bytes == 160
    no_input = plan_memory(block(), PlanOptions(include_input=False))
    assert "x" not in no_input.tensor_offset and no_input.inplace == {"b": "a", "y": "c"}


def test_first_fit_places_at_the_lowest_aligned_free_offset():
    a = Buffer("a", ["a"], [(0, 1, 10)])
    b = Buffer("b", ["b"], [(1, 2, 6)])
    c = Buffer("c", ["c"], [(2, 3, 5)])  # dies with b's step: it may share a's bytes, not b's
    off = first_fit([a, b, c], align=4)
    assert (off[id(a)], off[id(b)], off[id(c)]) == (0, 12, 0)
    off1 = first_fit([a, b, c], align=1)
    assert (off1[id(a)], off1[id(b)], off1[id(c)]) == (0, 10, 0)
    d = Buffer("d", ["d"], [(0, 3, 3)])  # alive with all: after the widest neighbour
    off2 = first_fit([a, b, c, d], align=4)
    assert off2[id(d)] == 20
