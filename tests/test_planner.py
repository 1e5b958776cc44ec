"""Memory planner invariants on the zoo and on random sub-networks of the search space."""

import itertools

import numpy as np
import pytest

from search_spaces.arch import ArchConfig
from search_spaces.space import SearchSpace
from search_spaces.zoo import load_zoo, zoo_names
from tinyengine.ir.graph import build_graph
from tinyengine.kernels.registry import planned_scratch_bytes as scratch_bytes
from tinyengine.pipeline import plan_memory
from tinyengine.planner import MemoryPlan, PlanOptions

OPTIONS = {
    "default": PlanOptions(),
    "no-inplace": PlanOptions(inplace_depthwise=False, inplace_add=False),
    "dw-only": PlanOptions(inplace_depthwise=True, inplace_add=False),
    "no-input": PlanOptions(include_input=False),
}


def random_archs(n: int, seed: int):
    space = SearchSpace()
    rng = np.random.default_rng(seed)
    for _ in range(n):
        w = float(rng.choice(space.width_choices))
        r = int(rng.choice(space.resolution_choices))
        yield space.sample(rng, w, r)


def check_no_overlap(plan: MemoryPlan) -> None:
    """Any two intervals alive at a common step occupy disjoint [offset, offset + bytes) ranges."""
    spans = [(b.name, a, e, b.offset, b.offset + s) for b in plan.buffers for a, e, s in b.intervals]
    for (n1, a1, e1, lo1, hi1), (n2, a2, e2, lo2, hi2) in itertools.combinations(spans, 2):
        if n1 == n2:
            continue
        if a1 <= e2 and a2 <= e1:  # alive together
            assert hi1 <= lo2 or hi2 <= lo1, f"{n1} [{lo1},{hi1}) and {n2} [{lo2},{hi2}) overlap"


def check_plan(plan: MemoryPlan) -> None:
    g, opts = plan.graph, plan.options
    n = len(g.ops)
    check_no_overlap(plan)
    for b in plan.buffers:
        assert b.offset >= 0 and b.offset + b.size <= plan.arena_bytes
        for (a1, e1, _), (a2, e2, _) in zip(b.intervals, b.intervals[1:]):
            assert a1 <= e1 and e1 + 1 == a2 <= e2  # one buffer: consecutive intervals
    # Live bytes recomputed from the buffers; bounds.
    live = [0] * n
    for b in plan.buffers:
        if b.kind == "activation":
            for a, e, s in b.intervals:
                for k in range(a, e + 1):
                    live[k] += s
    assert live == plan.live_bytes
    assert plan.lower_bound == max(a + s for a, s in zip(plan.live_bytes, plan.scratch_bytes))
    assert plan.naive_bytes == sum(b.size for b in plan.buffers)
    assert plan.lower_bound <= plan.arena_bytes <= plan.naive_bytes
    assert plan.peak_sram == plan.arena_bytes
    # Every tensor that is produced lives in exactly one buffer (input: only when included).
    in_buffers = [t for b in plan.buffers for t in b.tensors]
    assert len(in_buffers) == len(set(in_buffers))
    expected = {op.output for op in g.ops} | (set(g.inputs) if opts.include_input else set())
    assert set(in_buffers) == expected
    # Scratch: one buffer per op that needs any, alive at that op's step only, of scratch_bytes.
    scratch = [b for b in plan.buffers if b.kind == "scratch"]
    assert len(scratch) == sum(1 for s in plan.scratch_bytes if s)
    by_step = {}
    for b in scratch:
        assert len(b.intervals) == 1 and b.tensors == []
        (a, e, s), = b.intervals
        assert a == e and s > 0
        assert a not in by_step
        by_step[a] = s
    for i, op in enumerate(g.ops):
        inplace_dw = op.kind == "depthwise_conv2d" and op.output in plan.inplace
        assert plan.scratch_bytes[i] == scratch_bytes(g, op, inplace_dw) == by_step.get(i, 0)
    # In-place outputs share their input's offset; only depthwise/add run in place, per the options.
    for out, src in plan.inplace.items():
        assert plan.tensor_offset[out] == plan.tensor_offset[src]
        op = next(o for o in g.ops if o.output == out)
        assert src in op.inputs
        assert (op.kind == "depthwise_conv2d" and opts.inplace_depthwise) or \
            (op.kind in ("add", "conv2d_add") and opts.inplace_add)  # conv2d_add: projection + add fused
    # Lifetimes: a tensor's buffer covers every step from its producer to its last reader.
    steps_of = {b.name: set() for b in plan.buffers}
    for b in plan.buffers:
        for a, e, _ in b.intervals:
            steps_of[b.name] |= set(range(a, e + 1))
    buf_of = {t: b for b in plan.buffers for t in b.tensors}
    for i, op in enumerate(g.ops):
        for t in op.inputs:
            if t in buf_of:
                assert i in steps_of[buf_of[t].name], (t, i)
        assert i in steps_of[buf_of[op.output].name]
    for t in g.outputs:
        assert n - 1 in steps_of[buf_of[t].name]


@pytest.mark.parametrize("opt", list(OPTIONS), ids=list(OPTIONS))
@pytest.mark.parametrize("name", zoo_names())
def test_zoo_plans_are_valid(name, opt):
    check_plan(plan_memory(build_graph(load_zoo(name)), OPTIONS[opt]))


@pytest.mark.parametrize("opt", list(OPTIONS), ids=list(OPTIONS))
def test_random_plans_are_valid(opt):
    for arch in random_archs(12, seed=list(OPTIONS).index(opt)):
        check_plan(plan_memory(build_graph(arch), OPTIONS[opt]))


def test_chain_networks_reach_the_lower_bound():
    """With in-place depthwise/add (the default), first fit reaches the lower bound on chains."""
    gaps = []
    for arch in random_archs(50, seed=99):
        plan = plan_memory(build_graph(arch))
        if plan.arena_bytes != plan.lower_bound:
            gaps.append((arch.summary(), plan.arena_bytes - plan.lower_bound))
    assert gaps == []


@pytest.mark.parametrize("name", zoo_names())
def test_zoo_reaches_the_lower_bound(name):
    plan = plan_memory(build_graph(load_zoo(name)))
    assert plan.arena_bytes == plan.lower_bound


def test_without_inplace_arena_within_tolerance():
    """Without in-place ops the buffers no longer nest and first fit can lose a little: within 25%."""
    worst = 1.0
    for arch in random_archs(40, seed=5):
        plan = plan_memory(build_graph(arch), OPTIONS["no-inplace"])
        worst = max(worst, plan.arena_bytes / plan.lower_bound)
    assert worst <= 1.25


def test_inplace_depthwise_shares_its_input_buffer():
    for arch in list(random_archs(5, seed=3)) + [load_zoo("mcunet-in3")]:
        g = build_graph(arch)
        plan = plan_memory(g, PlanOptions(layout_choice="off"))  # the in-place pass alone (no layout choice)
        dws = [op for op in g.ops if op.kind == "depthwise_conv2d"]
        assert dws
        for op in dws:  # on a chain every depthwise input has one reader: all run in place
            assert plan.inplace[op.output] == op.inputs[0]
            assert plan.tensor_offset[op.output] == plan.tensor_offset[op.inputs[0]]
        off = plan_memory(g, OPTIONS["no-inplace"])
        assert off.inplace == {}
        assert all(off.tensor_offset[op.output] != off.tensor_offset[op.inputs[0]] for op in dws)


def test_graph_input_in_arena_only_when_included():
    g = build_graph(load_zoo("mcunet-in1"))
    nbytes = g.tensors["input"].nbytes
    assert nbytes == 96 * 96 * 3
    with_in = plan_memory(g, PlanOptions(include_input=True))
    without = plan_memory(g, PlanOptions(include_input=False))
    assert "input" in with_in.tensor_offset and "input" not in without.tensor_offset
    assert not any("input" in b.tensors for b in without.buffers)
    buf = next(b for b in with_in.buffers if "input" in b.tensors)
    assert buf.intervals == [(0, 0, nbytes)]   # read by the stem only
    assert with_in.live_bytes[0] - without.live_bytes[0] == nbytes
    assert with_in.live_bytes[1:] == without.live_bytes[1:]
    assert with_in.arena_bytes >= without.arena_bytes


def test_input_can_dominate_the_peak():
    """When the stem step (image + stem output + im2col columns) is the peak, leaving the image out of the
    arena lowers the figure; with it in, the peak is exactly image + stem output + columns."""
    arch = ArchConfig.from_dict({
        "resolution": 64, "stem": {"out_channels": 8}, "first_block": {"out_channels": 8},
        "stages": [{"out_channels": 8, "stride": 2, "blocks": [{"kernel_size": 3, "expand_ratio": 1}]}],
        "num_classes": 2})
    g = build_graph(arch)
    with_in, without = plan_memory(g), plan_memory(g, PlanOptions(include_input=False))
    img = 64 * 64 * 3                 # 12288
    stem_out = 32 * 32 * 8            # 8192
    im2col = 2 * 28 * 2               # 112: te_conv_stem_s8's two int16 columns, 27 values padded to 28
    # later steps: b0.dw 8192 + 34*34; b0.proj 8192 + 8192 + 32; b1.dw 8192 + 33*33; ... all smaller
    assert with_in.peak_step == 0
    assert with_in.lower_bound == with_in.arena_bytes == img + stem_out + im2col
    assert without.arena_bytes == 8192 + 8192 + 32


def test_overlap_checker_catches_a_corrupted_plan():
    """The checker used above is not vacuous: two buffers alive together at one offset are caught."""
    plan = plan_memory(build_graph(load_zoo("mcunet-in0")))
    a, b = next((x, y) for x, y in itertools.combinations(plan.buffers, 2)
                if x.start <= y.end and y.start <= x.end)
    b.offset = a.offset
    with pytest.raises(AssertionError, match="overlap"):
        check_no_overlap(plan)


def test_every_buffer_offset_is_aligned_for_the_c_kernels():
    """int16/int32 scratch and word loads need aligned addresses: the planner hands out 4-byte
    aligned offsets (odd-sized depthwise planes would otherwise push later buffers off alignment)."""
    from search_spaces.zoo import load_zoo
    from tinyengine.ir.graph import build_graph
    from tinyengine.pipeline import plan_memory
    from tinyengine.planner import PlanOptions

    for name in ("mcunet-in3", "mcunet-vww1"):
        for opts in (PlanOptions(), PlanOptions(patches=3), PlanOptions(alignment=8)):
            plan = plan_memory(build_graph(load_zoo(name)), opts)
            assert all(b.offset % opts.alignment == 0 for b in plan.buffers), (name, opts)
            # the check has teeth: these models have buffers whose size is not a multiple of 4
            assert any(b.size % 4 for b in plan.buffers), (name, opts)
