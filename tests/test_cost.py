"""The one cost model: MACs, params, flash and peak SRAM checked by hand on a tiny network, against
MCUNet's published figures on the zoo, and fast/batch paths against planning the whole graph."""

import numpy as np
import pytest

from search_spaces.arch import ArchConfig
from search_spaces.space import Genes, SearchSpace
from search_spaces.zoo import load_zoo, zoo_names
from tinyengine.cost import batch_costs, fast_costs, graph_costs, network_costs
from tinyengine.ir.graph import build_graph
from tinyengine.ir.opcost import op_flash, op_macs, op_params
from tinyengine.pipeline import plan_memory
from tinyengine.planner import PlanOptions


def tiny_arch() -> ArchConfig:
    """R=8, stem 3->8 k3 s2, first block 8->8 (k3), one stage: 8->16 s2 k3 e3, then 16->16 k3 e3 (+res),
    4 classes."""
    return ArchConfig.from_dict({
        "resolution": 8, "in_channels": 3,
        "stem": {"out_channels": 8, "kernel_size": 3, "stride": 2},
        "first_block": {"out_channels": 8, "kernel_size": 3},
        "stages": [{"out_channels": 16, "stride": 2, "blocks": [{"kernel_size": 3, "expand_ratio": 3},
                                                               {"kernel_size": 3, "expand_ratio": 3}]}],
        "num_classes": 4, "name": "tiny"})


# Hand derivation for tiny_arch (NHWC, padding k//2, output side = ceil(H / stride)):
#   input 8x8x3
#   stem     conv 3x3 s2  3->8     out 4x4x8
#   b0.dw    dw   3x3 s1  8        out 4x4x8
#   b0.proj  conv 1x1     8->8     out 4x4x8
#   b1.exp   conv 1x1     8->24    out 4x4x24      (mid = make_divisible(8*3) = 24)
#   b1.dw    dw   3x3 s2  24       out 2x2x24
#   b1.proj  conv 1x1     24->16   out 2x2x16
#   b2.exp   conv 1x1     16->48   out 2x2x48      (mid = 16*3 = 48)
#   b2.dw    dw   3x3 s1  48       out 2x2x48
#   b2.proj  conv 1x1     48->16   out 2x2x16
#   b2.add   + b1.proj             out 2x2x16
#   pool     global avg            out 16
#   fc       16->4                 out 4
# (name, kind, Ho, Wo, Cout, k, Cin) for the weighted ops; Cin unused for depthwise.
LAYERS = [
    ("stem", "conv", 4, 4, 8, 3, 3),
    ("b0.dw", "dw", 4, 4, 8, 3, None),
    ("b0.project", "conv", 4, 4, 8, 1, 8),
    ("b1.expand", "conv", 4, 4, 24, 1, 8),
    ("b1.dw", "dw", 2, 2, 24, 3, None),
    ("b1.project", "conv", 2, 2, 16, 1, 24),
    ("b2.expand", "conv", 2, 2, 48, 1, 16),
    ("b2.dw", "dw", 2, 2, 48, 3, None),
    ("b2.project", "conv", 2, 2, 16, 1, 48),
    ("classifier", "fc", 1, 1, 4, 1, 16),
]


def hand_macs(kind, ho, wo, cout, k, cin):
    if kind == "conv":
        return ho * wo * cout * k * k * cin       # Ho*Wo*Cout*k*k*Cin
    if kind == "dw":
        return ho * wo * cout * k * k             # Ho*Wo*C*k*k
    return cin * cout                             # fc: in*out


def hand_weights(kind, cout, k, cin):
    if kind == "conv":
        return cout * k * k * cin
    if kind == "dw":
        return k * k * cout
    return cout * cin


def hand_params(kind, ho, wo, cout, k, cin):
    # float model: conv weights + BN gamma and beta per output channel; classifier weights + bias
    return hand_weights(kind, cout, k, cin) + (cout if kind == "fc" else 2 * cout)


def hand_flash(kind, ho, wo, cout, k, cin):
    # int8 weights + per output channel: int32 bias + int32 multiplier + int32 shift = 12 bytes
    return hand_weights(kind, cout, k, cin) + 12 * cout


def test_tiny_per_layer_macs_params_flash():
    g = build_graph(tiny_arch())
    weighted = [op for op in g.ops if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected")]
    assert [op.name for op in weighted] == [row[0] for row in LAYERS]
    for op, (name, kind, ho, wo, cout, k, cin) in zip(weighted, LAYERS):
        assert op_macs(g, op) == hand_macs(kind, ho, wo, cout, k, cin), name
        assert op_params(op) == hand_params(kind, ho, wo, cout, k, cin), name
        assert op_flash(op) == hand_flash(kind, ho, wo, cout, k, cin), name
    for op in g.ops:
        if op.kind in ("add", "global_avg_pool"):
            assert op_macs(g, op) == 0 and op_params(op) == 0 and op_flash(op) == 0


def test_tiny_totals_by_hand():
    # MACs: stem 4*4*8*9*3=3456, b0.dw 4*4*8*9=1152, b0.proj 4*4*8*8=1024, b1.exp 4*4*24*8=3072,
    # b1.dw 2*2*24*9=864, b1.proj 2*2*16*24=1536, b2.exp 2*2*48*16=3072, b2.dw 2*2*48*9=1728,
    # b2.proj 2*2*16*48=3072, fc 16*4=64
    macs = 3456 + 1152 + 1024 + 3072 + 864 + 1536 + 3072 + 1728 + 3072 + 64
    assert macs == 19040
    # params: stem 216+16, b0.dw 72+16, b0.proj 64+16, b1.exp 192+48, b1.dw 216+48, b1.proj 384+32,
    # b2.exp 768+96, b2.dw 432+96, b2.proj 768+32, fc 64+4
    params = 232 + 88 + 80 + 240 + 264 + 416 + 864 + 528 + 800 + 68
    assert params == 3580
    # flash: weights as above + 12 B per output channel
    weights = 216 + 72 + 64 + 192 + 216 + 384 + 768 + 432 + 768 + 64
    out_channels = 8 + 8 + 8 + 24 + 24 + 16 + 48 + 48 + 16 + 4
    flash = weights + 12 * out_channels
    c = network_costs(tiny_arch())
    assert (c.macs, c.params, c.flash_bytes) == (macs, params, flash)
    assert sum(hand_macs(*r[1:]) for r in LAYERS) == macs
    assert sum(hand_params(*r[1:]) for r in LAYERS) == params
    # folded (int8) parameter count: BN folded into one bias per channel
    g = build_graph(tiny_arch())
    assert sum(op_params(op, folded=True) for op in g.ops) == weights + out_channels


# Lifetimes of the tiny network, step by step (op i runs at step i; int8 bytes = H*W*C):
#   input 192 (8*8*3) lives at step 0 only (read by the stem)
#   S  = stem out 128 (4*4*8): steps 0-1; b0.dw writes in place into S (128) -> S lives to step 2
#   P0 = b0.proj out 128: steps 2-3
#   E1 = b1.exp out 384 (4*4*24): steps 3-4; b1.dw in place -> 96 (2*2*24) at step 5
#   P1 = b1.proj out 64 (2*2*16): steps 5-9 (read again by the residual add)
#   E2 = b2.exp out 192 (2*2*48): steps 6-7; b2.dw in place (192) at step 8
#   P2 = b2.proj out 64: steps 8-9; the add writes in place into P2 -> lives to step 10
#   pool 16: steps 10-11; logits 4: step 11
HAND_LIVE = [192 + 128,      # 0 stem: input + S
             128,            # 1 b0.dw: S (in place)
             128 + 128,      # 2 b0.proj: S + P0
             128 + 384,      # 3 b1.exp: P0 + E1
             384,            # 4 b1.dw: E1 (in place)
             96 + 64,        # 5 b1.proj: E1 (now 2x2x24) + P1
             64 + 192,       # 6 b2.exp: P1 + E2
             64 + 192,       # 7 b2.dw: P1 + E2 (in place)
             64 + 192 + 64,  # 8 b2.proj: P1 + E2 + P2
             64 + 64,        # 9 add: P1 + P2 (in place)
             64 + 16,        # 10 pool
             16 + 4]         # 11 fc
# Scratch (the registry's planned_scratch_bytes): 1x1 conv 2*Cin*2; kxk conv im2col 2*k*k*Cin*2; in-place depthwise
# one padded input channel (H+pt+pb)*(W+pl+pr), where the bottom/right pad actually read is
# (Ho-1)*s + k - H - p.
HAND_SCRATCH = [2 * 28 * 2,                # 0 stem (te_conv_stem_s8): 2 int16 columns of 27 -> 28: 112
                (4 + 1 + 1) * (4 + 1 + 1),  # 1 b0.dw: 4x4, pad 1/1 -> 36
                2 * 8 * 2,                  # 2 b0.proj: 32
                2 * 8 * 2,                  # 3 b1.exp: 32
                (4 + 1 + 0) * (4 + 1 + 0),  # 4 b1.dw s2: pad_b = (2-1)*2+3-4-1 = 0 -> 25
                2 * 24 * 2,                 # 5 b1.proj: 96
                2 * 16 * 2,                 # 6 b2.exp: 64
                (2 + 1 + 1) * (2 + 1 + 1),  # 7 b2.dw: 16
                2 * 48 * 2,                 # 8 b2.proj: 192
                0, 0, 0]                    # add, pool, fc


def test_tiny_peak_sram_from_lifetimes():
    g = build_graph(tiny_arch())
    plan = plan_memory(g, PlanOptions(layout_choice="off"))  # the in-place pass alone (hand lifetimes)
    assert plan.live_bytes == HAND_LIVE
    assert plan.scratch_bytes == HAND_SCRATCH
    peak = max(a + s for a, s in zip(HAND_LIVE, HAND_SCRATCH))
    assert peak == 128 + 384 + 32 == 544  # step 3: P0 + E1 + 1x1 scratch
    assert plan.lower_bound == peak
    assert plan.arena_bytes == peak
    assert network_costs(tiny_arch()).peak_sram == peak
    assert fast_costs(tiny_arch()) == network_costs(tiny_arch())
    assert plan.inplace == {"b0.dw": "stem", "b1.dw": "b1.expand", "b2.dw": "b2.expand",
                            "b2.add": "b2.project"}


def test_tiny_without_inplace():
    # No aliasing: depthwise outputs and the add get their own buffers; depthwise needs no scratch.
    live = [192 + 128,         # 0 input + S
            128 + 128,         # 1 S + D0
            128 + 128,         # 2 D0 + P0
            128 + 384,         # 3 P0 + E1
            384 + 96,          # 4 E1 + D1
            96 + 64,           # 5 D1 + P1
            64 + 192,          # 6 P1 + E2
            64 + 192 + 192,    # 7 P1 + E2 + D2
            64 + 192 + 64,     # 8 P1 + D2 + P2
            64 + 64 + 64,      # 9 P1 + P2 + sum
            64 + 16, 16 + 4]
    scratch = [112, 0, 32, 32, 0, 96, 64, 0, 192, 0, 0, 0]
    plan = plan_memory(build_graph(tiny_arch()), PlanOptions(inplace_depthwise=False, inplace_add=False))
    assert plan.live_bytes == live and plan.scratch_bytes == scratch
    assert plan.lower_bound == max(a + s for a, s in zip(live, scratch)) == 544
    assert plan.inplace == {}


def test_tiny_without_input_in_arena():
    plan = plan_memory(build_graph(tiny_arch()), PlanOptions(include_input=False, layout_choice="off"))
    assert plan.live_bytes == [HAND_LIVE[0] - 192] + HAND_LIVE[1:]


# ----------------------------------------------------------------------------- zoo vs published
ZOO = zoo_names()


def test_mcunet_in3_acceptance():
    c = network_costs(load_zoo("mcunet-in3"))
    assert round(c.macs / 1e6, 1) == 81.8
    assert round(c.params / 1e6, 2) == 0.74


@pytest.mark.parametrize("name", ZOO)
def test_zoo_matches_published_macs_and_params(name):
    a = load_zoo(name)
    pub = a.meta["published"]
    c = network_costs(a)
    assert abs(c.macs / 1e6 - float(pub["macs_M"])) <= 0.05 + 1e-9
    assert round(c.params / 1e6, 2) == float(pub["params_M"])


@pytest.mark.parametrize("name", ["mcunet-in3", "mcunet-vww1"])
def test_peak_sram_not_above_tinyengine_codegen(name):
    a = load_zoo(name)
    published = int(a.meta["published"]["tinyengine_codegen_peak_B"])
    assert network_costs(a).peak_sram <= published


@pytest.mark.parametrize("name", ZOO)
def test_zoo_fast_equals_network(name):
    a = load_zoo(name)
    assert fast_costs(a) == network_costs(a)


@pytest.mark.parametrize("name", ZOO)
def test_inplace_off_never_lowers_the_peak(name):
    a = load_zoo(name)
    on = network_costs(a).peak_sram
    off = network_costs(a, PlanOptions(inplace_depthwise=False, inplace_add=False)).peak_sram
    dw_only = network_costs(a, PlanOptions(inplace_depthwise=True, inplace_add=False)).peak_sram
    assert off >= on and dw_only >= on


def test_inplace_helps_somewhere():
    a = load_zoo("mcunet-in3")
    assert network_costs(a, PlanOptions(False, False)).peak_sram > network_costs(a).peak_sram


def test_graph_costs_sum_over_ops():
    a = load_zoo("mcunet-in1")
    g = build_graph(a)
    c = graph_costs(g)
    assert c.macs == sum(op_macs(g, op) for op in g.ops)
    assert c.flash_bytes == sum(op_flash(op) for op in g.ops)
    assert c.fits(c.peak_sram, c.flash_bytes) and not c.fits(c.peak_sram - 1, c.flash_bytes)
    assert not c.fits(c.peak_sram, c.flash_bytes - 1)


# ----------------------------------------------------------------------------- one cost model
def _one_model_check(space: SearchSpace, pairs, per_pair: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    n = 0
    for w, r in pairs:
        g = space.sample_genes(rng, per_pair)
        b = batch_costs(space, w, r, g)
        for i in range(per_pair):
            a = space.build(w, r, g.kernel_idx[i], g.expand_idx[i], g.depth[i])
            ref = network_costs(a)
            assert fast_costs(a) == ref, (w, r, a.summary())
            got = (int(b.macs[i]), int(b.params[i]), int(b.flash_bytes[i]), int(b.peak_sram[i]))
            assert got == (ref.macs, ref.params, ref.flash_bytes, ref.peak_sram), (w, r, a.summary())
            n += 1
    return n


def test_fast_and_batch_equal_network_costs_default_space():
    space = SearchSpace()
    rng = np.random.default_rng(2024)
    pairs = [(float(rng.choice(space.width_choices)), int(rng.choice(space.resolution_choices)))
             for _ in range(20)]
    pairs += [(0.2, 48), (1.0, 224)]  # the corners
    assert _one_model_check(space, pairs, 9, seed=1) == 198


def test_fast_and_batch_equal_network_costs_configured_space():
    space = SearchSpace(num_classes=10, in_channels=1, feature_mix_channels=256,
                        depth_choices=(1, 2, 3), kernel_choices=(3, 5, 7, 9),
                        width_choices=(0.3, 0.75), resolution_choices=(40, 96))
    pairs = [(w, r) for w in space.width_choices for r in space.resolution_choices]
    assert _one_model_check(space, pairs, 8, seed=2) == 32


def test_batch_costs_vectorised_shapes():
    space = SearchSpace()
    g = space.sample_genes(np.random.default_rng(0), 64)
    b = batch_costs(space, 0.5, 160, g)
    for arr in (b.macs, b.params, b.flash_bytes, b.peak_sram):
        assert arr.shape == (64,)
    # larger choices never cost less: compare the largest and smallest sub-networks of the space
    big = Genes(np.full((1, 6, 4), 2), np.full((1, 6, 4), 3), np.array([[4, 4, 4, 4, 4, 1]]))
    small = Genes(np.zeros((1, 6, 4), int), np.zeros((1, 6, 4), int), np.array([[2, 2, 2, 2, 2, 1]]))
    bb, bs = batch_costs(space, 0.5, 160, big), batch_costs(space, 0.5, 160, small)
    assert bb.macs[0] > bs.macs[0] and bb.flash_bytes[0] > bs.flash_bytes[0]
    assert bb.peak_sram[0] >= bs.peak_sram[0]
    assert bb.macs[0] == network_costs(space.largest(0.5, 160)).macs
    assert bs.macs[0] == network_costs(space.smallest(0.5, 160)).macs
