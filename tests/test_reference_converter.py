"""The MCUNet/OFA ``net.config`` converter: every public reference config converts faithfully, the zoo
is exactly what the converter makes of its sources, and malformed configs are rejected by block."""

import copy
import csv
import json
from pathlib import Path

import pytest

from search_spaces.arch import ArchConfig, ArchError, make_divisible
from search_spaces.reference import from_mcunet_config, is_mcunet_config, load_mcunet_json
from search_spaces.zoo import ZOO_DIR, load_zoo, zoo_names
from tinyengine.cost import network_costs

# ../shared beside the repository (the CI layout); resolved from this file, not from the cwd.
REF_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference-models"

REF_FILES = [
    "mbv2-w0.3-r80_imagenet", "mbv2-w0.35-r144_imagenet", "mcunet-10fps_imagenet",
    "mcunet-256kb-1mb-int4_imagenet", "mcunet-256kb-1mb_imagenet", "mcunet-320kb-1mb-int4_imagenet",
    "mcunet-320kb-1mb_imagenet", "mcunet-512kb-2mb-int4_imagenet", "mcunet-512kb-2mb_imagenet",
    "mcunet-5fps_imagenet", "mcunet-5fps_vww_RECONSTRUCTED", "proxyless-w0.25-r112_imagenet",
    "proxyless-w0.3-r176_imagenet", "proxyless_mobile",
]

# Our zoo name -> the reference file it was converted from (net_name column of published_numbers.csv).
ZOO_SOURCES = {
    "mcunet-in0": "mcunet-10fps_imagenet", "mcunet-in1": "mcunet-5fps_imagenet",
    "mcunet-in2": "mcunet-256kb-1mb_imagenet", "mcunet-in3": "mcunet-320kb-1mb_imagenet",
    "mcunet-in4": "mcunet-512kb-2mb_imagenet", "mcunet-vww1": "mcunet-5fps_vww_RECONSTRUCTED",
    "mbv2-w0.35": "mbv2-w0.35-r144_imagenet", "proxyless-w0.3": "proxyless-w0.3-r176_imagenet",
}


def ref_path(stem: str) -> Path:
    p = REF_DIR / f"{stem}.json"
    assert p.is_file(), f"reference config missing: {p} (tests expect ../shared beside the repo)"
    return p


def raw(stem: str) -> dict:
    return json.loads(ref_path(stem).read_text())


def _is_zero(b: dict) -> bool:
    m = b["mobile_inverted_conv"]
    return m is None or m.get("name") == "ZeroLayer"


def test_reference_dir_holds_the_expected_configs():
    assert REF_DIR.is_dir(), f"{REF_DIR} not found"
    present = sorted(p.stem for p in REF_DIR.glob("*.json"))
    assert set(REF_FILES) <= set(present)
    for p in sorted(REF_DIR.glob("*.json")):  # any config added later must convert too
        arch = load_mcunet_json(p)
        assert sum(arch.depths) >= 1 and arch.num_classes >= 1


@pytest.mark.parametrize("stem", REF_FILES)
def test_every_reference_config_converts_faithfully(stem):
    d = raw(stem)
    assert is_mcunet_config(d)
    arch = load_mcunet_json(ref_path(stem))
    assert arch.name == stem
    res = d["resolution"][0] if isinstance(d["resolution"], list) else d["resolution"]
    fc = d["first_conv"]
    assert (arch.resolution, arch.in_channels, arch.stem_channels, arch.stem_kernel, arch.stem_stride) == \
        (res, fc["in_channels"], fc["out_channels"], fc["kernel_size"], fc["stride"])
    assert arch.num_classes == d["classifier"]["out_features"]
    fm = d.get("feature_mix_layer")
    assert arch.feature_mix_channels == (fm["out_channels"] if fm else None)
    if fm:
        assert arch.last_channels == fm["out_channels"] == d["classifier"]["in_features"]

    # Block by block, in order, with ZeroLayer blocks skipped.
    kept = [b for b in d["blocks"] if not _is_zero(b)]
    ours = list(arch.blocks())
    assert len(ours) == len(kept)
    assert sum(arch.depths) + 1 == len(kept)
    for b, o in zip(kept, ours):
        m = b["mobile_inverted_conv"]
        e = m["expand_ratio"]
        mid = m.get("mid_channels") or (m["in_channels"] if e == 1 else round(m["in_channels"] * e))
        assert (o.in_channels, o.out_channels, o.kernel_size, o.stride, o.mid_channels, o.residual) == \
            (m["in_channels"], m["out_channels"], m["kernel_size"], m["stride"], mid,
             b["shortcut"] is not None), (stem, o.index)
    # Our own format round trips.
    assert ArchConfig.from_json(arch.to_json()) == arch


def _published_rows() -> dict[str, dict]:
    rows = {}
    with open(REF_DIR / "published_numbers.csv", newline="") as f:
        for r in csv.DictReader(f):
            stem = r["net_name(file stem)"]
            if stem == "mcunet-5fps_vww":
                stem = "mcunet-5fps_vww_RECONSTRUCTED"  # README: rebuilt from the vww tflite
            rows[stem] = r
    return rows


def _decimals(s: str) -> int:
    return len(s.split(".")[1]) if "." in s else 0


@pytest.mark.parametrize("stem", REF_FILES)
def test_reference_macs_and_params_match_published(stem):
    rows = _published_rows()
    if stem in rows:
        macs_s, params_s = rows[stem]["MACs_M"], rows[stem]["params_M"]
    else:
        assert stem == "proxyless_mobile"
        macs_s, params_s = "320", "4.1"  # ProxylessNAS paper (mobile setting): 320M MACs, 4.1M params
    c = network_costs(load_mcunet_json(ref_path(stem)))
    assert round(c.macs / 1e6, _decimals(macs_s)) == float(macs_s)
    assert round(c.params / 1e6, _decimals(params_s)) == float(params_s)


def test_zoo_names_cover_the_sources():
    assert sorted(ZOO_SOURCES) == zoo_names()


@pytest.mark.parametrize("name", sorted(ZOO_SOURCES))
def test_zoo_equals_a_fresh_conversion(name):
    stem = ZOO_SOURCES[name]
    zoo = load_zoo(name)
    fresh = load_mcunet_json(ref_path(stem))
    strip = ("name", "meta", "width_mult")
    a = {k: v for k, v in zoo.to_dict().items() if k not in strip}
    b = {k: v for k, v in fresh.to_dict().items() if k not in strip}
    assert a == b
    assert zoo.meta["source"].startswith(f"{stem}.json")
    # The stored file itself (not just its parse) carries the same structure.
    stored = json.loads((ZOO_DIR / f"{name}.json").read_text())
    assert {k: v for k, v in stored.items() if k not in strip} == b


def test_zero_layers_are_dropped_from_proxyless():
    d = raw("proxyless-w0.3-r176_imagenet")
    zero = [i for i, b in enumerate(d["blocks"]) if _is_zero(b)]
    assert zero  # this file has skipped blocks
    arch = load_mcunet_json(ref_path("proxyless-w0.3-r176_imagenet"))
    assert 1 + sum(arch.depths) == len(d["blocks"]) - len(zero)


# ----------------------------------------------------------------------------- hand-made configs
def mb(cin, cout, k, s, e, shortcut=False, mid=None):
    return {"name": "MobileInvertedResidualBlock",
            "mobile_inverted_conv": {"name": "MBInvertedConvLayer", "in_channels": cin, "out_channels": cout,
                                     "kernel_size": k, "stride": s, "expand_ratio": e, "mid_channels": mid,
                                     "act_func": "relu6", "use_se": False},
            "shortcut": {"name": "IdentityLayer", "in_channels": [cin], "out_channels": [cout]}
            if shortcut else None}


def zero_block(c):
    return {"name": "MobileInvertedResidualBlock",
            "mobile_inverted_conv": {"name": "ZeroLayer", "stride": 1},
            "shortcut": {"name": "IdentityLayer", "in_channels": [c], "out_channels": [c]}}


def small_config() -> dict:
    """stem 3->16 s2, first 16->8, stage [8->16 s2 e3 k3, 16->16 e4 k5 +sc], stage [16->24 s2 e6 k7]."""
    return {
        "name": "ProxylessNASNets",
        "first_conv": {"name": "ConvLayer", "in_channels": 3, "out_channels": 16, "kernel_size": 3, "stride": 2},
        "blocks": [mb(16, 8, 3, 1, 1), mb(8, 16, 3, 2, 3), mb(16, 16, 5, 1, 4, shortcut=True),
                   mb(16, 24, 7, 2, 6)],
        "feature_mix_layer": None,
        "classifier": {"name": "LinearLayer", "in_features": 24, "out_features": 10},
        "resolution": 64,
    }


def test_hand_config_converts_to_the_expected_arch():
    arch = from_mcunet_config(small_config(), name="tiny")
    expected = ArchConfig.from_dict({
        "name": "tiny", "resolution": 64, "in_channels": 3,
        "stem": {"out_channels": 16, "kernel_size": 3, "stride": 2},
        "first_block": {"out_channels": 8, "kernel_size": 3},
        "stages": [{"out_channels": 16, "stride": 2, "blocks": [{"kernel_size": 3, "expand_ratio": 3},
                                                               {"kernel_size": 5, "expand_ratio": 4}]},
                   {"out_channels": 24, "stride": 2, "blocks": [{"kernel_size": 7, "expand_ratio": 6}]}],
        "num_classes": 10})
    assert arch == expected


def test_hand_config_variants():
    d = small_config()
    d["resolution"] = [96]                       # OFA writes a list of resolutions
    d["blocks"].insert(3, zero_block(16))         # skipped block inside stage 0
    d["blocks"][2]["mobile_inverted_conv"]["mid_channels"] = 72   # not make_divisible(64): kept
    d["blocks"][1]["mobile_inverted_conv"]["mid_channels"] = 24   # == make_divisible(8*3): dropped
    d["feature_mix_layer"] = {"name": "ConvLayer", "in_channels": 24, "out_channels": 64}
    d["classifier"]["in_features"] = 64
    arch = from_mcunet_config(d)
    assert arch.resolution == 96 and arch.depths == (2, 1) and arch.feature_mix_channels == 64
    assert arch.stages[0].blocks[0].mid_channels is None
    assert arch.stages[0].blocks[1].mid_channels == 72
    assert [b.mid_channels for b in arch.blocks()] == [16, 24, 72, make_divisible(16 * 6)]
    assert from_mcunet_config(d, resolution=128).resolution == 128
    # A block whose conv is null (not just named ZeroLayer) is skipped too.
    d2 = small_config()
    z = zero_block(16)
    z["mobile_inverted_conv"] = None
    d2["blocks"].insert(3, z)
    assert from_mcunet_config(d2).depths == (2, 1)


def _expect_error(d, *texts):
    with pytest.raises(ArchError) as e:
        from_mcunet_config(d, where="cfg")
    for t in texts:
        assert t in str(e.value), str(e.value)


def test_shortcut_with_stride_2_names_the_block():
    d = small_config()
    d["blocks"][2]["mobile_inverted_conv"]["stride"] = 2
    _expect_error(d, "cfg.blocks[2]", "shortcut")


def test_shortcut_with_channel_change_names_the_block():
    d = small_config()
    d["blocks"][3] = mb(16, 24, 7, 2, 6, shortcut=True)  # 16 -> 24 with an identity shortcut
    d["blocks"][3]["mobile_inverted_conv"]["stride"] = 1
    _expect_error(d, "cfg.blocks[3]", "shortcut")


def test_shortcut_right_after_the_first_block():
    d = small_config()
    d["blocks"][1] = mb(8, 8, 3, 1, 3, shortcut=True)
    d["blocks"][2] = mb(8, 16, 5, 2, 4)
    _expect_error(d, "cfg.blocks[1]")


@pytest.mark.parametrize(("mutate", "texts"), [
    (lambda d: d["blocks"][2]["mobile_inverted_conv"].__setitem__("in_channels", 24),
     ("cfg.blocks[2].mobile_inverted_conv.in_channels",)),
    (lambda d: d["blocks"][1]["mobile_inverted_conv"].__setitem__("use_se", True), ("cfg.blocks[1]", "squeeze")),
    (lambda d: d["blocks"][1]["mobile_inverted_conv"].__setitem__("act_func", "h_swish"),
     ("cfg.blocks[1]", "h_swish")),
    (lambda d: d["blocks"][2]["mobile_inverted_conv"].__setitem__("name", "MBConvLayer"),
     ("cfg.blocks[2]", "MBConvLayer")),
    (lambda d: d["blocks"][0]["mobile_inverted_conv"].__setitem__("expand_ratio", 6), ("cfg.blocks[0]",)),
    (lambda d: d["blocks"][0]["mobile_inverted_conv"].__setitem__("stride", 2), ("cfg.blocks[0]", "stride")),
    (lambda d: d["blocks"][0].__setitem__("shortcut", {"name": "IdentityLayer"}), ("cfg.blocks[0]",)),
    (lambda d: d["blocks"].__setitem__(slice(1, None), []), ("cfg.blocks",)),
    (lambda d: d.pop("resolution"), ("resolution",)),
    (lambda d: d.pop("classifier"), ("classifier",)),
    (lambda d: d["blocks"][3]["mobile_inverted_conv"].pop("kernel_size"), ("cfg.blocks[3]", "kernel_size")),
    (lambda d: d["blocks"][3]["mobile_inverted_conv"].__setitem__("kernel_size", 4), ("kernel_size",)),
    (lambda d: d["blocks"].insert(2, {**zero_block(16), "shortcut": None}), ("cfg.blocks[2]", "ZeroLayer")),
], ids=["in-mismatch", "se", "hswish", "layer-name", "first-expand", "first-stride", "first-shortcut",
        "too-few-blocks", "no-resolution", "no-classifier", "no-kernel", "even-kernel", "zero-no-shortcut"])
def test_malformed_configs(mutate, texts):
    d = copy.deepcopy(small_config())
    mutate(d)
    _expect_error(d, *texts)


# Validation gaps: inconsistent or incomplete configs that the converter must reject (it checks
# in_channels for every later block, so the first block, feature mix and classifier should match too).
@pytest.mark.parametrize(("mutate", "texts"), [
    (lambda d: d["blocks"][0]["mobile_inverted_conv"].__setitem__("in_channels", 24), ("cfg.blocks[0]",)),
    (lambda d: d["blocks"][0]["mobile_inverted_conv"].pop("out_channels"), ("cfg.blocks[0]", "out_channels")),
    (lambda d: d["blocks"][0]["mobile_inverted_conv"].pop("kernel_size"), ("cfg.blocks[0]", "kernel_size")),
    (lambda d: d["classifier"].__setitem__("in_features", 99), ("cfg.classifier",)),
], ids=["first-in-vs-stem", "first-no-out", "first-no-kernel", "classifier-in"])
def test_inconsistent_first_block_and_classifier_are_rejected(mutate, texts):
    d = copy.deepcopy(small_config())
    mutate(d)
    _expect_error(d, *texts)


def test_load_mcunet_json_bad_file(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{"first_conv": {')
    with pytest.raises(ArchError, match="broken.json"):
        load_mcunet_json(p)
    with pytest.raises(ArchError, match="missing.json"):
        load_mcunet_json(tmp_path / "missing.json")
