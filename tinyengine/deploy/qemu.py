"""Run a firmware ELF in QEMU with its UART on a local TCP port (the probe's ``socket://`` URL).

``qemu-system-arm -M <machine> -nographic -monitor none -semihosting-config enable=on,target=native
-icount shift=N -serial tcp:127.0.0.1:PORT,server=on,wait=off,nodelay=on -kernel ELF``: ``nodelay`` because
the firmware sends byte by byte (Nagle + delayed ACK would add ~40 ms per response), ``-icount`` so SysTick
counts instructions deterministically (instructions = ticks * 40 / 2**shift), ``-monitor none`` keeps
QEMU's monitor off stdio.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tinyml_errors import DeployError

QEMU = "qemu-system-arm"
DEBIAN_PACKAGE = "qemu-system-arm"


# SysTick (CLKSOURCE = processor clock) of each machine: MPS2 images 25 MHz; netduinoplus2 168 MHz
# (its SYSCLK is fixed in QEMU whatever RCC is told). Under -icount shift=N: instructions =
# ticks * 1e9 / hz / 2**N.
SYSTICK_HZ = {"netduinoplus2": 168_000_000}
MPS2_SYSTICK_HZ = 25_000_000


def systick_hz(machine: str) -> int:
    return SYSTICK_HZ.get(machine, MPS2_SYSTICK_HZ)


class QemuError(DeployError):
    """QEMU is missing, did not start, or stopped early."""


@dataclass
class QemuSession:
    url: str                 # socket://127.0.0.1:PORT
    port: int
    process: subprocess.Popen
    command: list[str]
    log: Path                # QEMU's stdout+stderr (semihosting output, fault dumps)
    icount_shift: int

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.process.poll() is None


def qemu_binary() -> str:
    path = shutil.which(QEMU)
    if path is None:
        raise QemuError(f"'{QEMU}' not found on PATH: install the Debian package '{DEBIAN_PACKAGE}'")
    return path


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool | None:
    """Whether 127.0.0.1:port is in LISTEN state (from /proc/net/tcp; None when that is unavailable)."""
    try:
        text = Path("/proc/net/tcp").read_text()
    except OSError:
        return None
    want = f":{port:04X}"
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) > 3 and parts[1].endswith(want) and parts[3] == "0A":
            return True
    return False


def qemu_command(elf: str | Path, machine: str, port: int, icount_shift: int = 0,
                 extra_args: tuple[str, ...] = ()) -> list[str]:
    return [qemu_binary(), "-M", machine, "-nographic", "-monitor", "none",
            "-semihosting-config", "enable=on,target=native", "-icount", f"shift={icount_shift}",
            "-serial", f"tcp:127.0.0.1:{port},server=on,wait=off,nodelay=on", *extra_args, "-kernel", str(elf)]


@contextmanager
def qemu_serial(elf: str | Path, machine: str, *, icount_shift: int = 0, startup_timeout: float = 20.0,
                extra_args: tuple[str, ...] = ()) -> Iterator[QemuSession]:
    """Start QEMU on ``elf``, wait until its serial port accepts connections, yield the session (``.url``
    for ProbeClient.open), and kill QEMU on exit."""
    elf = Path(elf)
    if not elf.is_file():
        raise QemuError(f"firmware ELF not found: {elf}")
    port = free_tcp_port()
    cmd = qemu_command(elf, machine, port, icount_shift, extra_args)
    fd, log_name = tempfile.mkstemp(prefix="qemu-", suffix=".log")
    log = Path(log_name)
    with os.fdopen(fd, "wb") as logf:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
    session = QemuSession(f"socket://127.0.0.1:{port}", port, proc, cmd, log, icount_shift)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise QemuError(f"QEMU exited with status {proc.returncode} before its serial port opened:\n"
                                f"  {' '.join(cmd)}\n{session.output()[-2000:]}")
            state = _listening(port)
            if state is None:  # no /proc: probe by connecting (QEMU re-listens after the close)
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        pass
                    state = True
                except OSError:
                    state = False
            if state:
                break
            if time.monotonic() > deadline:
                raise QemuError(f"QEMU's serial port 127.0.0.1:{port} did not open within {startup_timeout:g} s:"
                                f"\n  {' '.join(cmd)}\n{session.output()[-2000:]}")
            time.sleep(0.02)
        yield session
    finally:
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            log.unlink()
        except OSError:
            pass
