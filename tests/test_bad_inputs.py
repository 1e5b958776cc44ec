"""Bad inputs across both command lines, as a table: every case must end in exactly one line on stderr
that names the thing at fault, a non-zero exit status, no traceback, and no file changed anywhere in
the test's folder (inputs untouched, no output folder left behind).

Cases run in-process (``tinyml_cli.engine.main`` / ``tinyml_cli.nas.main``) and stop before any training,
quantisation or firmware build, so the whole table takes seconds.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import flat

# ----------------------------------------------------------------------------- inputs the cases mutate
OURS = {
    "format": "tinyml-arch/1", "name": "tiny", "resolution": 32, "in_channels": 3,
    "stem": {"out_channels": 8, "kernel_size": 3, "stride": 2},
    "first_block": {"out_channels": 8, "kernel_size": 3},
    "stages": [{"out_channels": 16, "stride": 2, "blocks": [{"kernel_size": 3, "expand_ratio": 3},
                                                           {"kernel_size": 5, "expand_ratio": 4}]}],
    "num_classes": 10,
}


def _mb(cin, cout, k, s, e, shortcut=False):
    return {"name": "MobileInvertedResidualBlock",
            "mobile_inverted_conv": {"name": "MBInvertedConvLayer", "in_channels": cin, "out_channels": cout,
                                     "kernel_size": k, "stride": s, "expand_ratio": e, "act_func": "relu6"},
            "shortcut": {"name": "IdentityLayer"} if shortcut else None}


NETCFG = {
    "name": "ProxylessNASNets",
    "first_conv": {"name": "ConvLayer", "in_channels": 3, "out_channels": 16, "kernel_size": 3, "stride": 2},
    "blocks": [_mb(16, 8, 3, 1, 1), _mb(8, 16, 3, 2, 3), _mb(16, 16, 5, 1, 4, shortcut=True), _mb(16, 24, 7, 2, 6)],
    "feature_mix_layer": None,
    "classifier": {"name": "LinearLayer", "in_features": 24, "out_features": 10},
    "resolution": 64,
}


def _set(d: dict, path: str, value) -> dict:
    """A deep copy of ``d`` with ``path`` ('a.b.0.c'; '-' deletes the key) set to ``value``."""
    d = copy.deepcopy(d)
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    obj = d
    for k in keys[:-1]:
        obj = obj[k]
    if value == "-":
        del obj[keys[-1]]
    else:
        obj[keys[-1]] = value
    return d


def ours(path, value):
    return lambda t: (t / "m.json").write_text(json.dumps(_set(OURS, path, value)))


def netcfg(path, value):
    return lambda t: (t / "net.config").write_text(json.dumps(_set(NETCFG, path, value)))


def text(name, data):
    def make(t):
        p = t / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data) if isinstance(data, bytes) else p.write_text(data)
    return make


def both(*makers):
    def make(t):
        for m in makers:
            m(t)
    return make


def images(*classes, split=None, n=1, size=4):
    """An ImageFolder: ``classes`` (names; 'name:0' for an empty class folder) under t/data[/split]."""
    def make(t):
        from PIL import Image
        root = t / "data" / split if split else t / "data"
        for c in classes:
            name, _, count = c.partition(":")
            (root / name).mkdir(parents=True, exist_ok=True)
            for i in range(n if not count else int(count)):
                Image.new("L", (size, size), 40 * i).save(root / name / f"{i}.png")
    return make


def search_folder(arch=OURS, graph=True):
    def make(t):
        (t / "sd").mkdir()
        (t / "sd" / "arch.json").write_text(json.dumps(arch))
        if graph:
            (t / "sd" / "model_int8.npz").write_bytes(b"not read by these cases")
    return make


def owned(tool, files: dict[str, bytes], folder="o", in_progress=True):
    """A folder claimed by ``tool`` (an interrupted run) holding ``files``."""
    def make(t):
        from tinyengine.outdir import claim
        claim(t / folder, tool, in_progress=in_progress)
        for rel, data in files.items():
            (t / folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (t / folder / rel).write_bytes(data)
    return make


def truncated_checkpoint():
    import io

    import torch
    buf = io.BytesIO()
    torch.save({"model": {"w": torch.zeros(64)}}, buf)
    return buf.getvalue()[: len(buf.getvalue()) // 2]


def deep_json(n=100_000):
    return "[" * n + "]" * n


SPACE = ["space", "--samples", "2", "--widths", "0.3", "--resolutions", "48"]
SEARCH = ["search", "--sram", "64KB", "--flash", "256KB", "--threads", "1", "--no-progress"]
GEN = ["gen", "--board", "qemu-m4"]

# (id, cli, argv ({t} = the test folder), setup, exit status, texts the one error line must contain)
CASES = [
    # --- our architecture JSON (tinyengine analyze)
    ("arch-deep-nesting", "te", ["analyze", "{t}/m.json"], text("m.json", deep_json()), 2, ["m.json", "nested too deeply"]),
    ("arch-not-json", "te", ["analyze", "{t}/m.json"], text("m.json", "{oops"), 2, ["m.json", "not valid JSON"]),
    ("arch-not-utf8", "te", ["analyze", "{t}/m.json"], text("m.json", b"\xff\xfe\x00garbage"), 2, ["m.json", "cannot read"]),
    ("arch-missing-file", "te", ["analyze", "{t}/nope.json"], None, 2, ["nope.json", "no such"]),
    ("arch-unknown-zoo", "te", ["analyze", "mcunet-in9"], None, 2, ["mcunet-in9", "unknown zoo model"]),
    ("arch-top-list", "te", ["analyze", "{t}/m.json"], text("m.json", "[1, 2]"), 2, ["m.json", "must be a JSON object"]),
    ("arch-channels-1e9", "te", ["analyze", "{t}/m.json"], ours("stages.0.out_channels", 10 ** 9), 2,
     ["stages[0].out_channels", "8192"]),
    ("arch-expand-1e300", "te", ["analyze", "{t}/m.json"], ours("stages.0.blocks.0.expand_ratio", 1e300), 2,
     ["stages[0].blocks[0].expand_ratio", "at most"]),
    ("arch-expand-negative", "te", ["analyze", "{t}/m.json"], ours("stages.0.blocks.0.expand_ratio", -1), 2,
     ["expand_ratio", "positive"]),
    ("arch-kernel-3.7", "te", ["analyze", "{t}/m.json"], ours("stages.0.blocks.1.kernel_size", 3.7), 2,
     ["stages[0].blocks[1].kernel_size", "integer", "3.7"]),
    ("arch-kernel-even", "te", ["analyze", "{t}/m.json"], ours("stages.0.blocks.1.kernel_size", 4), 2,
     ["kernel_size", "odd"]),
    ("arch-kernel-13", "te", ["analyze", "{t}/m.json"], ours("stages.0.blocks.1.kernel_size", 13), 2,
     ["kernel_size", "1..11"]),
    ("arch-stride-3", "te", ["analyze", "{t}/m.json"], ours("stages.0.stride", 3), 2, ["stages[0].stride", "[1, 2]"]),
    ("arch-stem-stride-3", "te", ["analyze", "{t}/m.json"], ours("stem.stride", 3), 2, ["stem.stride"]),
    ("arch-resolution-100000", "te", ["analyze", "{t}/m.json"], ours("resolution", 100000), 2, ["resolution", "8..1024"]),
    ("arch-resolution-abc", "te", ["analyze", "{t}/m.json"], ours("resolution", "abc"), 2,
     ["m.json.resolution", "integer", "'abc'"]),
    ("arch-num-classes-0", "te", ["analyze", "{t}/m.json"], ours("num_classes", 0), 2, ["num_classes"]),
    ("arch-in-channels-0", "te", ["analyze", "{t}/m.json"], ours("in_channels", 0), 2, ["in_channels"]),
    ("arch-mid-channels-1e6", "te", ["analyze", "{t}/m.json"], ours("stages.0.blocks.0.mid_channels", 10 ** 6), 2,
     ["mid_channels"]),
    ("arch-huge-feature-map", "te", ["analyze", "{t}/m.json"],
     lambda t: (t / "m.json").write_text(json.dumps(_set(_set(OURS, "resolution", 1024), "stem.out_channels", 8192))),
     2, ["m.json", "feature map"]),
    ("arch-empty-stages", "te", ["analyze", "{t}/m.json"], ours("stages", []), 2, ["stages"]),
    ("arch-unknown-field", "te", ["analyze", "{t}/m.json"], ours("colour", "blue"), 2, ["colour"]),
    ("arch-missing-num-classes", "te", ["analyze", "{t}/m.json"], ours("num_classes", "-"), 2, ["num_classes", "missing"]),
    # --- MCUNet net.config
    ("netcfg-stride-3", "te", ["analyze", "{t}/net.config"], netcfg("blocks.1.mobile_inverted_conv.stride", 3), 2,
     ["net.config.blocks[1].mobile_inverted_conv.stride"]),
    ("netcfg-expand-0", "te", ["analyze", "{t}/net.config"], netcfg("blocks.1.mobile_inverted_conv.expand_ratio", 0),
     2, ["blocks[1].mobile_inverted_conv.expand_ratio", "positive"]),
    ("netcfg-in-channels-0", "te", ["analyze", "{t}/net.config"], netcfg("first_conv.in_channels", 0), 2,
     ["first_conv.in_channels"]),
    ("netcfg-out-features-0", "te", ["analyze", "{t}/net.config"], netcfg("classifier.out_features", 0), 2,
     ["classifier.out_features"]),
    ("netcfg-out-features-1e12", "te", ["analyze", "{t}/net.config"], netcfg("classifier.out_features", 10 ** 12), 2,
     ["classifier.out_features", "100000"]),
    ("netcfg-resolution-100000", "te", ["analyze", "{t}/net.config"], netcfg("resolution", 100000), 2,
     ["net.config.resolution"]),
    ("netcfg-resolution-empty-list", "te", ["analyze", "{t}/net.config"], netcfg("resolution", []), 2,
     ["net.config.resolution", "list"]),
    ("netcfg-kernel-3.7", "te", ["analyze", "{t}/net.config"], netcfg("blocks.3.mobile_inverted_conv.kernel_size", 3.7),
     2, ["net.config.blocks[3].mobile_inverted_conv.kernel_size", "integer", "3.7"]),
    ("netcfg-kernel-abc", "te", ["analyze", "{t}/net.config"], netcfg("blocks.3.mobile_inverted_conv.kernel_size", "abc"),
     2, ["blocks[3].mobile_inverted_conv.kernel_size", "'abc'"]),
    ("netcfg-expand-string", "te", ["analyze", "{t}/net.config"],
     netcfg("blocks.1.mobile_inverted_conv.expand_ratio", "6"), 2, ["blocks[1].mobile_inverted_conv.expand_ratio"]),
    ("netcfg-blocks-dict", "te", ["analyze", "{t}/net.config"], netcfg("blocks", {"a": 1}), 2,
     ["net.config.blocks", "list"]),
    ("netcfg-block-string", "te", ["analyze", "{t}/net.config"], netcfg("blocks.2", "MBConv"), 2,
     ["net.config.blocks[2]", "object"]),
    ("netcfg-conv-list", "te", ["analyze", "{t}/net.config"], netcfg("blocks.2.mobile_inverted_conv", [1, 2]), 2,
     ["blocks[2].mobile_inverted_conv", "object"]),
    ("netcfg-no-classifier", "te", ["analyze", "{t}/net.config"], netcfg("classifier", "-"), 2,
     ["classifier", "missing"]),
    ("netcfg-feature-mix-number", "te", ["analyze", "{t}/net.config"], netcfg("feature_mix_layer", 5), 2,
     ["feature_mix_layer", "object"]),
    ("netcfg-first-conv-null", "te", ["analyze", "{t}/net.config"], netcfg("first_conv", None), 2,
     ["first_conv", "object"]),
    ("netcfg-shortcut-string", "te", ["analyze", "{t}/net.config"], netcfg("blocks.2.shortcut", "yes"), 2,
     ["blocks[2].shortcut"]),
    ("netcfg-missing-kernel", "te", ["analyze", "{t}/net.config"], netcfg("blocks.3.mobile_inverted_conv.kernel_size", "-"),
     2, ["blocks[3].mobile_inverted_conv", "kernel_size", "missing"]),
    ("netcfg-deep-nesting", "te", ["analyze", "{t}/net.config"], text("net.config", deep_json()), 2,
     ["net.config", "nested too deeply"]),
    # --- analyze output files and options
    ("analyze-json-is-dir", "te", ["analyze", "mcunet-vww1", "--json", "{t}/d"], text("d/keep", "x"), 2,
     ["--json", "is a folder"]),
    ("analyze-json-parent-is-file", "te", ["analyze", "mcunet-vww1", "--json", "{t}/f/a.json"], text("f", "x"), 2,
     ["--json", "not a folder"]),
    ("analyze-plot-unwritable", "te", ["analyze", "mcunet-vww1", "--plot", "/proc/tinyml-nope/p.png"], None, 2,
     ["--plot", "cannot create"]),
    ("analyze-bogus-board", "te", ["analyze", "mcunet-vww1", "--board", "bogus"], None, 2, ["bogus"]),
    ("analyze-patches-0", "te", ["analyze", "mcunet-vww1", "--patches", "0"], None, 2, ["--patches"]),
    # --- gen
    ("gen-out-is-file", "te", [*GEN, "{t}/m.json", "--out", "{t}/f"], both(ours("name", "tiny"), text("f", "x")), 2,
     ["--out", "not a folder"]),
    ("gen-foreign-makefile", "te", [*GEN, "{t}/m.json", "--out", "{t}/p"],
     both(ours("name", "tiny"), text("p/Makefile", "all:\n\techo mine\n")), 2, ["p/Makefile", "not written by", "--force"]),
    ("gen-foreign-main-c", "te", [*GEN, "{t}/m.json", "--out", "{t}/p"],
     both(ours("name", "tiny"), owned("tinyengine gen", {"src/main.c": b"int main(void){return 0;}\n"}, "p", False)),
     2, ["src/main.c", "not written by"]),
    ("gen-other-tool-folder", "te", [*GEN, "{t}/m.json", "--out", "{t}/o"],
     both(ours("name", "tiny"), owned("tinynas search", {"report.md": b"# r\n"})), 2,
     ["holds the output of `tinynas search`"]),
    ("gen-out-unwritable", "te", [*GEN, "{t}/m.json", "--out", "/proc/tinyml-nope/p"], ours("name", "tiny"), 2,
     ["--out", "cannot create"]),
    ("gen-weights-missing", "te", [*GEN, "{t}/m.json", "--out", "{t}/p", "--weights", "{t}/nope.pt"],
     ours("name", "tiny"), 2, ["--weights", "nope.pt", "no such file"]),
    ("gen-weights-truncated", "te", [*GEN, "{t}/m.json", "--out", "{t}/p", "--weights", "{t}/w.pt"],
     both(ours("name", "tiny"), lambda t: (t / "w.pt").write_bytes(truncated_checkpoint())), 2, ["--weights", "w.pt"]),
    ("gen-calib-0", "te", [*GEN, "{t}/m.json", "--out", "{t}/p", "--calib", "0"], ours("name", "tiny"), 2,
     ["--calib", "1..1024"]),
    ("gen-calib-huge", "te", [*GEN, "{t}/m.json", "--out", "{t}/p", "--calib", "1000000000"], ours("name", "tiny"), 2,
     ["--calib"]),
    ("gen-seed-negative", "te", [*GEN, "{t}/m.json", "--out", "{t}/p", "--seed", "-1"], ours("name", "tiny"), 2,
     ["--seed"]),
    ("gen-calib-data-missing", "te", [*GEN, "{t}/m.json", "--out", "{t}/p", "--calib-data", "{t}/nope.npy"],
     ours("name", "tiny"), 2, ["--calib-data", "nope.npy"]),
    ("gen-calib-data-pickled", "te", [*GEN, "{t}/m.json", "--out", "{t}/p", "--calib-data", "{t}/x.npy"],
     both(ours("name", "tiny"), lambda t: np.save(t / "x.npy", np.array(
         [{"a": 1}], dtype=object), allow_pickle=True)), 2, ["--calib-data", "x.npy", "not a readable"]),
    ("gen-calib-data-too-few", "te", [*GEN, "{t}/m.json", "--out", "{t}/p", "--calib-data", "{t}/x.npy", "--calib", "4"],
     both(ours("name", "tiny"), lambda t: np.save(t / "x.npy", np.zeros(
         (2, 3, 32, 32), "float32"))), 2, ["--calib-data", "x.npy", "need 4"]),
    ("gen-calib-data-nan", "te", [*GEN, "{t}/m.json", "--out", "{t}/p", "--calib-data", "{t}/x.npy", "--calib", "2"],
     both(ours("name", "tiny"), lambda t: np.save(t / "x.npy", np.full(
         (2, 3, 32, 32), float("nan"), "float32"))), 2, ["--calib-data", "x.npy", "NaN"]),
    ("gen-bogus-board", "te", ["gen", "--board", "bogus", "{t}/m.json", "--out", "{t}/p"], ours("name", "tiny"), 2,
     ["bogus"]),
    ("gen-deep-json", "te", [*GEN, "{t}/m.json", "--out", "{t}/p"], text("m.json", deep_json()), 2,
     ["nested too deeply"]),
    ("gen-searchdir-weights", "te", [*GEN, "{t}/sd", "--out", "{t}/p", "--weights", "/nonexistent.pt"],
     search_folder(), 2, ["--weights", "does not apply", "sd"]),
    ("gen-searchdir-calib-0", "te", [*GEN, "{t}/sd", "--out", "{t}/p", "--calib", "0"], search_folder(), 2, ["--calib"]),
    ("gen-searchdir-calib-4", "te", [*GEN, "{t}/sd", "--out", "{t}/p", "--calib", "4"], search_folder(), 2,
     ["--calib", "does not apply"]),
    ("gen-searchdir-calib-data", "te", [*GEN, "{t}/sd", "--out", "{t}/p", "--calib-data", "/nonexistent.npy"],
     search_folder(), 2, ["--calib-data", "does not apply"]),
    ("gen-searchdir-incomplete", "te", [*GEN, "{t}/sd", "--out", "{t}/p"], search_folder(graph=False), 2,
     ["sd", "not a `tinynas search` output folder"]),
    ("gen-searchdir-bad-arch", "te", [*GEN, "{t}/sd", "--out", "{t}/p"], search_folder(arch=_set(OURS, "resolution", 3)),
     2, ["arch.json", "resolution"]),
    # --- export / deploy
    ("export-nothing", "te", ["export", "mcunet-vww1"], None, 2, ["--tflite"]),
    ("export-folder-missing", "te", ["export", "mcunet-vww1", "--tflite", "{t}/no/dir/m.tflite"], None, 2,
     ["--tflite", "does not exist"]),
    ("export-calib-0", "te", ["export", "mcunet-vww1", "--tflite", "{t}/m.tflite", "--calib", "0"], None, 2, ["--calib"]),
    ("emulate-no-project", "te", ["emulate", "{t}/nope"], None, 2, ["nope", "no such project folder"]),
    ("probe-json-is-dir", "te", ["probe", "--port", "socket://127.0.0.1:9", "--json", "{t}/d"], text("d/keep", "x"),
     2, ["--json", "is a folder"]),
    ("calibrate-out-is-dir", "te", ["calibrate", "{t}/r.json", "--board", "qemu-m4", "--out", "{t}/d"],
     text("d/keep", "x"), 2, ["--out", "is a folder"]),
    ("emulate-lowering-without-board", "te", ["emulate", "{t}/p"], text("p/lowering.json", "{}"), 2,
     ["lowering.json", "no board"]),
    ("emulate-lowering-not-json", "te", ["emulate", "{t}/p"], text("p/lowering.json", "{"), 2,
     ["lowering.json", "not valid JSON"]),
    ("calibrate-record-missing", "te", ["calibrate", "{t}/r.json", "--board", "qemu-m4", "--out", "{t}/m.json"],
     None, 2, ["r.json", "no such probe record"]),
    ("calibrate-record-not-utf8", "te", ["calibrate", "{t}/r.json", "--board", "qemu-m4", "--out", "{t}/m.json"],
     text("r.json", b"\xff\xfe\x00"), 2, ["r.json", "cannot read"]),
    ("analyze-latency-model-broken", "te", ["analyze", "mcunet-vww1", "--board", "qemu-m4", "--latency-model",
                                            "{t}/lm.json"], text("lm.json", "{"), 2, ["lm.json", "not valid JSON"]),
    # --- tinynas space
    ("space-num-classes-0", "nas", [*SPACE, "--board", "qemu-m4", "--num-classes", "0"], None, 2, ["--num-classes"]),
    ("space-num-classes-neg", "nas", [*SPACE, "--board", "qemu-m4", "--num-classes", "-3"], None, 2,
     ["--num-classes", "-3"]),
    ("space-in-channels-0", "nas", [*SPACE, "--board", "qemu-m4", "--in-channels", "0"], None, 2, ["--in-channels"]),
    ("space-top-neg", "nas", [*SPACE, "--board", "qemu-m4", "--top", "-1"], None, 2, ["--top"]),
    ("space-samples-0", "nas", [*SPACE, "--board", "qemu-m4", "--samples", "0"], None, 2, ["--samples"]),
    ("space-min-fit-2", "nas", [*SPACE, "--board", "qemu-m4", "--min-fit", "2"], None, 2, ["--min-fit"]),
    ("space-sram-huge", "nas", [*SPACE, "--sram", "99999999999999999999MB", "--flash", "1MB"], None, 2,
     ["--sram", "4 GB"]),
    ("space-flash-8192MB", "nas", [*SPACE, "--sram", "64KB", "--flash", "8192MB"], None, 2, ["--flash", "4 GB"]),
    ("space-json-is-dir", "nas", [*SPACE, "--board", "qemu-m4", "--json", "{t}/d"], text("d/keep", "x"), 2,
     ["--json", "is a folder"]),
    ("space-plot-unwritable", "nas", [*SPACE, "--board", "qemu-m4", "--plot", "/proc/tinyml-nope/c.png"], None, 2,
     ["--plot", "cannot create"]),
    # --- tinynas search
    ("search-foreign-report", "nas", [*SEARCH, "--out", "{t}/o"], text("o/report.md", "my notes\n"), 2,
     ["o/report.md", "not written by", "--force"]),
    ("search-foreign-weights", "nas", [*SEARCH, "--out", "{t}/o"], text("o/weights.pt", b"mine"), 2,
     ["o/weights.pt", "not written by"]),
    ("search-changed-summary", "nas", [*SEARCH, "--out", "{t}/o"],
     both(owned("tinynas search", {}, in_progress=False), text("o/summary.json", "{}")), 2,
     ["o/summary.json", "not written by"]),
    ("search-other-tool-folder", "nas", [*SEARCH, "--out", "{t}/o"], owned("tinyengine gen", {"Makefile": b"x"}), 2,
     ["holds the output of `tinyengine gen`"]),
    ("search-out-is-file", "nas", [*SEARCH, "--out", "{t}/f"], text("f", "x"), 2, ["--out", "not a"]),
    ("search-out-unwritable", "nas", [*SEARCH, "--out", "/proc/tinyml-nope/o"], None, 2, ["--out", "cannot create"]),
    ("search-device-bogus", "nas", [*SEARCH, "--out", "{t}/o", "--device", "bogus"], None, 2, ["--device", "bogus"]),
    ("search-device-cuda99", "nas", [*SEARCH, "--out", "{t}/o", "--device", "cuda:99"], None, 2, ["--device", "cuda:99"]),
    ("search-seed-negative", "nas", [*SEARCH, "--out", "{t}/o", "--seed", "-1"], None, 2, ["--seed"]),
    ("search-budget-unknown", "nas", [*SEARCH, "--out", "{t}/o", "--budget", "huge"], None, 2, ["--budget", "huge"]),
    ("search-in-channels-2", "nas", [*SEARCH, "--out", "{t}/o", "--in-channels", "2"], None, 2, ["--in-channels"]),
    ("search-sram-huge", "nas", ["search", "--sram", "99999999999999999999MB", "--flash", "1MB", "--out", "{t}/o"],
     None, 2, ["--sram"]),
    ("search-data-missing", "nas", [*SEARCH, "--out", "{t}/o", "--data", "{t}/nope"], None, 2, ["--data", "nope"]),
    ("search-data-empty-class", "nas", [*SEARCH, "--out", "{t}/o", "--data", "{t}/data"],
     images("cat", "dog", "bird:0"), 2, ["--data", "bird", "no images"]),
    ("search-data-one-class", "nas", [*SEARCH, "--out", "{t}/o", "--data", "{t}/data"], images("cat"), 2,
     ["--data", "at least 2"]),
    ("search-data-train-test-classes", "nas", [*SEARCH, "--out", "{t}/o", "--data", "{t}/data"],
     both(images("cat", "dog", split="train"), images("cat", "cow", split="test")), 2,
     ["--data", "different classes", "dog", "cow"]),
    ("search-state-truncated-json", "nas", [*SEARCH, "--out", "{t}/o"],
     owned("tinynas search", {"search_state.json": b'{"generation": 3, "history": ["unterminated'}), 2,
     ["search_state.json", "cannot be read", "delete"]),
    ("search-state-truncated-checkpoint", "nas", [*SEARCH, "--out", "{t}/o"],
     lambda t: owned("tinynas search", {"checkpoints/supernet.pt": truncated_checkpoint()})(t), 2,
     ["checkpoints/supernet.pt", "cannot be read"]),
    ("search-state-deep-json", "nas", [*SEARCH, "--out", "{t}/o"],
     owned("tinynas search", {"eval_cache.json": deep_json().encode()}), 2, ["eval_cache.json", "nested too deeply"]),
    ("search-manifest-damaged", "nas", [*SEARCH, "--out", "{t}/o"], text("o/.tinyml-manifest.json", "{"), 2,
     [".tinyml-manifest.json", "cannot be read"]),
]


def _snapshot(root: Path) -> dict[str, str]:
    snap = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        snap[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return snap


def test_table_has_enough_cases():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, tmp_path, monkeypatch, plain_console, capsys):
    name, cli, argv, setup, status, texts = case
    monkeypatch.chdir(tmp_path)
    if setup:
        setup(tmp_path)
    before = _snapshot(tmp_path)
    argv = [a.replace("{t}", str(tmp_path)) for a in argv]
    if cli == "te":
        from tinyml_cli.engine import main
    else:
        from tinyml_cli.nas import main
    rc = main(argv)
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == status, (rc, out, err)
    assert len(lines) == 1, err
    assert "Traceback" not in err + out
    line = flat(lines[0])
    for t in texts:
        assert t.replace("{t}", str(tmp_path)) in line, line
    assert _snapshot(tmp_path) == before, "a file or folder changed"


def test_decompression_bomb_image_is_one_line(tmp_path, monkeypatch, plain_console, capsys, one_torch_thread):
    """An image over PIL's pixel limit (20000 x 20000 in the field; a limit of 1000 here) is a dataset error
    naming the file, and the search's output folder it created is gone again."""
    from PIL import Image

    from tinyml_cli.nas import main
    images("cat", "dog", n=2, size=64)(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    rc = main([*SEARCH, "--out", str(tmp_path / "o"), "--data", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "cannot read image" in err and "cat/0.png" in err and "decompression bomb" in err.lower()
    assert not (tmp_path / "o").exists()


def test_interrupted_search_says_how_to_resume(tmp_path, monkeypatch, plain_console, capsys):
    from tinyml_cli import nas as cli
    from tinynas import search

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(search, "run_search", interrupted)
    rc = cli.main([*SEARCH, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 130 and err.count("\n") == 1 and "Traceback" not in err
    assert "interrupted" in err and "resume" in err and str(tmp_path / "o") in err


def test_gen_searched_folder_with_another_searchs_arch(tmp_path):
    """The int8 graph and arch.json of a search folder must describe one network (layer kinds and shapes)."""
    from codegen.search_folder import check_graph_matches_arch
    from search_spaces.arch import ArchConfig, ArchError
    from tinyengine.ir.graph import build_graph

    a = ArchConfig.from_dict(OURS)
    check_graph_matches_arch(build_graph(a), a, Path("arch.json"), Path("model_int8.pkl"))
    for other in (_set(OURS, "stages.0.out_channels", 24), _set(OURS, "resolution", 40),
                  _set(OURS, "stages.0.blocks", [{"kernel_size": 3, "expand_ratio": 3}])):
        with pytest.raises(ArchError, match="arch.json does not describe model_int8.pkl"):
            check_graph_matches_arch(build_graph(ArchConfig.from_dict(other)), a, Path("arch.json"),
                                     Path("model_int8.pkl"))


def test_zip_check_names_a_truncated_checkpoint(tmp_path):
    from tinynas.state_check import damaged_state
    (tmp_path / "ok.json").write_text("{}")
    assert damaged_state(tmp_path) is None
    (tmp_path / "c.pt").write_bytes(truncated_checkpoint())
    assert damaged_state(tmp_path)[0] == tmp_path / "c.pt"
