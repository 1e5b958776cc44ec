"""Deployment constraints: SRAM/flash (and later latency) limits, from a board preset or explicit flags."""
from __future__ import annotations

from dataclasses import dataclass

from boards import Board, resolve_limits
from boards.units import format_size, parse_duration, parse_size
from tinyml_errors import UsageError


@dataclass(frozen=True)
class Constraints:
    sram_bytes: int
    flash_bytes: int
    latency_s: float | None = None
    board: Board | None = None
    sram_reserve: int = 0    # already subtracted from sram_bytes
    flash_reserve: int = 0   # already subtracted from flash_bytes
    stream: bool = False     # peak SRAM counted with fused streaming execution (tinynas search --stream)

    def describe(self) -> str:
        s = f"SRAM {format_size(self.sram_bytes)}, flash {format_size(self.flash_bytes)}"
        if self.latency_s is not None:
            s += f", latency {self.latency_s * 1e3:g} ms"
        if self.sram_reserve or self.flash_reserve:
            s += (f" for the model (after reserving {format_size(self.sram_reserve)} SRAM and "
                  f"{format_size(self.flash_reserve)} flash for the firmware)")
        if self.board is not None:
            s += f" (board {self.board.name})"
        if self.stream:
            s += " (peak SRAM with fused streaming)"
        return s

    def to_dict(self) -> dict:
        return {"sram_bytes": self.sram_bytes, "flash_bytes": self.flash_bytes,
                "latency_s": self.latency_s, "board": self.board.name if self.board else None,
                "sram_reserve": self.sram_reserve, "flash_reserve": self.flash_reserve,
                **({"stream": True} if self.stream else {})}  # absent when off: older folders still match


def constraints_from_args(board: str | None, sram: str | None, flash: str | None,
                          latency: str | None = None, *, sram_reserve: str | None = None,
                          flash_reserve: str | None = None, stream: bool = False) -> Constraints:
    """Board presets set the limits; explicit --sram/--flash override them. Errors name the flag.

    The reserves are what the firmware itself needs (stack and runtime state in SRAM, code in
    flash); the model gets the limit minus the reserve."""
    s, f, b = resolve_limits(board, sram, flash)
    rs = parse_size(sram_reserve, what="--sram-reserve") if sram_reserve not in (None, "0") else 0
    rf = parse_size(flash_reserve, what="--flash-reserve") if flash_reserve not in (None, "0") else 0
    if rs >= s:
        raise UsageError(f"--sram-reserve: {format_size(rs)} leaves nothing of the {format_size(s)} SRAM")
    if rf >= f:
        raise UsageError(f"--flash-reserve: {format_size(rf)} leaves nothing of the {format_size(f)} flash")
    lat = parse_duration(latency, what="--latency") if latency is not None else None
    return Constraints(s - rs, f - rf, lat, b, rs, rf, stream)
