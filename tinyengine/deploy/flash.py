"""``tinyengine flash DIR``: write a generated project's real-part firmware (the offline ``armbare``
build, ``.pio/build/<env>_offline/firmware.elf``) to the board through its debugger, with OpenOCD
(Debian package ``openocd``; the board's interface/target configs from ``boards/<name>.json``) or
pyOCD (``pip install pyocd``; give ``--target``). Without the tool or without a board attached:
one clear message, non-zero exit."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from boards import Board
from tinyml_errors import DeployError

# What OpenOCD / pyOCD print when no probe or no target answers (matched case-insensitively).
NO_BOARD = ("open failed", "no device found", "unable to find", "no connected debug probes", "no probe",
            "libusb_open() failed", "error connecting dp", "target not examined")


def flash_command(board: Board, elf: Path, tool: str, target: str | None = None) -> list[str]:
    """The command line that programs ``elf`` (verify, reset, exit)."""
    if tool == "openocd":
        cmd = ["openocd"]
        for cfg in board.port.openocd:
            cmd += ["-f", cfg]
        return cmd + ["-c", f"program {elf} verify reset exit"]
    if tool == "pyocd":
        if not target:
            raise DeployError(f"pyocd needs --target for {board.name} (the part is {board.port.mcu}; "
                              "`pyocd list --targets` names them)")
        return ["pyocd", "flash", "--target", target, str(elf)]
    raise DeployError(f"--tool must be openocd or pyocd, got {tool!r}")


def pick_tool(tool: str) -> str:
    """'auto' -> the first of openocd, pyocd found on PATH; DeployError naming both when neither is."""
    if tool != "auto":
        if shutil.which(tool) is None:
            raise DeployError(f"'{tool}' not found on PATH (" + ("Debian package 'openocd'" if tool == "openocd"
                              else "pip install pyocd") + ")")
        return tool
    for t in ("openocd", "pyocd"):
        if shutil.which(t):
            return t
    raise DeployError("no flashing tool found: install OpenOCD (Debian package 'openocd') or pyOCD "
                      "(pip install pyocd), or copy firmware.bin to the board's USB drive (ST-LINK/J-Link MSD)")


def flash(board: Board, elf: Path, tool: str = "auto", target: str | None = None,
          timeout: float = 120) -> subprocess.CompletedProcess:
    """Program ``elf`` into ``board``; DeployError with one line when the tool or the board is missing."""
    if board.port is None or board.emulated:
        raise DeployError(f"board {board.name} is {'emulated' if board.emulated else 'without a board layer'}: "
                          "nothing to flash (use `tinyengine emulate`)")
    if not elf.is_file():
        raise DeployError(f"{elf}: no firmware (run `tinyengine build` first)")
    t = pick_tool(tool)
    cmd = flash_command(board, elf, t, target)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeployError(f"{' '.join(cmd)} did not finish within {timeout:g} s") from None
    log = (r.stdout + r.stderr).lower()
    if r.returncode != 0:
        if any(s in log for s in NO_BOARD):
            raise DeployError(f"no {board.description} found by {t}: connect the board's debugger USB port "
                              f"(and check its permissions, e.g. udev rules) and try again")
        tail = " | ".join((r.stdout + r.stderr).strip().splitlines()[-3:])
        raise DeployError(f"{t} failed (exit {r.returncode}): {tail}")
    return r
