"""Board presets: one validated JSON file per board in ``boards/``, and memory limits from a board or flags.

A board file names the core and its compiler flags, the clock, the SRAM and flash budgets (exact
bytes), the PlatformIO target, the UART the probe talks to and the QEMU machine that stands in for it.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from boards.cores import CORES
from boards.units import parse_size
from tinyml_errors import BoardError
from tinyml_errors.files import read_json

FLOAT_ABIS = ("hard", "soft")




@dataclass(frozen=True)
class PlatformIOTarget:
    """Where PlatformIO builds for the board: dev-platform, board id and framework (None = bare metal)."""

    platform: str
    board: str
    framework: str | None


@dataclass(frozen=True)
class BoardPort:
    """The board layer the firmware uses on the real part (``firmware/ports/<family>/``) and the part's
    memory map: flash and SRAM origins (sizes are the board's ``flash_bytes``/``sram_bytes``)."""

    family: str
    mcu: str                    # the part, as PlatformIO names it (stm32f746ngh6)
    flash_origin: int
    sram_origin: int
    openocd: tuple[str, ...]    # OpenOCD config files for `tinyengine flash` (interface, target)


PORT_FAMILIES = ("stm32f4", "stm32f7", "stm32h7", "nrf52840")


@dataclass(frozen=True)
class Board:
    """One microcontroller board as described by ``boards/<name>.json``."""

    name: str
    description: str
    core: str
    mcpu: str
    fpu: str | None
    float_abi: str
    dsp: bool
    clock_hz: int
    sram_bytes: int
    flash_bytes: int
    platformio: PlatformIOTarget
    uart: str
    qemu_machine: str | None
    emulated: bool
    notes: str | None = None
    port: BoardPort | None = None

    def compiler_flags(self) -> list[str]:
        """The arm-none-eabi-gcc target flags for this core (``-mcpu``, ``-mthumb``, FPU and float ABI)."""
        flags = [f"-mcpu={self.mcpu}", "-mthumb", f"-mfloat-abi={self.float_abi}"]
        if self.fpu is not None:
            flags.append(f"-mfpu={self.fpu}")
        return flags


def boards_dir() -> Path:
    """The folder of board files: ``$TINYML_BOARDS_DIR`` if set, else the folder of this package."""
    override = os.environ.get("TINYML_BOARDS_DIR")
    if override:
        return Path(override)
    return Path(str(files(__name__)))


def list_boards() -> list[str]:
    """Names of all boards (file stems), sorted."""
    folder = boards_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json"))


def load_board(name: str) -> Board:
    """Load and validate ``<boards_dir>/<name>.json``; raise BoardError naming the file and field."""
    available = list_boards()
    if name not in available:  # also keeps names like '../x' out of the filesystem
        close = _suggest(name, available)
        hint = f" Did you mean '{close}'?" if close else ""
        listing = ", ".join(available) if available else f"none in {boards_dir()}"
        raise BoardError(f"unknown board '{name}'.{hint} Available boards: {listing}")
    path = boards_dir() / f"{name}.json"
    if path.is_absolute() and path.is_relative_to(Path.cwd()):
        path = path.relative_to(Path.cwd())  # shorter messages: 'boards/x.json: field ...'
    data = read_json(path, BoardError)
    return _board_from_dict(data, path)


def _suggest(name: str, available: list[str]) -> str | None:
    """The board a mistyped name most likely meant: one containing it (``f746``), else the closest spelling."""
    key = name.lower()
    containing = [b for b in available if key and key in b.lower()]
    if containing:
        return min(containing, key=len)
    close = difflib.get_close_matches(key, available, n=1)
    return close[0] if close else None


def _board_from_dict(data: object, path: Path) -> Board:
    if not isinstance(data, dict):
        raise BoardError(f"{path}: expected a JSON object, got {type(data).__name__}")

    def fail(field: str, expected: str) -> BoardError:
        return BoardError(f"{path}: field '{field}' must be {expected}, got {data.get(field)!r}")

    required = {f for f in Board.__dataclass_fields__ if f not in ("notes", "port")}
    for field in sorted(required):
        if field not in data:
            raise BoardError(f"{path}: missing field '{field}'")
    unknown = sorted(set(data) - required - {"notes", "port"})
    if unknown:
        raise BoardError(f"{path}: unknown field(s) {', '.join(map(repr, unknown))}")

    def text(field: str, *, optional: bool = False) -> str | None:
        value = data[field]
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise fail(field, "a non-empty string" + (" or null" if optional else ""))
        return value

    def positive_int(field: str) -> int:
        value = data[field]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise fail(field, "a positive integer")
        return value

    def flag(field: str) -> bool:
        if not isinstance(data[field], bool):
            raise fail(field, "true or false")
        return data[field]

    if text("name") != path.stem:
        raise fail("name", f"the file name '{path.stem}'")
    if data["core"] not in CORES:
        raise fail("core", "one of " + ", ".join(CORES))
    if data["float_abi"] not in FLOAT_ABIS:
        raise fail("float_abi", "'hard' or 'soft'")
    fpu = text("fpu", optional=True)
    if fpu is None and data["float_abi"] == "hard":
        raise fail("float_abi", "'soft' when 'fpu' is null")
    if "notes" in data:
        text("notes")

    pio = data["platformio"]
    if not isinstance(pio, dict) or set(pio) != {"platform", "board", "framework"}:
        raise fail("platformio", "an object with keys 'platform', 'board' and 'framework'")
    for key in ("platform", "board"):
        if not isinstance(pio[key], str) or not pio[key].strip():
            raise BoardError(f"{path}: field 'platformio.{key}' must be a non-empty string, got {pio[key]!r}")
    if pio["framework"] is not None and (not isinstance(pio["framework"], str) or not pio["framework"].strip()):
        raise BoardError(
            f"{path}: field 'platformio.framework' must be a non-empty string or null, got {pio['framework']!r}"
        )

    return Board(
        name=data["name"],
        description=text("description"),
        core=data["core"],
        mcpu=text("mcpu"),
        fpu=fpu,
        float_abi=data["float_abi"],
        dsp=flag("dsp"),
        clock_hz=positive_int("clock_hz"),
        sram_bytes=positive_int("sram_bytes"),
        flash_bytes=positive_int("flash_bytes"),
        platformio=PlatformIOTarget(pio["platform"], pio["board"], pio["framework"]),
        uart=text("uart"),
        qemu_machine=text("qemu_machine", optional=True),
        emulated=flag("emulated"),
        notes=data.get("notes"),
        port=_port(data.get("port"), path),
    )


def _port(value: object, path: Path) -> BoardPort | None:
    """The optional ``port`` object: {"family": one of PORT_FAMILIES, "mcu": "...", "flash_origin": "0x...",
    "sram_origin": "0x...", "openocd": ["interface/....cfg", "target/....cfg"]}."""
    keys = {"family", "mcu", "flash_origin", "sram_origin", "openocd"}
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != keys:
        raise BoardError(f"{path}: field 'port' must be an object with keys {', '.join(sorted(keys))}, "
                         f"got {value!r}")
    if not isinstance(value["mcu"], str) or not value["mcu"].strip():
        raise BoardError(f"{path}: field 'port.mcu' must be a non-empty string, got {value['mcu']!r}")
    ocd = value["openocd"]
    if not isinstance(ocd, list) or not ocd or not all(isinstance(c, str) and c.endswith(".cfg") for c in ocd):
        raise BoardError(f"{path}: field 'port.openocd' must be a list of OpenOCD .cfg files, got {ocd!r}")
    if value["family"] not in PORT_FAMILIES:
        raise BoardError(f"{path}: field 'port.family' must be one of {', '.join(PORT_FAMILIES)}, "
                         f"got {value['family']!r}")
    origins = {}
    for key in ("flash_origin", "sram_origin"):
        v = value[key]
        try:
            if not isinstance(v, str) or not v.lower().startswith("0x"):
                raise ValueError
            origins[key] = int(v, 16)
        except ValueError:
            raise BoardError(f"{path}: field 'port.{key}' must be a hex address string like '0x08000000', "
                             f"got {v!r}") from None
    return BoardPort(value["family"], value["mcu"], origins["flash_origin"], origins["sram_origin"], tuple(ocd))


def resolve_limits(
    board: str | None, sram: str | int | None, flash: str | int | None
) -> tuple[int, int, Board | None]:
    """Return ``(sram_bytes, flash_bytes, board)``: the board's budgets, each overridden by an explicit --sram/--flash.

    Without a board both --sram and --flash are required. Strings are parsed with parse_size
    (``320KB``, ``1MB``, ...); integers are bytes.
    """
    preset = load_board(board) if board is not None else None
    if preset is None:
        missing = [flag for flag, value in (("--sram", sram), ("--flash", flash)) if value is None]
        if missing:
            raise BoardError(
                f"no memory budget: missing {' and '.join(missing)}; give --board NAME "
                f"(one of {', '.join(list_boards())}) or both --sram and --flash"
            )
    sram_bytes = parse_size(sram, what="--sram") if sram is not None else preset.sram_bytes
    flash_bytes = parse_size(flash, what="--flash") if flash is not None else preset.flash_bytes
    return sram_bytes, flash_bytes, preset
