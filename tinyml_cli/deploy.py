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
import time

from rich.table import Table

from boards import Board, load_board
from tinyengine.deploy.pio import BuildResult, PioError
from tinyengine.deploy.session import build_project, emulate_built, probe, read_project
from tinyengine.outdir import check_output_file, write_output
from tinyml_errors import UsageError


# ----------------------------------------------------------------------------- project
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
    from tinyengine.deploy.flash import flash
    from tinyml_errors import DeployError
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
                            log=console.print)
    except (ProbeError, QemuError) as e:
        console.print(f"[bold red]emulation failed:[/] {e}")
        return 1
    print_probe(console, rec, "QEMU")
    _save(console, rec, args.json_out)
    return 0
