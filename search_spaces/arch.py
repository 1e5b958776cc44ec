"""ArchConfig: one MobileNetV2/ProxylessNAS-like network, as data (JSON in, JSON out, validated).

The network is: stem conv (k x k, stride s) -> a first inverted-residual block with expand ratio 1
(depthwise + pointwise) -> stages of inverted-residual blocks (1x1 expand, k x k depthwise, 1x1
project; the first block of a stage carries the stage stride and never a shortcut, the others have
stride 1 and an identity shortcut) -> optional 1x1 "feature mix" conv -> global average pool ->
fully-connected classifier. All convolutions but the projections are followed by ReLU6.

Every error names the offending field by its JSON path, e.g. ``stages[2].blocks[1].kernel_size``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from search_spaces import model_limits
from tinyml_errors import ArchError

FORMAT = "tinyml-arch/1"




def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` without going more than 10% below it."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return int(new)


@dataclass(frozen=True)
class BlockConfig:
    """One inverted-residual block inside a stage."""

    kernel_size: int
    expand_ratio: float
    mid_channels: int | None = None  # explicit override of make_divisible(round(in * expand))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kernel_size": self.kernel_size, "expand_ratio": _num(self.expand_ratio)}
        if self.mid_channels is not None:
            d["mid_channels"] = self.mid_channels
        return d


@dataclass(frozen=True)
class StageConfig:
    out_channels: int
    stride: int
    blocks: tuple[BlockConfig, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"out_channels": self.out_channels, "stride": self.stride,
                "blocks": [b.to_dict() for b in self.blocks]}


@dataclass(frozen=True)
class BlockSpec:
    """A fully resolved block: what the graph builder and the cost model need."""

    index: int          # 0 = the first (expand-1) block
    stage: int          # -1 for the first block, else the stage index
    in_channels: int
    mid_channels: int   # == in_channels when there is no expansion
    out_channels: int
    kernel_size: int
    stride: int
    expand: bool        # has a 1x1 expansion conv
    residual: bool


@dataclass(frozen=True)
class ArchConfig:
    resolution: int
    stem_channels: int
    first_channels: int
    stages: tuple[StageConfig, ...]
    num_classes: int
    in_channels: int = 3
    stem_kernel: int = 3
    stem_stride: int = 2
    first_kernel: int = 3
    feature_mix_channels: int | None = None
    name: str | None = None
    width_mult: float | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    # ----------------------------------------------------------------- derived structure
    def blocks(self) -> Iterator[BlockSpec]:
        """Yield every block (the first one included) with channels, stride and shortcut resolved."""
        yield BlockSpec(0, -1, self.stem_channels, self.stem_channels, self.first_channels,
                        self.first_kernel, 1, False, False)
        cin, idx = self.first_channels, 1
        for s, st in enumerate(self.stages):
            for j, b in enumerate(st.blocks):
                mid = b.mid_channels if b.mid_channels is not None else mid_channels_for(cin, b.expand_ratio)
                stride = st.stride if j == 0 else 1
                yield BlockSpec(idx, s, cin, mid, st.out_channels, b.kernel_size, stride,
                                expand=not (b.expand_ratio == 1 and b.mid_channels in (None, cin)),
                                residual=j > 0)
                cin, idx = st.out_channels, idx + 1

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(len(s.blocks) for s in self.stages)

    @property
    def last_channels(self) -> int:
        if self.feature_mix_channels:
            return self.feature_mix_channels
        return self.stages[-1].out_channels if self.stages else self.first_channels

    def spatial_sizes(self) -> list[int]:
        """Feature-map side after the stem and after each block (PyTorch 'same' padding k//2)."""
        h = conv_out(self.resolution, self.stem_kernel, self.stem_stride)
        out = [h]
        for b in self.blocks():
            h = conv_out(h, b.kernel_size, b.stride)
            out.append(h)
        return out

    # ----------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"format": FORMAT}
        if self.name:
            d["name"] = self.name
        if self.width_mult is not None:
            d["width_mult"] = _num(self.width_mult)
        d.update({
            "resolution": self.resolution, "in_channels": self.in_channels,
            "stem": {"out_channels": self.stem_channels, "kernel_size": self.stem_kernel,
                     "stride": self.stem_stride},
            "first_block": {"out_channels": self.first_channels, "kernel_size": self.first_kernel},
            "stages": [s.to_dict() for s in self.stages],
            "feature_mix_channels": self.feature_mix_channels,
            "num_classes": self.num_classes,
        })
        if self.meta:
            d["meta"] = self.meta
        return d

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def from_dict(cls, d: Any, *, where: str = "arch") -> "ArchConfig":
        return _parse(d, where)

    @classmethod
    def from_json(cls, text: str, *, where: str = "arch") -> "ArchConfig":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ArchError(f"{where}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
        except RecursionError:
            raise ArchError(f"{where}: JSON nested too deeply to be a model description") from None
        return _parse(d, where)

    @classmethod
    def load(cls, path: str | Path) -> "ArchConfig":
        p = Path(path)
        try:
            text = p.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise ArchError(f"{p}: cannot read architecture file ({getattr(e, 'strerror', None) or e})") from None
        return cls.from_json(text, where=str(p))

    def summary(self) -> str:
        ks = ",".join(str(b.kernel_size) for s in self.stages for b in s.blocks)
        es = ",".join(str(_num(b.expand_ratio)) for s in self.stages for b in s.blocks)
        return (f"{self.name or 'arch'}: R={self.resolution} widths="
                f"{[self.stem_channels, self.first_channels] + [s.out_channels for s in self.stages]} "
                f"depths={list(self.depths)} k=[{ks}] e=[{es}]")


def mid_channels_for(in_channels: int, expand_ratio: float, divisor: int = 8) -> int:
    if expand_ratio == 1:
        return in_channels
    return make_divisible(round(in_channels * expand_ratio), divisor)


def conv_out(size: int, kernel: int, stride: int) -> int:
    """Output side of a conv with symmetric padding kernel//2 (PyTorch convention used throughout)."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


# --------------------------------------------------------------------- validation / parsing
def _req(d: dict, key: str, where: str) -> Any:
    if key not in d:
        raise ArchError(f"{where}: missing field '{key}'")
    return d[key]


def _int(v: Any, where: str, *, lo: int = 1, hi: int | None = None, odd: bool = False,
         choices: tuple[int, ...] | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        else:
            raise ArchError(f"{where}: must be an integer, got {v!r}")
    if choices is not None and v not in choices:
        raise ArchError(f"{where}: must be one of {list(choices)}, got {v}")
    if v < lo or (hi is not None and v > hi):
        rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ArchError(f"{where}: must be {rng}, got {v}")
    if odd and v % 2 == 0:
        raise ArchError(f"{where}: must be odd (centre-aligned 'same' padding), got {v}")
    return v


_pos_number = model_limits.number
_dict = model_limits.obj


_TOP_KEYS = {"format", "name", "width_mult", "resolution", "in_channels", "stem", "first_block",
             "stages", "feature_mix_channels", "num_classes", "meta"}


def _parse(d: Any, where: str) -> ArchConfig:
    d = _dict(d, where)
    if "first_conv" in d and "blocks" in d:
        raise ArchError(f"{where}: this is an MCUNet/OFA 'net.config' JSON; convert it with "
                        "search_spaces.reference.from_mcunet_config (tinyengine analyze does this "
                        "automatically for files in that schema)")
    fmt = d.get("format", FORMAT)
    if fmt != FORMAT:
        raise ArchError(f"{where}.format: unsupported format {fmt!r} (expected {FORMAT!r})")
    unknown = sorted(set(d) - _TOP_KEYS)
    if unknown:
        raise ArchError(f"{where}: unknown field(s) {unknown}; allowed: {sorted(_TOP_KEYS)}")
    stem = _dict(_req(d, "stem", where), f"{where}.stem")
    first = _dict(_req(d, "first_block", where), f"{where}.first_block")
    stages_raw = _req(d, "stages", where)
    if not isinstance(stages_raw, list) or not stages_raw:
        raise ArchError(f"{where}.stages: must be a non-empty list of stages")
    stages = []
    for i, s in enumerate(stages_raw):
        w = f"{where}.stages[{i}]"
        s = _dict(s, w)
        blocks_raw = _req(s, "blocks", w)
        if not isinstance(blocks_raw, list) or not blocks_raw:
            raise ArchError(f"{w}.blocks: must be a non-empty list of blocks")
        blocks = []
        for j, b in enumerate(blocks_raw):
            wb = f"{w}.blocks[{j}]"
            b = _dict(b, wb)
            extra = sorted(set(b) - {"kernel_size", "expand_ratio", "mid_channels"})
            if extra:
                raise ArchError(f"{wb}: unknown field(s) {extra}")
            mid = b.get("mid_channels")
            blocks.append(BlockConfig(
                _int(_req(b, "kernel_size", wb), f"{wb}.kernel_size", hi=11, odd=True),
                _pos_number(_req(b, "expand_ratio", wb), f"{wb}.expand_ratio"),
                None if mid is None else _int(mid, f"{wb}.mid_channels")))
        stages.append(StageConfig(_int(_req(s, "out_channels", w), f"{w}.out_channels"),
                                  _int(_req(s, "stride", w), f"{w}.stride", choices=(1, 2)),
                                  tuple(blocks)))
    fm = d.get("feature_mix_channels")
    wm = d.get("width_mult")
    meta = d.get("meta", {})
    arch = ArchConfig(
        resolution=_int(_req(d, "resolution", where), f"{where}.resolution", lo=model_limits.MIN_RESOLUTION,
                         hi=model_limits.MAX_RESOLUTION),
        in_channels=_int(d.get("in_channels", 3), f"{where}.in_channels", hi=64),
        stem_channels=_int(_req(stem, "out_channels", f"{where}.stem"), f"{where}.stem.out_channels"),
        stem_kernel=_int(stem.get("kernel_size", 3), f"{where}.stem.kernel_size", hi=11, odd=True),
        stem_stride=_int(stem.get("stride", 2), f"{where}.stem.stride", choices=(1, 2)),
        first_channels=_int(_req(first, "out_channels", f"{where}.first_block"),
                            f"{where}.first_block.out_channels"),
        first_kernel=_int(first.get("kernel_size", 3), f"{where}.first_block.kernel_size", hi=11, odd=True),
        stages=tuple(stages),
        feature_mix_channels=None if fm is None else _int(fm, f"{where}.feature_mix_channels"),
        num_classes=_int(_req(d, "num_classes", where), f"{where}.num_classes"),
        name=None if d.get("name") is None else str(d["name"]),
        width_mult=None if wm is None else _pos_number(wm, f"{where}.width_mult"),
        meta=_dict(meta, f"{where}.meta"),
    )
    validate(arch, where)
    return arch


def validate(arch: ArchConfig, where: str = "arch") -> None:
    """Structural checks that hold for any ArchConfig, however it was made."""
    model_limits.check_arch(arch, where)  # the limits every model input shares (search_spaces/model_limits.py)
    # Every stride-2 layer must get at least a 2x2 input: halving a 1x1 map is a wasted layer.
    sizes = arch.spatial_sizes()
    strides = [arch.stem_stride] + [b.stride for b in arch.blocks()]
    inputs = [arch.resolution] + sizes[:-1]
    n2 = sum(1 for s in strides if s == 2)
    if any(s == 2 and h < 2 for s, h in zip(strides, inputs)):
        raise ArchError(f"{where}.resolution: {arch.resolution} is too small for {n2} stride-2 layers "
                        f"(a stride-2 layer would get a 1x1 input; use at least {2 ** (n2 - 1) + 1})")
    for b in arch.blocks():
        if b.kernel_size % 2 == 0:
            raise ArchError(f"{where}: block {b.index} kernel_size must be odd, got {b.kernel_size}")
