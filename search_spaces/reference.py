"""Converter from the MCUNet/OFA/ProxylessNAS ``net.config`` JSON schema into our ArchConfig.

That schema lists ``first_conv``, a flat ``blocks[]`` of ``MobileInvertedResidualBlock`` (each with a
``mobile_inverted_conv`` and an optional identity ``shortcut``), an optional ``feature_mix_layer`` and
a ``classifier``. Blocks whose conv is a ``ZeroLayer`` (skipped, identity only) are dropped; a block
without a shortcut starts a new stage.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .arch import ArchConfig, ArchError, BlockConfig, StageConfig, mid_channels_for, validate


def is_mcunet_config(d: Any) -> bool:
    return isinstance(d, dict) and "first_conv" in d and "blocks" in d


def from_mcunet_config(d: dict, *, name: str | None = None, where: str = "config",
                       resolution: int | None = None) -> ArchConfig:
    """Convert one ``net.config`` dict; errors name the block index and field."""
    def get(obj: Any, key: str, w: str) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            raise ArchError(f"{w}: missing field '{key}'")
        return obj[key]

    fc = get(d, "first_conv", where)
    blocks = get(d, "blocks", where)
    if not isinstance(blocks, list) or len(blocks) < 2:
        raise ArchError(f"{where}.blocks: need at least the first block and one more")
    res = resolution if resolution is not None else d.get("resolution")
    if res is None:
        raise ArchError(f"{where}: no 'resolution' in the config; pass resolution=")
    if isinstance(res, list):
        res = res[0]

    convs = []
    for i, b in enumerate(blocks):
        w = f"{where}.blocks[{i}]"
        m = get(b, "mobile_inverted_conv", w)
        if m is None or m.get("name") == "ZeroLayer":
            if b.get("shortcut") is None:
                raise ArchError(f"{w}: a ZeroLayer block without a shortcut would cut the network")
            continue
        if m.get("name", "MBInvertedConvLayer") != "MBInvertedConvLayer":
            raise ArchError(f"{w}.mobile_inverted_conv.name: unsupported layer {m.get('name')!r}")
        if m.get("use_se"):
            raise ArchError(f"{w}: squeeze-and-excitation blocks are not supported")
        act = m.get("act_func", "relu6")
        if act not in (None, "relu6"):
            raise ArchError(f"{w}.act_func: only relu6 is supported, got {act!r}")
        convs.append((i, m, b.get("shortcut") is not None))

    i0, first, sc0 = convs[0]
    w0 = f"{where}.blocks[{i0}]"
    first_out, first_k = get(first, "out_channels", w0), get(first, "kernel_size", w0)
    if get(first, "in_channels", w0) != get(fc, "out_channels", f"{where}.first_conv"):
        raise ArchError(f"{w0}.in_channels: {first['in_channels']} does not match first_conv.out_channels "
                        f"{fc['out_channels']}")
    if get(first, "expand_ratio", w0) != 1 or sc0:
        raise ArchError(f"{where}.blocks[{i0}]: the first block must have expand_ratio 1 and no shortcut")
    if get(first, "stride", f"{where}.blocks[{i0}]") != 1:
        raise ArchError(f"{where}.blocks[{i0}]: the first block must have stride 1")

    stages: list[tuple[int, int, list[BlockConfig]]] = []
    cin = first_out
    for i, m, has_sc in convs[1:]:
        w = f"{where}.blocks[{i}]"
        k, s, e = get(m, "kernel_size", w), get(m, "stride", w), get(m, "expand_ratio", w)
        c_in, c_out = get(m, "in_channels", w), get(m, "out_channels", w)
        if c_in != cin:
            raise ArchError(f"{w}.in_channels: {c_in} does not follow the previous block's {cin} outputs")
        mid = m.get("mid_channels")
        if mid is not None and mid == mid_channels_for(c_in, e):
            mid = None
        blk = BlockConfig(int(k), e, None if mid is None else int(mid))
        if has_sc:
            if not stages or s != 1 or c_out != c_in:
                raise ArchError(f"{w}: a shortcut block needs stride 1 and in == out channels, "
                                f"and must follow a stage's first block")
            stages[-1][2].append(blk)
        else:
            stages.append((int(c_out), int(s), [blk]))
        cin = c_out

    fm = d.get("feature_mix_layer")
    cls = get(d, "classifier", where)
    arch = ArchConfig(
        resolution=int(res), in_channels=int(get(fc, "in_channels", f"{where}.first_conv")),
        stem_channels=int(get(fc, "out_channels", f"{where}.first_conv")),
        stem_kernel=int(fc.get("kernel_size", 3)), stem_stride=int(fc.get("stride", 2)),
        first_channels=int(first_out), first_kernel=int(first_k),
        stages=tuple(StageConfig(c, s, tuple(b)) for c, s, b in stages),
        feature_mix_channels=None if fm is None else int(fm["out_channels"]),
        num_classes=int(get(cls, "out_features", f"{where}.classifier")),
        name=name,
    )
    validate(arch, where)
    in_features = cls.get("in_features")
    if in_features is not None and in_features != arch.last_channels:
        raise ArchError(f"{where}.classifier.in_features: {in_features} does not match the "
                        f"{arch.last_channels} channels that reach the classifier")
    return arch


def load_mcunet_json(path: str | Path, name: str | None = None) -> ArchConfig:
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ArchError(f"{p}: cannot read MCUNet config ({e})") from None
    return from_mcunet_config(d, name=name or p.stem, where=str(p))
