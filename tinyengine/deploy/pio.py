"""PlatformIO, offline: a private core directory seeded so that ``pio run`` never downloads anything.

PlatformIO's registry is not needed for the project's own dev-platform ``armbare``
(``firmware/platformio/platform-armbare``): its toolchain and QEMU "packages" are stub folders of
symlinks into the system's ``arm-none-eabi-*`` and ``qemu-system-arm``, and the ``tool-scons`` package
that PlatformIO Core always wants is seeded from the SCons that pip installed into this environment
(with a ``.piopm`` owned by ``platformio``: without it PlatformIO tries to download SCons). The core
directory is private (``$TINYENGINE_PIO_CORE``, default ``~/.cache/tinyml-mcu/platformio``) so a
user's own PlatformIO installation (for ``platform = ststm32`` builds) is left alone.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import firmware
from tinyml_errors import DeployError

ARMBARE = firmware.root() / "platformio" / "platform-armbare"
SCONS_PIO_VERSION = "4.41101.0"  # what PlatformIO Core 6.2 requires (~4.41101.0 = SCons 4.11.1)
TOOLCHAIN_PIO_VERSION = "1.120201.0"  # GCC 12.2.1, as PlatformIO numbers its toolchain packages
DEBIAN = {"arm-none-eabi-gcc": "gcc-arm-none-eabi", "qemu-system-arm": "qemu-system-arm"}


class PioError(DeployError):
    """PlatformIO could not be set up or the build failed; the message says what and where."""


def core_dir() -> Path:
    return Path(os.environ.get("TINYENGINE_PIO_CORE", Path.home() / ".cache" / "tinyml-mcu" / "platformio"))


def _pio_exe() -> str:
    exe = Path(sys.executable).with_name("pio")
    if exe.is_file():
        return str(exe)
    found = shutil.which("pio")
    if found is None:
        raise PioError("PlatformIO not found: pip install platformio (it is a dependency of tinyml-mcu)")
    return found


def _write(path: Path, text: str) -> None:
    """Write only when the content changes (seeding runs before every build)."""
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def _write_json(path: Path, data: dict) -> None:
    _write(path, json.dumps(data, indent=1) + "\n")


def _symlink(link: Path, target: str) -> None:
    if link.is_symlink() and os.readlink(link) == target:
        return
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(target)


def seed_core(core: Path | None = None) -> dict[str, Path]:
    """Create (idempotently) the stub packages and tool-scons; returns their folders."""
    core = core or core_dir()
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        raise PioError("arm-none-eabi-gcc not found: install the Debian packages gcc-arm-none-eabi and "
                       "libnewlib-arm-none-eabi (`make setup` does it)")
    try:
        import SCons  # noqa: F401  (pip's scons: the engine of every PlatformIO build)
    except ImportError:
        raise PioError("SCons is not installed in this Python environment: pip install scons==4.11.1") from None

    stubs = core / "stubs"
    tc = stubs / "toolchain-gccarmnoneeabi"
    (tc / "bin").mkdir(parents=True, exist_ok=True)
    _write_json(tc / "package.json", {"name": "toolchain-gccarmnoneeabi", "version": TOOLCHAIN_PIO_VERSION,
                                      "description": "system arm-none-eabi-gcc (symlinks; tinyml-mcu)"})
    bindir = Path(gcc).resolve().parent
    for tool in sorted(bindir.glob("arm-none-eabi-*")):
        _symlink(tc / "bin" / tool.name, str(tool))

    qemu = stubs / "tool-qemu-system-arm"
    (qemu / "bin").mkdir(parents=True, exist_ok=True)
    _write_json(qemu / "package.json", {"name": "tool-qemu-system-arm", "version": "7.2.0",
                                        "description": "system qemu-system-arm (symlink; tinyml-mcu)"})
    q = shutil.which("qemu-system-arm")
    if q:
        _symlink(qemu / "bin" / "qemu-system-arm", str(Path(q).resolve()))

    scons = core / "packages" / "tool-scons"
    scons.mkdir(parents=True, exist_ok=True)
    _write(scons / "scons.py", "import sys\n\nfrom SCons.Script import main\n\nsys.exit(main())\n")
    _write_json(scons / "package.json", {"name": "tool-scons", "version": SCONS_PIO_VERSION,
                                         "description": "SCons from pip (tinyml-mcu offline seed)"})
    _write_json(scons / ".piopm", {"type": "tool", "name": "tool-scons", "version": SCONS_PIO_VERSION,
                                   "spec": {"owner": "platformio", "id": None, "name": "tool-scons",
                                            "requirements": None, "uri": None}})
    return {"core": core, "toolchain": tc, "qemu": qemu, "platform": ARMBARE}


def pio_environ(core: Path | None = None) -> dict[str, str]:
    """The environment for an offline ``pio`` run (no upgrade check: offline it stalls 61 s)."""
    dirs = seed_core(core)
    env = dict(os.environ)
    env.update({
        "PLATFORMIO_CORE_DIR": str(dirs["core"]),
        "PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL": "36500",
        "PLATFORMIO_SETTING_ENABLE_TELEMETRY": "no",
        "TINYENGINE_ARMBARE_PLATFORM": str(dirs["platform"]),
        "TINYENGINE_ARMBARE_TOOLCHAIN": str(dirs["toolchain"]),
        "TINYENGINE_ARMBARE_QEMU": str(dirs["qemu"]),
    })
    venv_bin = str(Path(sys.executable).parent)
    if venv_bin not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    return env


@dataclass
class BuildResult:
    env_name: str
    elf: Path
    flash_bytes: int        # .text + .rodata + .data (what the flash holds)
    ram_bytes: int          # .data + .bss (+ stack/heap sections): static SRAM
    arena_bytes: int | None  # te_arena's size in the linker map (the planner's peak SRAM)
    sections: dict[str, int]
    log: str


_OVERFLOW = re.compile(r"region [`'\"]?(\w+)['\"]? overflowed by (\d+) bytes")


def overflow_message(log: str, board_name: str, flash: int, sram: int) -> str | None:
    """One clear sentence per overflowed memory region of a failed link, or None."""
    from boards.units import format_size
    parts = []
    for region, n in dict(_OVERFLOW.findall(log)).items():
        size = flash if region.upper().startswith(("FLASH", "ROM")) else sram
        what = "flash" if region.upper().startswith(("FLASH", "ROM")) else "SRAM"
        parts.append(f"the firmware does not fit {board_name}'s {format_size(size)} {what}: "
                     f"region {region} overflowed by {int(n):,} B ({format_size(int(n))})")
    return "; ".join(parts) or None


def elf_sections(elf: Path) -> dict[str, int]:
    size = shutil.which("arm-none-eabi-size")
    if size is None:
        raise PioError("arm-none-eabi-size not found: install the Debian package binutils-arm-none-eabi")
    out = subprocess.run([size, "-A", "-d", str(elf)], capture_output=True, text=True, check=True).stdout
    secs = {}
    for line in out.splitlines():
        m = re.match(r"^(\.\S+)\s+(\d+)\s+(\d+)", line)
        if m:
            secs[m.group(1)] = int(m.group(2))
    return secs


def arena_from_map(map_file: Path) -> int | None:
    if not map_file.is_file():
        return None
    m = re.search(r"\.bss\.te_arena\s+0x[0-9a-f]+\s+0x([0-9a-f]+)", map_file.read_text())
    return int(m.group(1), 16) if m else None


def pio_run(project: Path, env_name: str, targets: tuple[str, ...] = (), timeout: float = 900,
            verbose: bool = False) -> subprocess.CompletedProcess:
    cmd = [_pio_exe(), "run", "-d", str(project), "-e", env_name]
    for t in targets:
        cmd += ["-t", t]
    if verbose:
        cmd.append("-v")
    return subprocess.run(cmd, capture_output=True, text=True, env=pio_environ(), timeout=timeout)


def build(project: Path, env_name: str, board_name: str, flash: int, sram: int,
          verbose: bool = False) -> BuildResult:
    """``pio run`` one environment of a generated project; PioError with the overflow named on failure."""
    project = Path(project)
    if not (project / "platformio.ini").is_file():
        raise PioError(f"{project}: no platformio.ini (generate the project with `tinyengine gen`)")
    r = pio_run(project, env_name, verbose=verbose)
    log = r.stdout + r.stderr
    if r.returncode != 0:
        over = overflow_message(log, board_name, flash, sram)
        if over:
            raise PioError(over)
        tail = "\n".join(log.strip().splitlines()[-25:])
        raise PioError(f"pio run -e {env_name} failed in {project} (exit {r.returncode}):\n{tail}")
    elf = project / ".pio" / "build" / env_name / "firmware.elf"
    if not elf.is_file():
        raise PioError(f"pio run succeeded but {elf} is missing")
    secs = elf_sections(elf)
    flash_b = sum(v for k, v in secs.items() if k in (".text", ".rodata", ".data", ".ARM.exidx", ".ARM.extab",
                                                       ".isr_vector", ".vectors"))
    ram_b = sum(v for k, v in secs.items() if k in (".data", ".bss", ".stack", ".heap", ".noinit"))
    return BuildResult(env_name, elf, flash_b, ram_b, arena_from_map(elf.parent / "firmware.map"), secs, log)


def pio_env_names(board) -> dict[str, str]:
    """PlatformIO environment names of a generated project: ``default`` (the board's real platform, or
    the offline one for an emulated board), ``offline`` (local dev-platform armbare) and the armbare
    board id."""
    env = re.sub(r"[^0-9A-Za-z_]", "_", board.name)
    names = {"default": env, "offline": env if board.emulated else f"{env}_offline",
             "armbare_board": board.platformio.board if board.platformio.platform == "armbare" else f"te_{env}"}
    # a real board with a port: `offline` is the real part (flashable), `qemu` its MPS2 stand-in
    names["qemu"] = f"{env}_qemu" if board.port is not None and not board.emulated else names["offline"]
    names["part_board"] = names["armbare_board"] if board.emulated else f"te_{env}_part"
    return names
