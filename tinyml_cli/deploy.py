"""``tinyengine build | emulate | flash | probe``: firmware of a generated project, run on QEMU or a board.

``build DIR``     pio run (offline, local dev-platform armbare) and the ELF's flash/SRAM use against
                  the board (a real board: the real part, its board layer and memory map; ELF + BIN);
                  fails naming the overflow when the model does not fit.
``flash DIR``     build for the real part and program it with OpenOCD or pyOCD.
``emulate DIR``   build, start QEMU (-icount shift=0, UART on a TCP socket) and probe it.
``probe --port``  talk to a running firmware (/dev/ttyACM0 or socket://HOST:PORT): info, outputs
                  checked against the NumPy reference, latency table, per-layer profile, JSON record.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from rich.table import Table

from boards import Board, load_board
from tinyengine.deploy.pio import BuildResult, PioError, build
from tinyengine.outdir import check_output_file, write_output
from tinyml_errors import UsageError


# ----------------------------------------------------------------------------- project
def read_project(root: str | Path) -> tuple[Path, dict, Board]:
    """(folder, lowering.json, board) of a project written by ``tinyengine gen``; ValueError otherwise."""
    root = Path(root)
    meta_file = root / "lowering.json"
    if not root.is_dir():
        raise UsageError(f"{root}: no such project folder (write one with `tinyengine gen MODEL --out {root}`)")
    if not meta_file.is_file():
        raise UsageError(f"{root}: not a generated project (no lowering.json; see `tinyengine gen`)")
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as e:
        raise UsageError(f"{meta_file}: invalid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("board"), str):
        raise UsageError(f"{meta_file}: no board named (regenerate the project with `tinyengine gen`)")
    return root, meta, load_board(meta["board"])


def offline_env(board: Board, emulated: bool = False) -> str:
    """The offline environment: the real part when the board has a port (flashable), else (or with
    ``emulated``) the one QEMU runs."""
    from codegen.project import pio_env_names
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


def print_build(console, res: BuildResult, meta: dict, board: Board) -> None:
    t = Table(title=f"{meta['model']} firmware for {board.name} (pio run -e {res.env_name}, offline)")
    for col in ("", "firmware (ELF)", "board", "use", "planner"):
        t.add_column(col, justify="right" if col else "left")
    t.add_row("flash", f"{res.flash_bytes:,} B", f"{board.flash_bytes:,} B",
              f"{100 * res.flash_bytes / board.flash_bytes:.1f}%",
              f"weights {meta['weight_bytes']:,} B (+ code {res.flash_bytes - meta['weight_bytes']:,} B)")
    t.add_row("SRAM", f"{res.ram_bytes:,} B", f"{board.sram_bytes:,} B",
              f"{100 * res.ram_bytes / board.sram_bytes:.1f}%",
              f"arena {meta['arena_bytes']:,} B (+ stack and runtime {res.ram_bytes - meta['arena_bytes']:,} B)")
    console.print(t)
    if res.arena_bytes is not None:
        console.print(f"te_arena in the linker map: {res.arena_bytes:,} B = the planner's peak SRAM")
    console.print(f"ELF: {res.elf}")
    if board.port is not None and (res.elf.parent / "firmware.bin").is_file():
        console.print(f"BIN: {res.elf.parent / 'firmware.bin'} (for {board.port.mcu} at flash "
                      f"0x{board.port.flash_origin:08X}; `tinyengine flash {res.elf.parent.parent.parent.parent}`)")


def add_deploy_parsers(sub) -> None:
    b = sub.add_parser("build", help="build a generated project's firmware offline (pio run) and check it fits",
                       description="Build DIR (from `tinyengine gen`) with PlatformIO through the local "
                       "dev-platform armbare (system arm-none-eabi-gcc; no downloads) for the board's QEMU "
                       "stand-in with the board's flash/SRAM limits; report the ELF's flash and SRAM use.")
    b.add_argument("project", help="project folder written by `tinyengine gen`")
    b.add_argument("--verbose", action="store_true", help="show the compiler command lines")

    e = sub.add_parser("emulate", help="build, run in QEMU and probe (latency, outputs vs the reference)",
                       description="Build DIR, start QEMU (the board's stand-in, -icount shift=0: "
                       "deterministic instruction counts) with the UART on a TCP socket, and probe it.")
    e.add_argument("project")
    _probe_options(e)

    f = sub.add_parser("flash", help="build the real-part firmware and write it to the board (OpenOCD/pyOCD)",
                       description="Build DIR for the real MCU (offline, armbare) and program it through the "
                       "board's debugger with OpenOCD (the board's configs) or pyOCD (give --target).")
    f.add_argument("project")
    f.add_argument("--tool", default="auto", choices=("auto", "openocd", "pyocd"))
    f.add_argument("--target", help="pyOCD target name (pyocd list --targets)")

    p = sub.add_parser("probe", help="measure a running firmware over its serial port",
                       description="Talk the firmware protocol (firmware/PROTOCOL.md) to a board or QEMU.")
    p.add_argument("--port", required=True, help="serial device (/dev/ttyACM0) or pyserial URL "
                   "(socket://127.0.0.1:4444)")
    p.add_argument("--baud", type=int, default=115200, help="baud rate (default 115200; ignored by sockets)")
    p.add_argument("--project", help="the generated project running on the board: its model hash, "
                   "reference input and output are checked")
    _probe_options(p)


    c = sub.add_parser("calibrate", help="fit the per-kernel latency model to probe records",
                       description="Fit the latency model (per kernel: analytic terms, least squares on "
                       "relative error) to per-layer measurements saved by `tinyengine probe --layers --json` "
                       "or `tinyengine emulate --layers --json`, and save it for `analyze --latency-model` "
                       "and `tinynas search --latency-model`.")
    c.add_argument("records", nargs="+", help="probe record JSON files")
    c.add_argument("--board", required=True, help="the board the records were measured on")
    c.add_argument("--out", help="where to save the model (default latency-BOARD.json)")
    c.add_argument("--holdout", nargs="*", default=[], metavar="RECORD",
                   help="records kept out of the fit to report the prediction error on")


def cmd_calibrate(args: argparse.Namespace, console) -> int:
    from tinyengine.latency import evaluate, fit, read_records
    board = load_board(args.board)
    check_output_file(args.out or f"latency-{board.name}.json", "--out")
    train_paths = [r for r in args.records if r not in set(args.holdout)]
    samples, meta = read_records(train_paths)
    if not samples:
        raise UsageError("calibrate: the records hold no layer timings")
    model = fit(samples, target=board.name, core=meta["core"] or board.core, unit=meta["unit"])
    t = Table(title=f"latency model for {board.name} ({meta['unit']}, {len(samples)} layers of "
                    f"{len(train_paths)} records)")
    for col in ("kernel", "layers", "fit RMSPE", "terms"):
        t.add_column(col, justify="right" if col in ("layers", "fit RMSPE") else "left")
    for k, f in sorted(model.kernels.items()):
        t.add_row(k, str(f.samples), f"{100 * f.rmspe:.1f}%", ", ".join(f.terms))
    console.print(t)
    if args.holdout:
        held, _ = read_records(args.holdout)
        ev = evaluate(model, held)
        console.print(f"held out ({len(args.holdout)} records, {ev['layers']} layers): RMSPE "
                      f"{100 * ev['rmspe']:.1f}%, within +-10%: {100 * ev['within_10pct']:.1f}%")
    out = args.out or f"latency-{board.name}.json"
    model.save(out)
    console.print(f"wrote {out}")
    return 0


def _probe_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=int, default=20, help="timed inferences for the latency table (default 20)")
    p.add_argument("--layers", action="store_true", help="per-layer profile (cycles/instructions per layer)")
    p.add_argument("--json", dest="json_out", help="save the measurement record here (latency-model calibration)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a reply (default 10)")


def cmd_build(args: argparse.Namespace, console) -> int:
    root, meta, board = read_project(args.project)
    t0 = time.perf_counter()
    try:
        res = build_project(root, meta, board, verbose=args.verbose)
    except PioError as e:
        console.print(f"[bold red]build failed:[/] {e}")
        return 1
    print_build(console, res, meta, board)
    console.print(f"built in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_flash(args: argparse.Namespace, console) -> int:
    from tinyml_errors import DeployError

    from tinyengine.deploy.flash import flash
    root, meta, board = read_project(args.project)
    try:
        res = build_project(root, meta, board)
        flash(board, res.elf, args.tool, args.target)
    except (PioError, DeployError) as e:
        console.print(f"[bold red]flash failed:[/] {e}")
        return 1
    console.print(f"flashed {res.elf} to {board.description}; now: tinyengine probe --port /dev/ttyACM0 "
                  f"--project {root}")
    return 0


# ----------------------------------------------------------------------------- probe
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
    from tinyengine.deploy.protocol import TimerKind, ticks_to_instructions

    from tinyengine.deploy.probe_link import LinkStats, call_with_resync, transfer_timeout, wait_ready

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


def print_probe(console, rec: dict, url: str) -> None:
    unit = rec["unit"]
    console.print(f"[bold]{rec['model']}[/] on {rec['board']} ({rec['core']}, {'QEMU' if rec['emulated'] else url}): "
                  f"hash {rec['model_hash']}, arena {rec['arena_bytes']:,} B, weights {rec['weight_bytes']:,} B, "
                  f"{rec['macs'] / 1e6:.2f}M MACs, timer {rec['timer']}")
    if rec.get("board_status"):
        console.print(f"  board: {rec['board_status']}")
    ln = rec.get("link")
    if ln:
        up, down = ln["bytes_each_way"]
        line = f"  link: INFER {up:,} B up, {down:,} B down, round trip {ln['infer_round_trip_s'] * 1e3:.1f} ms"
        if "transfer_s" in ln:
            line += f" = transfer {ln['transfer_s'] * 1e3:.1f} ms + inference {ln['inference_s'] * 1e3:.2f} ms"
        if ln["resyncs"]:
            line += f"; resynchronised after {', '.join(ln['resyncs'])} (board reset or line dropped)"
        console.print(line)
    for k, v in rec["checks"].items():
        console.print(f"  {k.replace('_', ' ')}: {'[green]yes[/]' if v else '[red]NO[/]'}")
    lat = rec["latency"]
    t = Table(title=f"latency over {len(rec['runs'])} runs"
              + (f" (QEMU -icount shift={rec['icount_shift']}: instructions, not cycles)" if rec["emulated"] else ""))
    for col in ("", "median", "min", "max", f"{unit}/MAC"):
        t.add_column(col, justify="right")
    row = [unit, f"{lat['median']:,.0f}", f"{lat['min']:,.0f}", f"{lat['max']:,.0f}",
           f"{lat['median'] / rec['macs']:.2f}" if rec["macs"] else "-"]
    t.add_row(*row)
    if "median_ms" in lat:
        f = 1e3 / rec["clock_hz"]
        t.add_row("ms", f"{lat['median'] * f:.2f}", f"{lat['min'] * f:.2f}", f"{lat['max'] * f:.2f}", "")
    console.print(t)
    if "layers" in rec:
        lt = Table(title=f"per layer ({unit})")
        for col in ("#", "layer", "kernel", "MACs", unit, f"{unit}/MAC", "share"):
            lt.add_column(col, justify="left" if col in ("layer", "kernel") else "right")
        total = sum(la[unit] for la in rec["layers"]) or 1
        for la in rec["layers"]:
            lt.add_row(str(la["index"]), la["name"], (la["kernel"] or "").removeprefix("te_").removesuffix("_s8"),
                       f"{la['macs']:,}", f"{la[unit]:,.0f}",
                       f"{la[unit] / la['macs']:.2f}" if la["macs"] else "-", f"{100 * la[unit] / total:.1f}%")
        console.print(lt)


def _save(console, rec: dict, path: str | None) -> None:
    if path:
        check_output_file(path, "--json")
        write_output(path, json.dumps(rec, indent=1) + "\n", "--json")
        console.print(f"wrote {path}")


def cmd_probe(args: argparse.Namespace, console) -> int:
    from tinyengine.deploy.protocol import ProbeClient, ProbeError
    project = meta = None
    if args.json_out:
        check_output_file(args.json_out, "--json")
    if args.project:
        project, meta, _ = read_project(args.project)
    try:
        with ProbeClient.open(args.port, baudrate=args.baud, timeout=args.timeout) as client:
            rec = probe(client, runs=args.runs, layers=args.layers, timeout=args.timeout, project=project,
                        meta=meta)
    except ProbeError as e:
        console.print(f"[bold red]probe failed:[/] {e}")
        return 1
    print_probe(console, rec, args.port)
    _save(console, rec, args.json_out)
    return 0


def emulate_built(res: BuildResult, root: Path, meta: dict, board: Board, *, runs: int = 1, layers: bool = True,
                  timeout: float = 60.0, console=None) -> dict:
    """Run a built firmware in QEMU (-icount shift=0) and probe it; the probe record."""
    if res.env_name != offline_env(board, emulated=True):
        raise PioError(f"{res.elf} is the {board.name} real-part build: build with "
                       f"build_project(..., emulated=True) to run it in QEMU {board.qemu_machine}")
    from tinyengine.deploy.protocol import ProbeClient
    from tinyengine.deploy.qemu import qemu_serial, systick_hz
    with qemu_serial(res.elf, board.qemu_machine, icount_shift=0) as q:
        if console is not None:
            console.print(f"QEMU {board.qemu_machine} (-icount shift=0), serial {q.url}")
        with ProbeClient.open(q.url, timeout=timeout) as client:
            rec = probe(client, runs=runs, layers=layers, timeout=timeout, project=root, meta=meta,
                        icount_shift=0, qemu_timer_hz=systick_hz(board.qemu_machine))
    rec["firmware"] = {"flash_bytes": res.flash_bytes, "ram_bytes": res.ram_bytes, "elf": str(res.elf),
                       "machine": board.qemu_machine}
    return rec


def cmd_emulate(args: argparse.Namespace, console) -> int:
    from tinyengine.deploy.protocol import ProbeError
    from tinyengine.deploy.qemu import QemuError
    root, meta, board = read_project(args.project)
    if args.json_out:
        check_output_file(args.json_out, "--json")
    try:
        res = build_project(root, meta, board, emulated=True)
    except PioError as e:
        console.print(f"[bold red]build failed:[/] {e}")
        return 1
    console.print(f"built {res.elf}: flash {res.flash_bytes:,} B, SRAM {res.ram_bytes:,} B "
                  f"(arena {meta['arena_bytes']:,} B)")
    try:
        rec = emulate_built(res, root, meta, board, runs=args.runs, layers=args.layers, timeout=args.timeout,
                            console=console)
    except (ProbeError, QemuError) as e:
        console.print(f"[bold red]emulation failed:[/] {e}")
        return 1
    print_probe(console, rec, "QEMU")
    _save(console, rec, args.json_out)
    return 0
