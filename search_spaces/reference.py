"""Converter from the MCUNet/OFA/ProxylessNAS ``net.config`` JSON schema into our ArchConfig.

That schema lists ``first_conv``, a flat ``blocks[]`` of ``MobileInvertedResidualBlock`` (each with a
``mobile_inverted_conv`` and an optional identity ``shortcut``), an optional ``feature_mix_layer`` and
a ``classifier``. Blocks whose conv is a ``ZeroLayer`` (skipped, identity only) are dropped; a block
without a shortcut starts a new stage.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from search_spaces import model_limits
from search_spaces.arch import ArchConfig, ArchError, BlockConfig, StageConfig, mid_channels_for, validate
from tinyml_errors.files import read_json


def is_mcunet_config(d: Any) -> bool:
    return isinstance(d, dict) and "first_conv" in d and "blocks" in d


def from_mcunet_config(d: dict, *, name: str | None = None, where: str = "config",
                       resolution: int | None = None) -> ArchConfig:
    """Convert one ``net.config`` dict; errors name the block index and field, and every value passes
    the limits of :mod:`search_spaces.model_limits` (the ones our own JSON passes)."""
    L = model_limits
    d = L.obj(d, where)
    fcw = f"{where}.first_conv"
    fc = L.obj(L.field(d, "first_conv", where), fcw)
    blocks = L.array(L.field(d, "blocks", where), f"{where}.blocks", min_len=2)
    res = resolution if resolution is not None else d.get("resolution")
    if res is None:
        raise ArchError(f"{where}: no 'resolution' in the config; pass resolution=")
    if isinstance(res, list):
        res = L.array(res, f"{where}.resolution")[0]
    res = L.integer(res, f"{where}.resolution", lo=L.MIN_RESOLUTION, hi=L.MAX_RESOLUTION)

    def conv_int(m: dict, key: str, w: str, **kw) -> int:
        return L.integer(L.field(m, key, w), f"{w}.{key}", **kw)

    def kernel(m: dict, w: str) -> int:
        return conv_int(m, "kernel_size", w, hi=L.MAX_KERNEL, odd=True)

    def channels(m: dict, key: str, w: str, hi: int = L.MAX_CHANNELS) -> int:
        return conv_int(m, key, w, hi=hi)

    convs = []
    for i, b in enumerate(blocks):
        w = f"{where}.blocks[{i}]"
        b = L.obj(b, w)
        m = L.field(b, "mobile_inverted_conv", w)
        sc = b.get("shortcut")
        if sc is not None:
            L.obj(sc, f"{w}.shortcut")
        if m is None or (isinstance(m, dict) and m.get("name") == "ZeroLayer"):
            if sc is None:
                raise ArchError(f"{w}: a ZeroLayer block without a shortcut would cut the network")
            continue
        wm = f"{w}.mobile_inverted_conv"
        m = L.obj(m, wm)
        if m.get("name", "MBInvertedConvLayer") != "MBInvertedConvLayer":
            raise ArchError(f"{wm}.name: unsupported layer {m.get('name')!r}")
        if m.get("use_se"):
            raise ArchError(f"{w}: squeeze-and-excitation blocks are not supported")
        act = m.get("act_func", "relu6")
        if act not in (None, "relu6"):
            raise ArchError(f"{wm}.act_func: only relu6 is supported, got {act!r}")
        convs.append((i, m, wm, sc is not None))

    i0, first, w0, sc0 = convs[0]
    first_out, first_k = channels(first, "out_channels", w0), kernel(first, w0)
    stem_out = channels(fc, "out_channels", fcw)
    if channels(first, "in_channels", w0) != stem_out:
        raise ArchError(f"{w0}.in_channels: {first['in_channels']} does not match first_conv.out_channels "
                        f"{stem_out}")
    if L.number(L.field(first, "expand_ratio", w0), f"{w0}.expand_ratio", hi=L.MAX_EXPAND) != 1 or sc0:
        raise ArchError(f"{where}.blocks[{i0}]: the first block must have expand_ratio 1 and no shortcut")
    if conv_int(first, "stride", w0, choices=L.STRIDES) != 1:
        raise ArchError(f"{where}.blocks[{i0}]: the first block must have stride 1")

    stages: list[tuple[int, int, list[BlockConfig]]] = []
    cin = first_out
    for i, m, w, has_sc in convs[1:]:
        k, s = kernel(m, w), conv_int(m, "stride", w, choices=L.STRIDES)
        e = L.number(L.field(m, "expand_ratio", w), f"{w}.expand_ratio", hi=L.MAX_EXPAND)
        e = int(e) if e.is_integer() else e
        c_in, c_out = channels(m, "in_channels", w), channels(m, "out_channels", w)
        if c_in != cin:
            raise ArchError(f"{w}.in_channels: {c_in} does not follow the previous block's {cin} outputs")
        mid = m.get("mid_channels")
        if mid is not None:
            mid = L.integer(mid, f"{w}.mid_channels", hi=L.MAX_CHANNELS)
            if mid == mid_channels_for(c_in, e):
                mid = None
        blk = BlockConfig(k, e, mid)
        if has_sc:
            if not stages or s != 1 or c_out != c_in:
                raise ArchError(f"{w}: a shortcut block needs stride 1 and in == out channels, "
                                f"and must follow a stage's first block")
            stages[-1][2].append(blk)
        else:
            stages.append((c_out, s, [blk]))
        cin = c_out

    fm = d.get("feature_mix_layer")
    if fm is not None:
        fm = channels(L.obj(fm, f"{where}.feature_mix_layer"), "out_channels", f"{where}.feature_mix_layer")
    clw = f"{where}.classifier"
    cls = L.obj(L.field(d, "classifier", where), clw)
    arch = ArchConfig(
        resolution=res, in_channels=channels(fc, "in_channels", fcw, hi=L.MAX_IN_CHANNELS),
        stem_channels=stem_out,
        stem_kernel=L.integer(fc.get("kernel_size", 3), f"{fcw}.kernel_size", hi=L.MAX_KERNEL, odd=True),
        stem_stride=L.integer(fc.get("stride", 2), f"{fcw}.stride", choices=L.STRIDES),
        first_channels=first_out, first_kernel=first_k,
        stages=tuple(StageConfig(c, s, tuple(b)) for c, s, b in stages),
        feature_mix_channels=fm,
        num_classes=channels(cls, "out_features", clw, hi=L.MAX_CLASSES),
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
    d = read_json(p, ArchError)
    return from_mcunet_config(d, name=name or p.stem, where=str(p))
