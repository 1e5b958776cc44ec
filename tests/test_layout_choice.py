"""The per-op layout pass (tinyengine/passes/layout.py): depthwise in or out of place by predicted cost,
never growing the arena unless asked."""
from __future__ import annotations

import copy

import pytest

from search_spaces.zoo import load_zoo
from tinyengine.ir.graph import build_graph
from tinyengine.kernels.choice import kernel_choices
from tinyengine.passes import layout
from tinyengine.passes.layout import IN_PLACE, OUT_OF_PLACE, predicted_instructions
from tinyengine.pipeline import plan_memory
from tinyengine.planner import PlanOptions
from tinyml_errors import UsageError

OFF = PlanOptions(layout_choice="off")


@pytest.fixture(scope="module", params=["mcunet-vww1", "mcunet-in3", "mcunet-in0"])
def graph(request):
    return build_graph(load_zoo(request.param))


def test_never_grows_the_arena_and_moves_only_cheaper_ops(graph):
    off = plan_memory(graph, OFF)
    on = plan_memory(graph)
    assert on.arena_bytes <= off.arena_bytes
    dws = [op for op in graph.ops if op.kind == "depthwise_conv2d"]
    assert set(on.layout) == {op.name for op in dws}
    for op in dws:
        r = on.layout[op.name]
        moved = op.output not in on.inplace
        assert moved == (r["choice"] == "out of place")
        assert off.inplace[op.output] == op.inputs[0]  # every one of them may run in place
        a = r["alternatives"]
        if moved:  # predicted cheaper, and the trial plan did not grow the arena
            assert a[OUT_OF_PLACE]["predicted_instructions"] < a[IN_PLACE]["predicted_instructions"]
            assert a[OUT_OF_PLACE]["arena_bytes"] <= off.arena_bytes
        elif a[OUT_OF_PLACE]["predicted_instructions"] < 0.95 * a[IN_PLACE]["predicted_instructions"]:
            assert a[OUT_OF_PLACE]["arena_bytes"] > off.arena_bytes  # kept in place: it is at the peak
            assert "peak" in r["reason"]


def test_vww1_runs_its_small_late_depthwise_out_of_place():
    g = build_graph(load_zoo("mcunet-vww1"))
    plan = plan_memory(g)
    moved = [n for n, r in plan.layout.items() if r["choice"] == "out of place"]
    assert "b14.dw" in moved and "b11.dw" in moved  # 5x5 spatial, many channels: off the peak
    # 3x3 spatial 3x3 kernel: the whole plane in flat sweeps makes in place the cheaper one (in place also
    # wins ties within 5%: no second buffer)
    assert plan.layout["b12.dw"]["choice"] == "in place" and "within 5%" in plan.layout["b12.dw"]["reason"]
    assert "b1.dw" not in moved                      # at the peak (b1.expand): in place
    # kernel choice and lowering follow the plan: the moved ops call te_depthwise_s8, with the record
    ks = {k["name"]: k for k in kernel_choices(plan)}
    for n in moved:
        assert ks[n]["kernel"] == OUT_OF_PLACE and ks[n]["layout_choice"]["choice"] == "out of place"
        assert ks[n]["inputs"][0][1] != ks[n]["output"][1]  # its own buffer
    assert ks["b1.dw"]["kernel"] == IN_PLACE and ks["b1.dw"]["layout_choice"]["alternatives"][OUT_OF_PLACE]


def test_off_keeps_every_depthwise_in_place():
    g = build_graph(load_zoo("mcunet-vww1"))
    plan = plan_memory(g, OFF)
    assert all(r["choice"] == "in place" for r in plan.layout.values())
    assert all(k["kernel"] != OUT_OF_PLACE for k in kernel_choices(plan))


def test_speed_keeps_the_peak_in_place_when_in_place_is_as_fast():
    # with the shipped fits in-place depthwise is no slower than out of place at vww1's peak (b1.dw,
    # 3x3/s2): "speed" has nothing to buy with SRAM there
    g = build_graph(load_zoo("mcunet-vww1"))
    free = plan_memory(g, PlanOptions(layout_choice="speed"))
    assert free.arena_bytes == plan_memory(g).arena_bytes
    assert free.layout["b1.dw"]["choice"] == "in place" and "within" in free.layout["b1.dw"]["reason"]


def test_speed_trades_sram_within_the_allowance(monkeypatch):
    # an in-place kernel twice as dear on 3x3/s2 (in the fits, not in fact): b1.dw, at the peak,
    # is then worth moving out of place when SRAM may grow
    fits = copy.deepcopy(layout._fits())
    fits["te_depthwise_inplace_s8/k3s2"]["coef"] = [2 * c for c in fits["te_depthwise_inplace_s8/k3s2"]["coef"]]
    monkeypatch.setattr(layout, "_fits", lambda: fits)
    g = build_graph(load_zoo("mcunet-vww1"))
    base = plan_memory(g).arena_bytes
    free = plan_memory(g, PlanOptions(layout_choice="speed"))
    assert free.arena_bytes > base  # b1.dw (at the peak) goes out of place when SRAM may grow
    assert free.layout["b1.dw"]["choice"] == "out of place"
    tight = plan_memory(g, PlanOptions(layout_choice="speed", layout_extra_sram=1000))
    assert tight.arena_bytes <= base + 1000
    assert tight.layout["b1.dw"]["choice"] == "in place"


def test_predictions_follow_the_kernels_terms():
    g = build_graph(load_zoo("mcunet-vww1"))
    ops = {op.name: op for op in g.ops}
    # small spatial, many channels, a large kernel (7x7 on 3x3): the per-channel plane copy and set-up make
    # in place dearer; large spatial: cheaper
    assert predicted_instructions(g, ops["b14.dw"], OUT_OF_PLACE) < predicted_instructions(g, ops["b14.dw"], IN_PLACE)
    assert predicted_instructions(g, ops["b0.dw"], OUT_OF_PLACE) > predicted_instructions(g, ops["b0.dw"], IN_PLACE)


@pytest.mark.parametrize("opts, what", [(PlanOptions(layout_choice="fast"), "'fast' is not one of"),
                                        (PlanOptions(layout_choice="speed", layout_extra_sram=-1), ">= 0")])
def test_bad_options_are_named(opts, what):
    with pytest.raises(UsageError, match=what):
        plan_memory(build_graph(load_zoo("mcunet-in0")), opts)


def test_gen_options_follow_the_board_and_refuse_bad_combinations():
    import dataclasses

    from boards import load_board
    from codegen.generate import _plan_options
    m4 = load_board("qemu-m4")
    assert _plan_options(m4).layout_choice == "memory"
    assert _plan_options(m4, "speed", 2048) == PlanOptions(layout_choice="speed", layout_extra_sram=2048)
    no_dsp = dataclasses.replace(m4, dsp=False)  # portable kernels: out of place is not the cheaper one
    assert _plan_options(no_dsp, "speed").layout_choice == "off"
    with pytest.raises(UsageError, match="needs --layout-choice speed"):
        _plan_options(m4, "memory", 100)
    with pytest.raises(UsageError, match=">= 0"):
        _plan_options(m4, "speed", -1)
