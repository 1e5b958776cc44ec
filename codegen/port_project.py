"""The real-part side of a generated project, for a board with a port (``firmware/ports/<family>``):
the board layer's sources under ``src/board/port/``, an ``armbare`` board manifest with the real MCU,
clock and memory, and the linker script with the part's true memory map (``ld/<board>.ld``). The
offline environment built from them gives a flashable ELF and BIN for the chip itself."""
from __future__ import annotations

import shutil
from pathlib import Path

from boards import Board
from tinyengine.deploy.board_port import FIRMWARE, board_macro, linker_script_text, port_defines, port_sources

PORT_DIR = "src/board/port"  # inside the project
# In a port build, the MPS2 CMSDK UART driver and the MPS2 board file are replaced by the port's.
PORT_SRC_FILTER = "+<*> -<app/board_qemu.c> -<board/qemu/uart.c>"
STANDIN_SRC_FILTER = "+<*> -<board/port/>"


def part_manifest(board: Board) -> dict:
    """PlatformIO board manifest (armbare) for the real part: MCU, core/FPU, f_cpu, flash/SRAM sizes;
    the QEMU machine only for a board that is itself emulated (netduinoplus2)."""
    p = board.port
    build = {"cpu": board.mcpu, "mcu": p.mcu, "f_cpu": f"{board.clock_hz}L"}
    if board.fpu:
        build.update(fpu=board.fpu, float_abi=board.float_abi)
    debug = {"openocd_target": p.openocd[-1].removeprefix("target/").removesuffix(".cfg")}
    if board.emulated and board.qemu_machine:
        debug["qemu_machine"] = board.qemu_machine
    return {"build": build, "debug": debug, "frameworks": [],
            "name": f"{board.description} (tinyml-mcu armbare, {p.mcu})",
            "upload": {"maximum_size": board.flash_bytes, "maximum_ram_size": board.sram_bytes,
                       "flash_origin": f"0x{p.flash_origin:08X}",
                       "protocol": "qemu" if board.emulated else "openocd",
                       "protocols": ["qemu"] if board.emulated else ["openocd", "pyocd"]},
            "url": "https://github.com/", "vendor": "tinyml-mcu"}


def write_port_files(root: Path, board: Board) -> list[Path]:
    """Copy the port's C files (and headers) into src/board/port and write ld/<board>.ld (real map)."""
    out: list[Path] = []
    dst = root / PORT_DIR
    dst.mkdir(parents=True, exist_ok=True)
    srcs = port_sources(board)
    headers = [h for d in {s.parent for s in srcs} for h in sorted(d.glob("*.h"))]
    for f in srcs + headers:
        shutil.copyfile(f, dst / f.name)
        out.append(dst / f.name)
    (root / "ld").mkdir(exist_ok=True)
    ld = root / "ld" / f"{board.name}.ld"
    ld.write_text(linker_script_text(board))
    shutil.copyfile(FIRMWARE / "qemu" / "mps2-sections.ld", root / "ld" / "mps2-sections.ld")
    return out + [ld, root / "ld" / "mps2-sections.ld"]


def port_build_flags(board: Board) -> list[str]:
    """Extra build_flags of a port environment (include dirs and the board selection)."""
    return ["-Isrc/board/qemu", f"-I{PORT_DIR}", *port_defines(board)]


__all__ = ["part_manifest", "write_port_files", "port_build_flags", "board_macro", "PORT_SRC_FILTER",
           "STANDIN_SRC_FILTER"]
