"""ArchConfig: JSON round trips, validation errors that name the JSON path, make_divisible, block
enumeration and feature-map sizes."""

import copy
import json
import math

import numpy as np
import pytest

from search_spaces.arch import (
    FORMAT,
    ArchConfig,
    ArchError,
    BlockConfig,
    StageConfig,
    conv_out,
    make_divisible,
    validate,
)
from search_spaces.space import SearchSpace
from search_spaces.zoo import load_zoo, zoo_names

ZOO = ["mbv2-w0.35", "mcunet-in0", "mcunet-in1", "mcunet-in2", "mcunet-in3", "mcunet-in4",
       "mcunet-vww1", "proxyless-w0.3"]


def small_dict() -> dict:
    """A valid hand-written arch JSON: 2 stages, the second of one block."""
    return {
        "format": FORMAT,
        "resolution": 64,
        "stem": {"out_channels": 8, "kernel_size": 3, "stride": 2},
        "first_block": {"out_channels": 8, "kernel_size": 3},
        "stages": [
            {"out_channels": 16, "stride": 2,
             "blocks": [{"kernel_size": 3, "expand_ratio": 3}, {"kernel_size": 5, "expand_ratio": 4}]},
            {"out_channels": 24, "stride": 2, "blocks": [{"kernel_size": 7, "expand_ratio": 6}]},
        ],
        "num_classes": 10,
    }


def mcunet_layout(resolution: int) -> dict:
    """MCUNet/MobileNetV2 layout: stem s2 + 6 stages with strides 2,2,2,1,2,1 (5 stride-2 layers)."""
    d = small_dict()
    d["resolution"] = resolution
    d["stages"] = [{"out_channels": c, "stride": s, "blocks": [{"kernel_size": 3, "expand_ratio": 3}]}
                   for c, s in zip((16, 24, 40, 48, 96, 160), (2, 2, 2, 1, 2, 1))]
    return d


# ----------------------------------------------------------------------------- round trips
def test_zoo_lists_the_expected_models():
    assert set(ZOO) <= set(zoo_names())


@pytest.mark.parametrize("name", ZOO)
def test_zoo_round_trip(name, tmp_path):
    arch = load_zoo(name)
    assert arch.name == name
    again = ArchConfig.from_dict(arch.to_dict())
    assert again == arch
    assert again.to_dict() == arch.to_dict()  # meta (compare=False) survives too
    assert ArchConfig.from_json(arch.to_json()) == arch
    p = tmp_path / f"{name}.json"
    arch.save(p)
    loaded = ArchConfig.load(p)
    assert loaded == arch and loaded.meta == arch.meta
    assert json.loads(p.read_text())["format"] == FORMAT


def test_round_trip_keeps_everything_that_differs():
    """Fields that a round trip could drop: mid_channels override, feature mix, in_channels, stem."""
    d = small_dict()
    d.update(name="x", width_mult=0.35, in_channels=1, feature_mix_channels=64,
             meta={"note": [1, 2]})
    d["stem"].update(kernel_size=5, stride=1)
    d["first_block"]["kernel_size"] = 5
    d["stages"][0]["blocks"][1]["mid_channels"] = 40
    d["stages"][1]["blocks"][0]["expand_ratio"] = 2.5
    a = ArchConfig.from_dict(d)
    assert (a.in_channels, a.stem_kernel, a.stem_stride, a.first_kernel) == (1, 5, 1, 5)
    assert a.feature_mix_channels == 64 and a.width_mult == 0.35 and a.meta == {"note": [1, 2]}
    assert a.stages[0].blocks[1].mid_channels == 40
    assert a.stages[1].blocks[0].expand_ratio == 2.5
    b = ArchConfig.from_dict(json.loads(a.to_json()))
    assert b == a and b.to_dict() == a.to_dict()
    # A changed field must make them differ (equality is not vacuous).
    d["stages"][0]["blocks"][1]["mid_channels"] = 48
    assert ArchConfig.from_dict(d) != a


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_space_samples_round_trip(seed, tmp_path):
    space = SearchSpace()
    rng = np.random.default_rng(seed)
    for i in range(70):
        w = float(rng.choice(space.width_choices))
        r = int(rng.choice(space.resolution_choices))
        arch = space.sample(rng, w, r)
        validate(arch)
        again = ArchConfig.from_json(arch.to_json())
        assert again == arch
        assert again.depths == arch.depths and list(again.blocks()) == list(arch.blocks())
        if i % 10 == 0:
            arch.save(tmp_path / "a.json")
            assert ArchConfig.load(tmp_path / "a.json") == arch


def test_load_missing_file_is_arch_error(tmp_path):
    with pytest.raises(ArchError, match="nope.json"):
        ArchConfig.load(tmp_path / "nope.json")


# ----------------------------------------------------------------------------- validation
def _set(path):
    """Mutator that sets the value at a JSON path given as a list of keys/indices."""
    def go(d, value):
        obj = d
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value
    return go


BAD = [
    # (id, mutate(d), text the message must contain: the JSON path of the field)
    ("even kernel", lambda d: _set(["stages", 1, "blocks", 0, "kernel_size"])(d, 4),
     "arch.stages[1].blocks[0].kernel_size"),
    ("kernel too big", lambda d: _set(["stages", 0, "blocks", 1, "kernel_size"])(d, 13),
     "arch.stages[0].blocks[1].kernel_size"),
    ("missing resolution", lambda d: d.pop("resolution"), "'resolution'"),
    ("missing stem", lambda d: d.pop("stem"), "'stem'"),
    ("missing num_classes", lambda d: d.pop("num_classes"), "'num_classes'"),
    ("missing block kernel", lambda d: d["stages"][0]["blocks"][1].pop("kernel_size"),
     "arch.stages[0].blocks[1]: missing field 'kernel_size'"),
    ("stride 3", lambda d: _set(["stages", 0, "stride"])(d, 3), "arch.stages[0].stride"),
    ("stem stride 3", lambda d: _set(["stem", "stride"])(d, 3), "arch.stem.stride"),
    ("negative stage channels", lambda d: _set(["stages", 1, "out_channels"])(d, -8),
     "arch.stages[1].out_channels"),
    ("negative stem channels", lambda d: _set(["stem", "out_channels"])(d, -1), "arch.stem.out_channels"),
    ("zero classes", lambda d: _set(["num_classes"])(d, 0), "arch.num_classes"),
    ("non-integer channels", lambda d: _set(["stages", 0, "out_channels"])(d, 12.5),
     "arch.stages[0].out_channels"),
    ("non-integer first block", lambda d: _set(["first_block", "out_channels"])(d, 12.5),
     "arch.first_block.out_channels"),
    ("string resolution", lambda d: _set(["resolution"])(d, "64"), "arch.resolution"),
    ("bool classes", lambda d: _set(["num_classes"])(d, True), "arch.num_classes"),
    ("unknown top-level field", lambda d: _set(["widht_mult"])(d, 0.5), "widht_mult"),
    ("unknown block field", lambda d: _set(["stages", 0, "blocks", 0, "kernel"])(d, 3),
     "arch.stages[0].blocks[0]"),
    ("empty stages", lambda d: _set(["stages"])(d, []), "arch.stages"),
    ("stages not a list", lambda d: _set(["stages"])(d, {"a": 1}), "arch.stages"),
    ("empty blocks", lambda d: _set(["stages", 1, "blocks"])(d, []), "arch.stages[1].blocks"),
    ("zero expand", lambda d: _set(["stages", 0, "blocks", 1, "expand_ratio"])(d, 0),
     "arch.stages[0].blocks[1].expand_ratio"),
    ("nan expand", lambda d: _set(["stages", 0, "blocks", 1, "expand_ratio"])(d, float("nan")),
     "arch.stages[0].blocks[1].expand_ratio"),
    ("zero mid channels", lambda d: _set(["stages", 0, "blocks", 0, "mid_channels"])(d, 0),
     "arch.stages[0].blocks[0].mid_channels"),
    ("wrong format", lambda d: _set(["format"])(d, "tinyml-arch/2"), "arch.format"),
    ("stem not an object", lambda d: _set(["stem"])(d, 8), "arch.stem"),
    ("zero feature mix", lambda d: _set(["feature_mix_channels"])(d, 0), "arch.feature_mix_channels"),
    ("meta not an object", lambda d: _set(["meta"])(d, [1]), "arch.meta"),
    ("resolution below 8", lambda d: _set(["resolution"])(d, 4), "arch.resolution"),
]


@pytest.mark.parametrize(("mutate", "where"), [(m, w) for _, m, w in BAD], ids=[i for i, _, _ in BAD])
def test_malformed_json_names_the_field(mutate, where):
    d = small_dict()
    ArchConfig.from_dict(d)  # the unmodified config is valid
    d = copy.deepcopy(d)
    mutate(d)
    with pytest.raises(ArchError) as e:
        ArchConfig.from_dict(d)
    assert where in str(e.value)
    assert "\n" not in str(e.value)  # one line


def test_where_prefix_is_the_file(tmp_path):
    d = small_dict()
    d["stages"][1]["blocks"][0]["kernel_size"] = 4
    p = tmp_path / "bad-arch.json"
    p.write_text(json.dumps(d))
    with pytest.raises(ArchError) as e:
        ArchConfig.load(p)
    assert f"{p}.stages[1].blocks[0].kernel_size" in str(e.value)


def test_invalid_json_text_gives_line_and_column():
    # Missing comma after 64: the parser stops at the '"' of "stem" on line 3, column 3.
    text = '{\n  "resolution": 64\n  "stem": {}\n}'
    with pytest.raises(ArchError) as e:
        ArchConfig.from_json(text, where="m.json")
    msg = str(e.value)
    assert msg.startswith("m.json") and "line 3" in msg and "column 3" in msg


def test_mcunet_schema_is_pointed_to_the_converter():
    with pytest.raises(ArchError, match="from_mcunet_config"):
        ArchConfig.from_dict({"first_conv": {}, "blocks": []})


def test_non_object_is_rejected():
    with pytest.raises(ArchError, match="JSON object"):
        ArchConfig.from_json("[1, 2]")


@pytest.mark.parametrize("resolution", [8, 16])
def test_resolution_too_small_for_the_stride2_layers(resolution):
    """Five stride-2 layers divide the side by 32: at R=8 (and R=16) a stride-2 conv ends up
    applied to a 1x1 map (8 -> 4 -> 2 -> 1 -> 1 -> 1), which no real network does.
    The validator's own message promises this check ("too small for N stride-2 layers")."""
    d = mcunet_layout(resolution)
    with pytest.raises(ArchError, match="resolution"):
        ArchConfig.from_dict(d)


@pytest.mark.parametrize("resolution", [32, 48, 176])
def test_resolution_large_enough_is_accepted(resolution):
    # 32 / 2**5 = 1: every stride-2 layer halves a map of side >= 2.
    a = ArchConfig.from_dict(mcunet_layout(resolution))
    assert a.resolution == resolution


# ----------------------------------------------------------------------------- make_divisible
@pytest.mark.parametrize(("value", "divisor", "expected"), [
    (12, 8, 16),     # int(12 + 4) // 8 * 8 = 16
    (20, 8, 24),     # int(24) // 8 * 8 = 24
    (9.6, 8, 16),    # int(13.6) // 8 * 8 = 8 < 0.9 * 9.6 = 8.64 -> 8 + 8 = 16
    (19.2, 8, 24),   # int(23.2) // 8 * 8 = 16 < 17.28 -> 24
    (4, 8, 8),       # rounds to 8 (int(8) // 8 * 8), and min_value = divisor = 8
    (1, 8, 8),       # rounds to 0 -> min_value 8
    (16, 8, 16),     # already a multiple
    (27.9, 8, 32),   # int(31.9) = 31 -> 24 < 25.11 -> 32
    (28, 8, 32),     # int(32) -> 32
    (14.4, 8, 16),   # int(18.4) -> 16 >= 12.96
    (115.2, 8, 112),  # int(119.2) -> 112 >= 103.68
    (10, 4, 12),     # int(12) // 4 * 4 = 12
    (9, 4, 12),      # int(11) // 4 * 4 = 8 < 0.9 * 9 = 8.1 -> 8 + 4 = 12
])
def test_make_divisible(value, divisor, expected):
    assert make_divisible(value, divisor) == expected
    assert make_divisible(value, divisor) % divisor == 0


def test_make_divisible_min_value_and_bounds():
    assert make_divisible(3, 8, min_value=16) == 16
    for v in np.linspace(1, 400, 997):
        m = make_divisible(float(v), 8)
        assert m % 8 == 0 and m >= 8
        assert m >= 0.9 * v            # never more than 10% below
        # nearest multiple is <= v + 4; the 10% bump adds 8 only when that was < 0.9 v
        assert m <= max(8, v + 8)


# ----------------------------------------------------------------------------- derived structure
def _check_blocks(arch: ArchConfig) -> None:
    blocks = list(arch.blocks())
    assert len(blocks) == 1 + sum(arch.depths)
    b0 = blocks[0]
    assert (b0.index, b0.stage, b0.in_channels, b0.mid_channels, b0.out_channels, b0.stride) == \
        (0, -1, arch.stem_channels, arch.stem_channels, arch.first_channels, 1)
    assert b0.kernel_size == arch.first_kernel and not b0.expand and not b0.residual
    i, cin = 1, arch.first_channels
    for s, st in enumerate(arch.stages):
        for j, bc in enumerate(st.blocks):
            b = blocks[i]
            assert (b.index, b.stage, b.in_channels, b.out_channels, b.kernel_size) == \
                (i, s, cin, st.out_channels, bc.kernel_size)
            if j == 0:  # stage-first block: carries the stride, no shortcut
                assert b.stride == st.stride and not b.residual
            else:
                assert b.stride == 1 and b.residual and b.in_channels == b.out_channels
            expected_mid = bc.mid_channels if bc.mid_channels is not None else \
                (cin if bc.expand_ratio == 1 else make_divisible(round(cin * bc.expand_ratio), 8))
            assert b.mid_channels == expected_mid
            assert b.expand == (expected_mid != cin or bc.expand_ratio != 1)
            cin, i = st.out_channels, i + 1


@pytest.mark.parametrize("name", ZOO)
def test_blocks_enumeration_zoo(name):
    _check_blocks(load_zoo(name))


def test_blocks_enumeration_hand():
    a = ArchConfig.from_dict(small_dict())
    blocks = list(a.blocks())
    # stem 8 -> first 8 -> [16 (s2, e3 -> mid 24), 16 (e4 -> mid 64, residual)] -> [24 (s2, e6 -> 96)]
    got = [(b.in_channels, b.mid_channels, b.out_channels, b.kernel_size, b.stride, b.expand, b.residual)
           for b in blocks]
    assert got == [(8, 8, 8, 3, 1, False, False),
                   (8, 24, 16, 3, 2, True, False),
                   (16, 64, 16, 5, 1, True, True),
                   (16, 96, 24, 7, 2, True, False)]
    _check_blocks(a)


def test_expand_ratio_one_later_block_has_no_expansion():
    d = small_dict()
    d["stages"][0]["blocks"][1]["expand_ratio"] = 1
    b = list(ArchConfig.from_dict(d).blocks())[2]
    assert (b.mid_channels, b.expand, b.residual) == (16, False, True)


def test_spatial_sizes_mcunet_in3():
    a = load_zoo("mcunet-in3")
    sizes = a.spatial_sizes()
    assert a.resolution == 176
    assert sizes[0] == 88          # (176 + 2*1 - 3) // 2 + 1 = 88
    assert sizes[-1] == 6          # 88 -> 44 -> 22 -> 11 -> 11 -> 6 -> 6
    # By hand: "same" padding with stride s gives ceil(h / s); the first block keeps 88.
    expected, h = [88, 88], 88
    for st in a.stages:
        h = math.ceil(h / st.stride)
        expected += [h] * len(st.blocks)
    assert sizes == expected
    assert len(sizes) == 2 + sum(a.depths)


@pytest.mark.parametrize(("size", "k", "s", "out"), [
    (176, 3, 2, 88), (88, 7, 2, 44), (11, 5, 2, 6), (11, 3, 1, 11), (1, 3, 2, 1), (7, 7, 1, 7), (5, 1, 2, 3)])
def test_conv_out(size, k, s, out):
    assert conv_out(size, k, s) == out


def test_summary_and_last_channels():
    a = ArchConfig.from_dict(small_dict())
    assert a.last_channels == 24
    assert "R=64" in a.summary() and "depths=[2, 1]" in a.summary()
    d = small_dict()
    d["feature_mix_channels"] = 128
    assert ArchConfig.from_dict(d).last_channels == 128


def test_dataclass_built_by_hand_validates():
    a = ArchConfig(resolution=32, stem_channels=8, first_channels=8,
                   stages=(StageConfig(16, 2, (BlockConfig(3, 3),)),), num_classes=2)
    validate(a)
    bad = ArchConfig(resolution=32, stem_channels=8, first_channels=8,
                     stages=(StageConfig(16, 2, (BlockConfig(4, 3),)),), num_classes=2)
    with pytest.raises(ArchError, match="kernel_size"):
        validate(bad)
