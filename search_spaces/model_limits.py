"""One validation layer for every model input: our architecture JSON, MCUNet ``net.config`` files and
(later) imported models all pass the same type checks and the same limits.

Field checks (:func:`integer`, :func:`number`, :func:`obj`, :func:`array`) name the file and the field
(``net.config.blocks[3].mobile_inverted_conv.kernel_size: must be an integer, got 3.7``).
:func:`check_arch` bounds a whole network: every value within the limits below, and no activation or
weight count so large that building or running the network could allocate gigabytes by accident. The
limits are generous for a microcontroller (the largest zoo model uses 1280 channels at 224 x 224);
anything above them is a typo, not a model.
"""
from __future__ import annotations

import math
from typing import Any

from tinyml_errors import ArchError

MIN_RESOLUTION, MAX_RESOLUTION = 8, 1024
MAX_IN_CHANNELS = 64
MAX_CHANNELS = 8192
MAX_CLASSES = 100_000
MAX_KERNEL = 11
STRIDES = (1, 2)
MAX_EXPAND = 32
MAX_BLOCKS = 256
MAX_ACTIVATION = 1 << 24   # elements of one feature map: 16 MB as int8, far beyond any MCU's SRAM
MAX_PARAMS = 1 << 26       # weights: 64 M, i.e. 64 MB as int8 (MCU flash is a few MB)


def _error(msg: str) -> Exception:
    return ArchError(msg)


def integer(v: Any, where: str, *, lo: int = 1, hi: int | None = None, odd: bool = False,
            choices: tuple[int, ...] | None = None) -> int:
    """An int (a float only when whole, e.g. 3.0) in lo..hi; never a bool, a string or 3.7."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
        raise _error(f"{where}: must be an integer, got {_show(v)}")
    v = int(v)
    if choices is not None and v not in choices:
        raise _error(f"{where}: must be one of {list(choices)}, got {v}")
    if v < lo or (hi is not None and v > hi):
        raise _error(f"{where}: must be {f'>= {lo}' if hi is None else f'in {lo}..{hi}'}, got {v}")
    if odd and v % 2 == 0:
        raise _error(f"{where}: must be odd (centre-aligned 'same' padding), got {v}")
    return v


def number(v: Any, where: str, *, hi: float | None = None) -> float:
    """A finite number > 0 (and <= hi)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise _error(f"{where}: must be a positive number, got {_show(v)}")
    if hi is not None and v > hi:
        raise _error(f"{where}: must be at most {hi}, got {v:g}")
    return float(v)


def obj(v: Any, where: str) -> dict:
    if not isinstance(v, dict):
        raise _error(f"{where}: must be a JSON object, got {_kind(v)}")
    return v


def array(v: Any, where: str, *, min_len: int = 1) -> list:
    if not isinstance(v, list) or len(v) < min_len:
        raise _error(f"{where}: must be a list of at least {min_len} item(s), got {_kind(v)}")
    return v


def field(d: dict, key: str, where: str) -> Any:
    if key not in d:
        raise _error(f"{where}: missing field '{key}'")
    return d[key]


def _kind(v: Any) -> str:
    if isinstance(v, list):
        return f"a list of {len(v)}"
    return {dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}.get(type(v), _show(v))


def _show(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def check_arch(arch, where: str = "arch") -> None:
    """Every limit above for a built ArchConfig (field paths as in our JSON format)."""
    integer(arch.resolution, f"{where}.resolution", lo=MIN_RESOLUTION, hi=MAX_RESOLUTION)
    integer(arch.in_channels, f"{where}.in_channels", hi=MAX_IN_CHANNELS)
    integer(arch.num_classes, f"{where}.num_classes", hi=MAX_CLASSES)
    integer(arch.stem_channels, f"{where}.stem.out_channels", hi=MAX_CHANNELS)
    integer(arch.stem_kernel, f"{where}.stem.kernel_size", hi=MAX_KERNEL, odd=True)
    integer(arch.stem_stride, f"{where}.stem.stride", choices=STRIDES)
    integer(arch.first_channels, f"{where}.first_block.out_channels", hi=MAX_CHANNELS)
    integer(arch.first_kernel, f"{where}.first_block.kernel_size", hi=MAX_KERNEL, odd=True)
    if arch.feature_mix_channels is not None:
        integer(arch.feature_mix_channels, f"{where}.feature_mix_channels", hi=MAX_CHANNELS)
    if sum(len(s.blocks) for s in arch.stages) > MAX_BLOCKS:
        raise _error(f"{where}.stages: more than {MAX_BLOCKS} blocks")
    for i, st in enumerate(arch.stages):
        w = f"{where}.stages[{i}]"
        integer(st.out_channels, f"{w}.out_channels", hi=MAX_CHANNELS)
        integer(st.stride, f"{w}.stride", choices=STRIDES)
        for j, b in enumerate(st.blocks):
            integer(b.kernel_size, f"{w}.blocks[{j}].kernel_size", hi=MAX_KERNEL, odd=True)
            number(b.expand_ratio, f"{w}.blocks[{j}].expand_ratio", hi=MAX_EXPAND)
            if b.mid_channels is not None:
                integer(b.mid_channels, f"{w}.blocks[{j}].mid_channels", hi=MAX_CHANNELS)
    # whole-network bounds: the largest feature map and the weight count
    from search_spaces.arch import conv_out
    h = conv_out(arch.resolution, arch.stem_kernel, arch.stem_stride)
    biggest = max(arch.resolution ** 2 * arch.in_channels, h * h * arch.stem_channels)
    params = arch.stem_kernel ** 2 * arch.in_channels * arch.stem_channels
    for b in arch.blocks():
        if b.mid_channels > MAX_CHANNELS:
            raise _error(f"{where}: block {b.index} expands to {b.mid_channels} channels (at most {MAX_CHANNELS})")
        biggest = max(biggest, h * h * b.mid_channels)
        params += (b.in_channels * b.mid_channels if b.expand else 0) + b.kernel_size ** 2 * b.mid_channels \
            + b.mid_channels * b.out_channels
        h = conv_out(h, b.kernel_size, b.stride)
        biggest = max(biggest, h * h * b.out_channels)
    if arch.feature_mix_channels:
        biggest = max(biggest, h * h * arch.feature_mix_channels)
    params += arch.last_channels * arch.num_classes
    if biggest > MAX_ACTIVATION:
        raise _error(f"{where}: a feature map of {biggest:,} values (at most {MAX_ACTIVATION:,}): resolution "
                     f"{arch.resolution} with these channel counts is far beyond a microcontroller")
    if params > MAX_PARAMS:
        raise _error(f"{where}: {params:,} weights (at most {MAX_PARAMS:,}): far beyond a microcontroller's flash")
