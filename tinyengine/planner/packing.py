"""Packing: buffers with lifetimes into ONE arena, first fit at the lowest aligned offset, tried in
several orders (largest first, by start step, by size x lifetime); the smallest arena wins."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tinyengine.planner.plan import Buffer


def pack(buffers: list["Buffer"], alignment: int, lower_bound: int) -> tuple[int, str, dict[int, int]]:
    """(arena bytes, winning order, offset per ``id(buffer)``); stops early at the lower bound."""
    best = None
    for strategy, key in ORDERS.items():
        offsets = first_fit(sorted(buffers, key=key), alignment)
        arena = max((offsets[id(b)] + b.size for b in buffers), default=0)
        if best is None or arena < best[0]:
            best = (arena, strategy, offsets)
        if arena == lower_bound:
            break
    return best


ORDERS = {
    "largest-first": lambda b: (-b.size, b.start),
    "by-start": lambda b: (b.start, -b.size),
    "size-x-lifetime": lambda b: (-b.size * (b.end - b.start + 1), b.start),
}


def first_fit(order: list[Buffer], align: int = 1) -> dict[int, int]:
    """Place each buffer at the lowest ``align``-multiple offset clear of every placed buffer alive
    at the same step."""
    placed: list[tuple[Buffer, int]] = []
    out: dict[int, int] = {}
    for buf in order:
        busy = []  # (lo, hi) address ranges that conflict with some interval of buf
        for other, off in placed:
            for a1, b1, s1 in buf.intervals:
                for a2, b2, s2 in other.intervals:
                    if a1 <= b2 and a2 <= b1:
                        busy.append((off, off + s2, s1))
        need = buf.size
        busy.sort()
        offset = 0
        for lo, hi, _ in busy:
            if lo >= offset + need:
                break
            offset = max(offset, -(-hi // align) * align)
        # Interval sizes differ over time: the test above uses the buffer's largest size, which is
        # conservative and keeps the arena layout simple (one offset, one extent per buffer).
        out[id(buf)] = offset
        placed.append((buf, offset))
    return out
