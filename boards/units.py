"""Parsing and printing of memory sizes and latency limits given on the command line.

Sizes follow the MCU-datasheet convention: 1 KB = 1 KiB = 1024 B and 1 MB = 1 MiB = 1048576 B,
so ``320KB`` is the STM32F746's 327680 bytes of SRAM. Scientific notation (``1e3``) is rejected.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_EVEN, Decimal

from tinyml_errors import UnitsError

KIB = 1024
MIB = 1024 * 1024

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": KIB,
    "kb": KIB,
    "kib": KIB,
    "m": MIB,
    "mb": MIB,
    "mib": MIB,
}

_DURATION_UNITS = {  # seconds per unit; a plain number is milliseconds
    "": Decimal("0.001"),
    "us": Decimal("0.000001"),
    "µs": Decimal("0.000001"),
    "ms": Decimal("0.001"),
    "s": Decimal(1),
}

# An optional sign (so that '-1KB' gets a "must be positive" message), a plain decimal number
# without exponent, optional spaces, then a unit made of letters only.
_NUMBER_UNIT = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*([^\W\d_]*)\s*$")

SIZE_HINT = "use e.g. 320KB, 320KiB, 1.5MB or 327680 (bytes; 1 KB = 1024 B)"
DURATION_HINT = "use e.g. 200ms, 0.2s, 1500us or 200 (milliseconds)"


def _split(text: str) -> tuple[Decimal, str] | None:
    match = _NUMBER_UNIT.match(text)
    if match is None:
        return None
    return Decimal(match.group(1)), match.group(2).lower()


MAX_SIZE = 1 << 32


def parse_size(text: str | int, *, what: str = "size") -> int:
    """Parse a memory size such as ``320KB``, ``1.5 MB``, ``320KiB`` or ``327680`` into bytes.

    Units are case-insensitive: B, K, KB, KiB, M, MB, MiB; a plain number is bytes. A scaled
    value is rounded to the nearest byte; a plain byte count must be whole. ``what`` names the
    option in the error message (e.g. ``--sram``).
    """
    if isinstance(text, bool):
        raise UnitsError(f"{what}: cannot parse {text!r} as a size; {SIZE_HINT}")
    if isinstance(text, int):
        if text <= 0:
            raise UnitsError(f"{what}: {text!r} is not a positive size; {SIZE_HINT}")
        return text
    parts = _split(text) if isinstance(text, str) else None
    if parts is None or parts[1] not in _SIZE_UNITS:
        raise UnitsError(f"{what}: cannot parse {text!r} as a size; {SIZE_HINT}")
    number, unit = parts
    scale = _SIZE_UNITS[unit]
    if scale == 1 and number != number.to_integral_value():
        raise UnitsError(f"{what}: {text!r} is not a whole number of bytes; {SIZE_HINT}")
    nbytes = int((number * scale).to_integral_value(rounding=ROUND_HALF_EVEN))
    if nbytes <= 0:
        raise UnitsError(f"{what}: {text!r} is not a positive size; {SIZE_HINT}")
    if nbytes > MAX_SIZE:  # a Cortex-M addresses 4 GB in all: a larger memory is a typo
        raise UnitsError(f"{what}: {text!r} is larger than a microcontroller's 4 GB address space")
    return nbytes


def format_size(nbytes: int) -> str:
    """Print a byte count readably: ``999 B``, ``320 KB``, ``1.5 MB`` (1 KB = 1024 B).

    At most one decimal is shown and only when needed. Values that are a multiple of a tenth
    of the unit print exactly, so ``parse_size(format_size(n)) == n`` for them; other values
    are rounded to one decimal.
    """
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
        raise UnitsError(f"format_size: expected a non-negative integer byte count, got {nbytes!r}")
    if nbytes < KIB:
        return f"{nbytes} B"
    for unit, name in ((KIB, "KB"), (MIB, "MB")):
        tenths = (Decimal(nbytes * 10) / unit).to_integral_value(rounding=ROUND_HALF_EVEN)
        if tenths < 10 * 1024 or name == "MB":  # 1048575 B is "1 MB", not "1024 KB"
            break
    return f"{tenths / 10:.1f}".removesuffix(".0") + f" {name}"


def parse_duration(text: str | float, what: str = "duration") -> float:
    """Parse a latency limit such as ``200ms``, ``0.2s``, ``200 ms`` or ``1500us`` into seconds.

    A plain number (string or int/float) is milliseconds. ``what`` names the option in the error message.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if not math.isfinite(text):
            raise UnitsError(f"{what}: cannot parse {text!r} as a duration; {DURATION_HINT}")
        seconds = Decimal(text) * _DURATION_UNITS[""]
    else:
        parts = _split(text) if isinstance(text, str) else None
        if parts is None or parts[1] not in _DURATION_UNITS:
            raise UnitsError(f"{what}: cannot parse {text!r} as a duration; {DURATION_HINT}")
        number, unit = parts
        seconds = number * _DURATION_UNITS[unit]
    if seconds <= 0:
        raise UnitsError(f"{what}: {text!r} is not a positive duration; {DURATION_HINT}")
    return float(seconds)
