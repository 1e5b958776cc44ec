"""SearchSpace: the default MCUNet space, width scaling, uniform sampling, evolution operators."""

from collections import Counter

import numpy as np
import pytest

from search_spaces.arch import ArchConfig, ArchError, make_divisible, validate
from search_spaces.space import Genes, SearchSpace
from search_spaces.zoo import load_zoo, zoo_names


def test_defaults_match_the_spec():
    sp = SearchSpace()
    assert sp.base_widths == (32, 16, 24, 40, 80, 96, 192, 320)
    assert sp.strides == (2, 2, 2, 1, 2, 1)
    assert set(sp.kernel_choices) == {3, 5, 7} and len(sp.kernel_choices) == 3
    assert set(sp.expand_choices) == {3, 4, 5, 6} and len(sp.expand_choices) == 4
    assert set(sp.depth_choices) == {2, 3, 4}
    assert sp.n_stages == 6 and sp.max_depth == 4
    assert [sp.stage_depth_choices(s) for s in range(5)] == [sp.depth_choices] * 5
    assert sp.stage_depth_choices(5) == (1,)
    assert len(sp.width_choices) == 9
    assert sp.width_choices == pytest.approx([0.2 + 0.1 * i for i in range(9)])
    assert sp.width_choices[0] == 0.2 and sp.width_choices[-1] == 1.0
    assert len(sp.resolution_choices) == 12
    assert sp.resolution_choices == tuple(48 + 16 * i for i in range(12))
    assert sp.resolution_choices[-1] == 224
    assert sp.num_classes == 1000 and sp.in_channels == 3


def test_widths_hand_checked():
    sp = SearchSpace()
    # W=0.5: 16, 8, 12->16, 20->24, 40, 48, 96, 160
    assert sp.widths(0.5) == (16, 8, 16, 24, 40, 48, 96, 160)
    # W=0.6: 19.2->16 (<17.28, so 24), 9.6->8 (<8.64, so 16), 14.4->16, 24, 48, 57.6->56, 115.2->112, 192
    assert sp.widths(0.6) == (24, 16, 16, 24, 48, 56, 112, 192)
    assert sp.widths(1.0) == sp.base_widths
    for w in sp.width_choices:
        assert sp.widths(w) == tuple(make_divisible(c * w, 8) for c in sp.base_widths)


def test_widths_are_monotone_in_w():
    sp = SearchSpace()
    ws = [sp.widths(w) for w in sp.width_choices]
    for a, b in zip(ws, ws[1:]):
        assert all(x <= y for x, y in zip(a, b))


def _check_genes(sp: SearchSpace, g: Genes, n: int) -> None:
    assert g.kernel_idx.shape == (n, sp.n_stages, sp.max_depth)
    assert g.expand_idx.shape == (n, sp.n_stages, sp.max_depth)
    assert g.depth.shape == (n, sp.n_stages)
    assert g.kernel_idx.min() >= 0 and g.kernel_idx.max() < len(sp.kernel_choices)
    assert g.expand_idx.min() >= 0 and g.expand_idx.max() < len(sp.expand_choices)
    for s in range(sp.n_stages):
        assert set(np.unique(g.depth[:, s]).tolist()) <= set(sp.stage_depth_choices(s))


@pytest.mark.parametrize("seed", [0, 7, 123])
def test_sampled_genes_build_valid_archs_inside_the_space(seed):
    sp = SearchSpace()
    rng = np.random.default_rng(seed)
    n = 2000
    g = sp.sample_genes(rng, n)
    _check_genes(sp, g, n)
    assert (g.depth[:, 5] == 1).all()  # last stage: always one block

    kernels, expands, depths = Counter(), Counter(), [Counter() for _ in range(sp.n_stages)]
    for i in range(n):
        w = sp.width_choices[i % len(sp.width_choices)]
        r = sp.resolution_choices[i % len(sp.resolution_choices)]
        a = sp.build(w, r, g.kernel_idx[i], g.expand_idx[i], g.depth[i])
        if i % 20 == 0:
            validate(a)
        assert sp.contains(a)
        assert a.resolution == r and a.width_mult == w
        assert a.depths == tuple(int(d) for d in g.depth[i])
        assert a.depths[-1] == 1
        widths = (a.stem_channels, a.first_channels, *(s.out_channels for s in a.stages))
        assert widths == sp.widths(w)
        assert tuple(s.stride for s in a.stages) == sp.strides
        for s, st in enumerate(a.stages):
            depths[s][len(st.blocks)] += 1
            for j, b in enumerate(st.blocks):
                assert b.kernel_size == sp.kernel_choices[g.kernel_idx[i, s, j]]
                assert b.expand_ratio == sp.expand_choices[g.expand_idx[i, s, j]]
                kernels[b.kernel_size] += 1
                expands[b.expand_ratio] += 1

    # Every choice appears, in roughly uniform proportion (loose 15% band; thousands of draws).
    nk, ne = sum(kernels.values()), sum(expands.values())
    assert set(kernels) == {3, 5, 7} and set(expands) == {3, 4, 5, 6}
    for c in kernels.values():
        assert abs(c / nk - 1 / 3) < 0.15 / 3
    for c in expands.values():
        assert abs(c / ne - 1 / 4) < 0.15 / 4
    for s in range(5):
        assert set(depths[s]) == {2, 3, 4}
        for c in depths[s].values():
            assert abs(c / n - 1 / 3) < 0.15 / 3
    assert depths[5] == Counter({1: n})


def test_sample_largest_smallest():
    sp = SearchSpace()
    lg, sm = sp.largest(1.0, 224), sp.smallest(0.2, 48)
    assert lg.depths == (4, 4, 4, 4, 4, 1) and sm.depths == (2, 2, 2, 2, 2, 1)
    assert all(b.kernel_size == 7 and b.expand_ratio == 6 for s in lg.stages for b in s.blocks)
    assert all(b.kernel_size == 3 and b.expand_ratio == 3 for s in sm.stages for b in s.blocks)
    assert sp.contains(lg) and sp.contains(sm)
    a = sp.sample(np.random.default_rng(0), 0.5, 96)
    assert sp.contains(a) and a.resolution == 96


def test_contains_rejects_outsiders():
    sp = SearchSpace()
    a = sp.sample(np.random.default_rng(1), 0.5, 128)
    d = a.to_dict()
    d["stages"][0]["blocks"][0]["kernel_size"] = 9
    assert not sp.contains(ArchConfig.from_dict(d))
    d = a.to_dict()
    d["stages"][2]["out_channels"] += 8
    assert not sp.contains(ArchConfig.from_dict(d))
    d = a.to_dict()
    d["stages"][5]["blocks"].append(d["stages"][5]["blocks"][0])  # last stage of 2 blocks
    assert not sp.contains(ArchConfig.from_dict(d))
    d = a.to_dict()
    d["stages"][1]["blocks"][0]["mid_channels"] = 8
    assert not sp.contains(ArchConfig.from_dict(d))
    d = a.to_dict()
    d["stages"] = d["stages"][:5]
    assert not sp.contains(ArchConfig.from_dict(d))


def test_zoo_mcunets_are_in_the_space():
    sp = SearchSpace()
    for name in zoo_names():
        a = load_zoo(name)
        if a.width_mult is None:   # mbv2/proxyless baselines: not sub-networks of this space
            assert not sp.contains(a)
            continue
        assert sp.contains(a), name
        assert sp.widths(a.width_mult) == (a.stem_channels, a.first_channels,
                                           *(s.out_channels for s in a.stages))


def test_build_rejects_bad_depth():
    sp = SearchSpace()
    z = np.zeros((6, 4), dtype=int)
    with pytest.raises(ArchError, match="stage 5"):
        sp.build(0.5, 96, z, z, [2, 2, 2, 2, 2, 2])
    with pytest.raises(ArchError, match="stage 0"):
        sp.build(0.5, 96, z, z, [5, 2, 2, 2, 2, 1])


def test_seeds_reproduce():
    sp = SearchSpace()
    a = sp.sample_genes(np.random.default_rng(42), 300)
    b = sp.sample_genes(np.random.default_rng(42), 300)
    c = sp.sample_genes(np.random.default_rng(43), 300)
    for f in ("kernel_idx", "expand_idx", "depth"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
    assert not all(np.array_equal(getattr(a, f), getattr(c, f)) for f in ("kernel_idx", "expand_idx", "depth"))
    ra, rb = np.random.default_rng(5), np.random.default_rng(5)
    g = sp.sample_genes(np.random.default_rng(0), 1)
    one = Genes(g.kernel_idx[0], g.expand_idx[0], g.depth[0])
    ma, mb = sp.mutate(ra, one, 0.3), sp.mutate(rb, one, 0.3)
    assert np.array_equal(ma.kernel_idx, mb.kernel_idx) and np.array_equal(ma.depth, mb.depth)
    assert sp.sample(np.random.default_rng(9), 0.5, 96) == sp.sample(np.random.default_rng(9), 0.5, 96)


def _single(g: Genes, i: int) -> Genes:
    return Genes(g.kernel_idx[i], g.expand_idx[i], g.depth[i])


def test_mutate_and_crossover_keep_genes_valid():
    sp = SearchSpace()
    rng = np.random.default_rng(11)
    pop = sp.sample_genes(rng, 200)
    changed = 0
    for i in range(200):
        a, b = _single(pop, i), _single(pop, (i + 1) % 200)
        for prob in (0.1, 0.5, 1.0):
            m = sp.mutate(rng, a, prob)
            batch = Genes(m.kernel_idx[None], m.expand_idx[None], m.depth[None])
            _check_genes(sp, batch, 1)
            assert m.depth[5] == 1
            assert sp.contains(sp.build(0.5, 96, m.kernel_idx, m.expand_idx, m.depth))
            changed += not np.array_equal(m.kernel_idx, a.kernel_idx)
        # The parent is not modified in place.
        assert np.array_equal(a.kernel_idx, pop.kernel_idx[i])
        c = sp.crossover(rng, a, b)
        for f in ("kernel_idx", "expand_idx", "depth"):
            ca, pa, pb = getattr(c, f), getattr(a, f), getattr(b, f)
            assert ((ca == pa) | (ca == pb)).all()  # every gene from one of the parents
        assert sp.contains(sp.build(0.7, 160, c.kernel_idx, c.expand_idx, c.depth))
    assert changed > 0
    # prob=0 changes nothing
    a = _single(pop, 0)
    m = sp.mutate(rng, a, 0.0)
    assert all(np.array_equal(getattr(m, f), getattr(a, f)) for f in ("kernel_idx", "expand_idx", "depth"))


def test_configured_space():
    sp = SearchSpace(base_widths=(16, 8, 16, 32, 64), strides=(2, 1, 2), kernel_choices=(3, 5),
                     expand_choices=(2, 4), depth_choices=(1, 2), fixed_depths={},
                     width_choices=(0.5, 1.0), resolution_choices=(32, 64), num_classes=10,
                     feature_mix_channels=128, in_channels=1)
    assert sp.n_stages == 3 and sp.max_depth == 2
    assert sp.widths(0.5) == (8, 8, 8, 16, 32)
    rng = np.random.default_rng(3)
    g = sp.sample_genes(rng, 400)
    _check_genes(sp, g, 400)
    ks, ds = set(), set()
    for i in range(400):
        a = sp.build(sp.width_choices[i % 2], sp.resolution_choices[i % 2], g.kernel_idx[i],
                     g.expand_idx[i], g.depth[i])
        validate(a)
        assert sp.contains(a) and not SearchSpace().contains(a)
        assert a.num_classes == 10 and a.feature_mix_channels == 128 and a.in_channels == 1
        assert ArchConfig.from_json(a.to_json()) == a
        ks |= {b.kernel_size for s in a.stages for b in s.blocks}
        ds |= set(a.depths)
    assert ks == {3, 5} and ds == {1, 2}


@pytest.mark.parametrize(("kwargs", "text"), [
    ({"kernel_choices": (3, 4)}, "kernel_choices"),
    ({"kernel_choices": ()}, "kernel_choices"),
    ({"expand_choices": ()}, "expand_choices"),
    ({"depth_choices": ()}, "depth_choices"),
    ({"width_choices": ()}, "width_choices"),
    ({"resolution_choices": ()}, "resolution_choices"),
    ({"base_widths": (32, 16, 24)}, "base_widths"),
    ({"width_choices": (0.0, 0.5)}, "width"),
    ({"resolution_choices": (4, 64)}, "resolution"),
])
def test_bad_space_configuration(kwargs, text):
    with pytest.raises(ArchError, match=text):
        SearchSpace(**kwargs)
