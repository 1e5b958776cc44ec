"""The C flags of every build of a generated project, in one place: language and warnings (``-Werror``
everywhere), optimisation, and the defines that tell the firmware which board it runs on. The plain
gcc firmware build (``firmware_build``), the project's ``platformio.ini`` and its host ``Makefile``
all take them from here, so the three builds cannot drift apart."""
from __future__ import annotations

from boards import Board

LANG_WARN = ("-std=c99", "-Wall", "-Wextra", "-Werror")
OPT = "-O2"
# PROTOCOL.md: a half frame is dropped after this silence. Under QEMU -icount shift=0 virtual time runs
# ~10x slower than real time while the UART is polled, so the QEMU harness builds use 25 ms (~0.3 s real).
QEMU_FRAME_TIMEOUT_MS = 25


def board_defines(board: Board) -> list[str]:
    """Board identity for INFO, the per-layer hooks, the DSP kernels where the core has them."""
    d = [f'-DTE_BOARD_NAME="{board.name}"', f'-DTE_CORE="{board.core}"', f"-DTE_CLOCK_HZ={board.clock_hz}u",
         '-DTE_HOOKS_HEADER="te_hooks.h"']
    if board.dsp:
        d.append("-DTE_USE_DSP")
    return d


def pio_flag(flag: str) -> str:
    """A flag as platformio.ini's build_flags needs it: a string define keeps its quotes (-DX='"s"')."""
    name, eq, value = flag.partition("=")
    if eq and value.startswith('"'):
        return f"{name}='{value}'"
    return flag


def pio_common_flags(board: Board) -> list[str]:
    """The [common] build_flags of a generated project's platformio.ini."""
    return [*LANG_WARN, OPT, "-Isrc", "-Isrc/app", *(pio_flag(f) for f in board_defines(board))]
