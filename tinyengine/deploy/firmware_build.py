"""Build the probe firmware (firmware/app, PROTOCOL.md) for an emulated board with plain
arm-none-eabi-gcc: the application, the board layer, the QEMU MPS2 runtime and a generated project's
src/. The source lists and flags are functions so that a PlatformIO build can use the same ones."""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import firmware
from boards import Board, load_board
from tinyengine.deploy.flags import LANG_WARN, OPT, QEMU_FRAME_TIMEOUT_MS, board_defines
from tinyml_errors import DeployError

FIRMWARE = firmware.root()
APP = FIRMWARE / "app"
QEMU_RUNTIME = FIRMWARE / "qemu"
APP_SOURCES = ("main.c", "te_protocol.c", "te_timing.c")        # board independent
QEMU_RUNTIME_SOURCES = ("startup.c", "uart.c", "semihost.c", "timer.c")
CC = "arm-none-eabi-gcc"


class FirmwareBuildError(DeployError):
    """The toolchain is missing or the compile/link failed (the message holds the command and its output)."""


@dataclass
class FirmwareBuild:
    elf: Path
    map_file: Path
    command: list[str]


def _board(board: Board | str) -> Board:
    return load_board(board) if isinstance(board, str) else board


def app_sources(board: Board | str) -> list[Path]:
    """firmware/app sources for ``board``: the application plus its board layer (firmware/ports/<family>
    for a board with a port, e.g. the real parts and netduinoplus2; else QEMU MPS2's board_qemu.c)."""
    b = _board(board)
    if b.port is not None:  # a real MCU's board layer (firmware/ports), also on its emulation
        from tinyengine.deploy.board_port import port_sources
        return [APP / f for f in APP_SOURCES] + port_sources(b)
    if not b.emulated:
        raise FirmwareBuildError(f"board '{b.name}': no board layer for real hardware yet "
                                 f"(add firmware/app/board_<family>.c implementing board.h)")
    return [APP / f for f in APP_SOURCES] + [APP / "board_qemu.c"]


def runtime_sources(board: Board | str) -> list[Path]:
    """Startup code, UART and SysTick of the emulated MPS2 boards (a port keeps all but the UART)."""
    if _board(board).port is not None:
        from tinyengine.deploy.board_port import runtime_sources as port_runtime
        return port_runtime()
    return [QEMU_RUNTIME / f for f in QEMU_RUNTIME_SOURCES]


def linker_script(board: Board | str) -> Path:
    b = _board(board)
    if not b.qemu_machine:
        raise FirmwareBuildError(f"board '{b.name}' has no QEMU machine")
    ld = QEMU_RUNTIME / f"{b.qemu_machine}.ld"
    if not ld.is_file():
        raise FirmwareBuildError(f"no linker script {ld} for {b.qemu_machine}")
    return ld


def include_dirs(project_dir: str | Path) -> list[Path]:
    return [APP, QEMU_RUNTIME, Path(project_dir) / "src"]


def project_sources(project_dir: str | Path) -> list[Path]:
    """The generated model, weights and kernel library (everything in <project>/src)."""
    src = Path(project_dir) / "src"
    files = sorted(src.glob("*.c"))
    if not (src / "model.h").is_file() or not files:
        raise FirmwareBuildError(f"{src}: not a generated project (model.h / *.c missing)")
    return files


def defines(board: Board | str) -> list[str]:
    """-D flags of the plain gcc build: the board's (``flags.board_defines``), its port's, and the QEMU
    harness's shorter frame timeout on an emulated board."""
    b = _board(board)
    d = board_defines(b)
    if b.port is not None:
        from tinyengine.deploy.board_port import port_defines
        d += port_defines(b)
    if b.emulated:  # virtual time under -icount runs ~10x slower than real time while the UART is polled
        d.append(f"-DTE_PROTO_TIMEOUT_MS={QEMU_FRAME_TIMEOUT_MS}u")
    return d


def build_qemu_firmware(project_dir: str | Path, board: Board | str, out_elf: str | Path, *,
                        opt: str = OPT, extra_flags: tuple[str, ...] = (), timeout: float = 300) -> FirmwareBuild:
    """Compile and link the probe firmware for ``board`` (an emulated one) into ``out_elf`` (+ ``.map``)."""
    b = _board(board)
    cc = shutil.which(CC)
    if cc is None:
        raise FirmwareBuildError(f"'{CC}' not found on PATH: install the Debian packages 'gcc-arm-none-eabi' "
                                 f"and 'libnewlib-arm-none-eabi'")
    out_elf = Path(out_elf)
    out_elf.parent.mkdir(parents=True, exist_ok=True)
    map_file = out_elf.with_suffix(".map")
    incs = include_dirs(project_dir)
    if b.port is not None:  # the part's memory map, beside the ELF
        from tinyengine.deploy.board_port import linker_script_text, port_include_dirs
        ld = out_elf.with_suffix(".ld")
        ld.write_text(linker_script_text(b, str(QEMU_RUNTIME / "mps2-sections.ld")))
        incs = port_include_dirs(b) + incs
    else:
        ld = linker_script(b)
    cmd = [cc, *LANG_WARN, opt, *b.compiler_flags(), "-ffunction-sections", "-fdata-sections", *defines(b),
           *(f"-I{d}" for d in incs), *extra_flags,
           *map(str, app_sources(b) + runtime_sources(b) + project_sources(project_dir)),
           "-nostartfiles", "-specs=nano.specs", f"-L{ld.parent}", "-T", str(ld), "-Wl,--gc-sections",
           f"-Wl,-Map={map_file}", "-o", str(out_elf)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise FirmwareBuildError(f"firmware build failed ({r.returncode}):\n  {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return FirmwareBuild(out_elf, map_file, cmd)
