"""A generated project on its way to a board or QEMU, as a library: read it (``read_project``), build it
offline (``build_project``: the linker map's arena must equal the plan), measure a running firmware
over the serial protocol (``probe``: hash, outputs against the reference, latency per run and per
layer, the link's figures) and run a build in QEMU and probe it (``emulate_built``). The command lines
print what these return."""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable

from boards import Board, load_board
from tinyengine.deploy.pio import BuildResult, PioError, build, pio_env_names
from tinyml_errors import UsageError
from tinyml_errors.files import read_json


def read_project(root: str | Path) -> tuple[Path, dict, Board]:
    """(folder, lowering.json, board) of a project written by ``tinyengine gen``; a UsageError otherwise."""
    root = Path(root)
    meta_file = root / "lowering.json"
    if not root.is_dir():
        raise UsageError(f"{root}: no such project folder (write one with `tinyengine gen MODEL --out {root}`)")
    if not meta_file.is_file():
        raise UsageError(f"{root}: not a generated project (no lowering.json; see `tinyengine gen`)")
    meta = read_json(meta_file, UsageError)
    if not isinstance(meta, dict) or not isinstance(meta.get("board"), str):
        raise UsageError(f"{meta_file}: no board named (regenerate the project with `tinyengine gen`)")
    return root, meta, load_board(meta["board"])


def offline_env(board: Board, emulated: bool = False) -> str:
    """The offline environment: the real part when the board has a port (flashable), else (or with
    ``emulated``) the one QEMU runs."""
    return pio_env_names(board)["qemu" if emulated else "offline"]


def build_project(root: Path, meta: dict, board: Board, verbose: bool = False, emulated: bool = False) -> BuildResult:
    if board.qemu_machine is None and board.port is None:
        raise UsageError(f"board {board.name} has no QEMU stand-in: build it with `pio run` and its real platform")
    res = build(root, offline_env(board, emulated), board.name, board.flash_bytes, board.sram_bytes,
                verbose=verbose)
    if res.arena_bytes is not None and res.arena_bytes != meta["arena_bytes"]:
        raise PioError(f"{res.elf}: te_arena is {res.arena_bytes} B in the linker map but the plan says "
                       f"{meta['arena_bytes']} B (one cost model: they must be equal)")
    return res


def _stats(xs: list[float]) -> tuple[float, float, float]:
    return statistics.median(xs), min(xs), max(xs)


def _emulated(info, shift: int | None) -> bool:
    """QEMU has no DWT: a Cortex-M3/M4/M7 firmware that fell back to SysTick is running emulated."""
    from tinyengine.deploy.protocol import TimerKind
    if shift is not None:
        return True
    return info.timer == TimerKind.SYSTICK and any(c in info.core for c in ("m3", "m4", "m7"))


def probe(client, *, runs: int, layers: bool, timeout: float, project: Path | None = None,
          meta: dict | None = None, icount_shift: int | None = None, qemu_timer_hz: int | None = None) -> dict:
    """Measure a running firmware; returns the JSON record (outputs checked when a project is given)."""
    from tinyengine.deploy.probe_link import LinkStats, call_with_resync, transfer_timeout, wait_ready
    from tinyengine.deploy.protocol import TimerKind, ticks_to_instructions

    if runs < 1:
        raise UsageError(f"--runs must be >= 1, got {runs}")
    link = LinkStats()
    wait_ready(client, window=max(timeout, 5.0), stats=link)  # bytes sent while the board boots are lost
    info = client.info()
    emulated = _emulated(info, icount_shift)
    shift = icount_shift if icount_shift is not None else 0
    if emulated:
        qhz = qemu_timer_hz or 25_000_000  # the QEMU machine's SysTick (MPS2: 25 MHz)
        unit, conv = "instructions", (lambda t: ticks_to_instructions(t, shift, qhz))
    elif info.timer == TimerKind.HOST:
        unit, conv = "ns", float
    else:
        unit, conv = "cycles", float
    rec: dict = {"board": info.board, "core": info.core, "model": info.model, "model_hash": f"{info.model_hash:08x}",
                 "timer": info.timer.name, "timer_hz": info.timer_hz, "clock_hz": info.clock_hz,
                 "emulated": emulated, "icount_shift": shift if emulated else None, "unit": unit,
                 "arena_bytes": info.arena_bytes, "weight_bytes": info.weight_bytes, "macs": info.macs,
                 "board_status": info.status, "checks": {}}
    checks = rec["checks"]
    x = None
    wire = info.input_bytes + info.output_bytes + 8 + 32  # INFER request + response, framing included
    infer_timeout = transfer_timeout(client, wire, timeout)
    if project is not None and meta is not None:
        want_hash = meta.get("model_hash")
        checks["model_hash"] = want_hash is None or int(want_hash) == info.model_hash
        if not checks["model_hash"]:
            raise UsageError(f"the firmware on {client.name} runs model hash {info.model_hash:08x} "
                             f"({info.model}), but {project} is {int(want_hash):08x}: flash the project first")
        checks["arena_bytes"] = info.arena_bytes == meta["arena_bytes"]
        x = (project / "reference_input.bin").read_bytes()
        want = (project / "reference_output.bin").read_bytes()
        t0 = time.monotonic()
        y, ticks = call_with_resync(client, "INFER", lambda: client.infer(x, timeout=infer_timeout),
                                    model_hash=info.model_hash, stats=link)
        wall = time.monotonic() - t0
        checks["output_equals_reference"] = y == want
        if y != want:
            diff = sum(a != b for a, b in zip(y, want)) + abs(len(y) - len(want))
            raise UsageError(f"output of {info.model} on {client.name} differs from the NumPy reference in "
                             f"{diff} of {len(want)} bytes (reference_output.bin)")
    else:
        t0 = time.monotonic()
        _, ticks = call_with_resync(client, "INFER",
                                    lambda: client.infer(bytes(info.input_bytes), timeout=infer_timeout),
                                    model_hash=info.model_hash, stats=link)
        wall = time.monotonic() - t0
    bench_timeout = timeout + 3 * wall * runs
    ticks_runs: list[int] = []
    while len(ticks_runs) < runs:  # BENCH takes at most bench_max runs per request
        n = min(runs - len(ticks_runs), max(1, info.bench_max))
        ticks_runs += call_with_resync(
            client, "BENCH", lambda: client.bench(n, None if info.rx_in_arena else x, timeout=bench_timeout),
            model_hash=info.model_hash, stats=link)
    vals = [conv(t) for t in ticks_runs]
    med, lo, hi = _stats(vals)
    rec["runs"] = ticks_runs
    rec["latency"] = {"median": med, "min": lo, "max": hi, "unit": unit}
    if unit == "cycles" and info.clock_hz:
        rec["latency"]["median_ms"] = med / info.clock_hz * 1e3
    # the INFER round trip = the bytes on the line + the inference; the timer gives the inference alone
    rec["link"] = {**link.as_dict(), "infer_round_trip_s": round(wall, 4), "bytes_each_way": [
        info.input_bytes + 16, info.output_bytes + 8 + 16]}
    if unit == "cycles" and info.clock_hz:
        inf_s = ticks / info.clock_hz
        rec["link"].update(inference_s=round(inf_s, 6), transfer_s=round(max(wall - inf_s, 0.0), 4))
    if layers:
        prof = call_with_resync(client, "PROFILE", lambda: client.profile(x, timeout=timeout + 3 * wall),
                                model_hash=info.model_hash, stats=link)
        kinds = {la["index"]: la for la in (meta or {}).get("layers", [])}
        rec["layers"] = [{"index": la.index, "name": la.name, "macs": la.macs, "ticks": la.ticks,
                          unit: conv(la.ticks), "kernel": kinds.get(la.index, {}).get("kernel")}
                         for la in prof.layers]
        rec["profile_total_ticks"] = prof.total_ticks
    if project is not None:
        rec["project"] = str(project)
        if meta:
            rec["lowering"] = meta.get("layers", [])
    return rec


def emulate_built(res: BuildResult, root: Path, meta: dict, board: Board, *, runs: int = 1, layers: bool = True,
                  timeout: float = 60.0, log: Callable[[str], None] | None = None) -> dict:
    """Run a built firmware in QEMU (-icount shift=0) and probe it; the probe record."""
    if res.env_name != offline_env(board, emulated=True):
        raise PioError(f"{res.elf} is the {board.name} real-part build: build with "
                       f"build_project(..., emulated=True) to run it in QEMU {board.qemu_machine}")
    from tinyengine.deploy.protocol import ProbeClient
    from tinyengine.deploy.qemu import qemu_serial, systick_hz
    with qemu_serial(res.elf, board.qemu_machine, icount_shift=0) as q:
        if log is not None:
            log(f"QEMU {board.qemu_machine} (-icount shift=0), serial {q.url}")
        with ProbeClient.open(q.url, timeout=timeout) as client:
            rec = probe(client, runs=runs, layers=layers, timeout=timeout, project=root, meta=meta,
                        icount_shift=0, qemu_timer_hz=systick_hz(board.qemu_machine))
    rec["firmware"] = {"flash_bytes": res.flash_bytes, "ram_bytes": res.ram_bytes, "elf": str(res.elf),
                       "machine": board.qemu_machine}
    return rec
