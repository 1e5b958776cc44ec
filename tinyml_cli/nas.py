"""The ``tinynas`` command line: ``tinynas space`` (stage 1: pick the (W, R) search space)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from boards import list_boards
from boards.units import format_size
from search_spaces.space import SearchSpace
from tinyengine.outdir import check_output_file, claim, write_output
from tinyml_cli.common import run_command
from tinyml_errors import UsageError
from tinynas.cli_checks import check_device, check_range, check_space_args
from tinynas.constraints import constraints_from_args
from tinynas.data_check import check_image_folder
from tinynas.space_opt import optimize_space, plot_cdf
from tinynas.state_check import check_state


def _float_list(flag: str):
    def parse(text: str) -> tuple[float, ...]:
        """'0.2:1.0:0.1' (start:stop:step, inclusive) or '0.3,0.5,0.7'."""
        try:
            if ":" in text:
                lo, hi, step = (float(x) for x in text.split(":"))
                if step <= 0 or hi < lo:
                    raise ValueError
                n = int(round((hi - lo) / step))
                vals = tuple(round(lo + i * step, 6) for i in range(n + 1))
            else:
                vals = tuple(float(x) for x in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{flag}: cannot parse {text!r}; use start:stop:step (e.g. 0.2:1.0:0.1) or a list (0.3,0.5)")
        if not vals or any(v <= 0 for v in vals):
            raise argparse.ArgumentTypeError(f"{flag}: values must be positive, got {text!r}")
        return vals
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinynas", description="TinyNAS: search-space optimisation and "
                                "neural architecture search under microcontroller memory limits.")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("space", help="stage 1: pick the (width, resolution) space for a memory budget",
                       description="For every (W, R), sample sub-networks, keep those whose peak SRAM "
                       "and flash fit, and pick the space whose fitting models have the most MACs. "
                       "Sizes: 320KB = 320KiB = 327680 bytes (1 KB = 1024 B, as MCU datasheets use).")
    s.add_argument("--board", help=f"board preset for the limits ({', '.join(list_boards())})")
    s.add_argument("--sram", help="SRAM limit, e.g. 320KB (overrides the board's)")
    s.add_argument("--flash", help="flash limit, e.g. 1MB (overrides the board's)")
    s.add_argument("--sram-reserve", default="0",
                   help="SRAM kept for the firmware (stack, runtime state); the model gets the rest")
    s.add_argument("--flash-reserve", default="0", help="flash kept for the firmware's code")
    s.add_argument("--samples", type=int, default=1000, help="sub-networks per (W, R) (default 1000)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--widths", type=_float_list("--widths"), help="W values (default 0.2:1.0:0.1)")
    s.add_argument("--resolutions", type=_float_list("--resolutions"),
                   help="R values (default 48:224:16)")
    s.add_argument("--num-classes", type=int, default=1000, help="classifier outputs (default 1000)")
    s.add_argument("--in-channels", type=int, default=3, help="input image channels (default 3)")
    s.add_argument("--min-fit", type=float, default=0.01,
                   help="ignore spaces where fewer than this fraction of samples fit: a mean over a "
                        "handful of fits says little (default 0.01)")
    s.add_argument("--stream", action="store_true",
                   help="count peak SRAM with fused streaming execution (tinyengine gen --stream): "
                        "blocks and the stem run row by row where that lowers their peak")
    s.add_argument("--json", dest="json_out", help="write every space's figures and the choice here")
    s.add_argument("--plot", help="write the MACs CDF of the best spaces here (PNG)")
    s.add_argument("--top", type=int, default=12, help="rows of the table (default 12)")

    q = sub.add_parser("search", help="stage 2: train a supernet and search a network that fits",
                       description="Stage 1 picks (W, R); an OFA-style supernet is trained on it; a "
                       "constrained evolution (and a random search with as many evaluations) picks the "
                       "sub-network with the best held-out accuracy; the winner is fine-tuned, quantised "
                       "to int8 and compared with a hand-scaled MobileNetV2 that fits the same budget. "
                       "Re-running with the same --out resumes an interrupted run.")
    q.add_argument("--board", help=f"board preset for the limits ({', '.join(list_boards())})")
    q.add_argument("--sram", help="SRAM limit, e.g. 320KB (overrides the board's)")
    q.add_argument("--flash", help="flash limit, e.g. 1MB (overrides the board's)")
    q.add_argument("--latency", help="latency limit, e.g. 200ms (needs --board)")
    q.add_argument("--sram-reserve", default="0", help="SRAM kept for the firmware")
    q.add_argument("--flash-reserve", default="0", help="flash kept for the firmware's code")
    q.add_argument("--data", default="fashion-mnist",
                   help="'fashion-mnist' (default), 'fashion-vww[:CANVAS[:TARGET]]' (is a target item "
                        "present in a 64-128 px picture of Fashion-MNIST items; see README) or an ImageFolder "
                        "directory (PATH/<class>/*.png, or PATH/train and PATH/test)")
    q.add_argument("--in-channels", type=int, default=1, help="input channels, 1 or 3 (default 1)")
    q.add_argument("--budget", default="default",
                   help="default (a usable model; the expected time is printed first) | smoke (a pipeline "
                        "check in seconds, not a model) | quick | full")
    q.add_argument("--out", required=True, help="output directory (also the resume state): a new or empty "
                   "folder, or one holding this command's earlier (or interrupted) output")
    q.add_argument("--force", action="store_true", help="write into a folder that holds files the search did "
                   "not write (they are overwritten where the search writes the same name, never deleted)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    q.add_argument("--threads", type=int, help="CPU threads for torch (default: all cores, 1 per spare "
                   "core when the machine is busy)")
    q.add_argument("--no-progress", action="store_true", help="no progress bars")
    q.add_argument("--from", dest="from_step", metavar="STEP",
                   help="recompute from this step on, reusing the earlier steps' saved results (steps: "
                        "stage1, supernet, search, final_train, int8, baseline, report)")
    q.add_argument("--stream", action="store_true", help="count peak SRAM with fused streaming execution "
                   "everywhere (stage 1, evolution, baseline grid, report); `tinyengine gen` on the folder then "
                   "streams by default")
    q.add_argument("--no-baseline", action="store_true", help="skip training the hand-scaled MobileNetV2 "
                   "baseline (saves its time; the report then cannot say whether the search paid for itself)")
    return p


def cmd_search(args: argparse.Namespace, console: Console) -> int:
    from tinynas.search import BUDGETS, SearchOptions, run_search
    if args.budget not in BUDGETS:
        raise UsageError(f"--budget: unknown budget {args.budget!r}; choose one of {', '.join(BUDGETS)}")
    from tinynas.vww import is_vww, parse_spec
    if is_vww(args.data):
        parse_spec(args.data)  # a bad canvas or target is named before anything runs
    else:
        check_image_folder(args.data)
    from tinynas.search_pipeline import STEPS
    if args.from_step is not None and args.from_step not in STEPS:
        raise UsageError(f"--from: unknown step {args.from_step!r}; the steps are {', '.join(STEPS)}")
    check_device(args.device)
    check_range("--seed", args.seed, 0, 2 ** 32 - 1)
    if args.in_channels not in (1, 3):
        raise UsageError(f"--in-channels: must be 1 or 3, got {args.in_channels}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads: must be at least 1, got {args.threads}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {out} exists and is not a directory")
    cons = constraints_from_args(args.board, args.sram, args.flash, args.latency,
                                 sram_reserve=args.sram_reserve, flash_reserve=args.flash_reserve,
                                 stream=args.stream)
    if cons.latency_s is not None and cons.board is None:
        raise UsageError("--latency: a latency limit needs --board (the core and clock it runs on)")
    first_rank = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 owns the folder
    od = claim(out, "tinynas search", force=args.force, in_progress=True) if first_rank else None
    check_state(out, skip=set(od.foreign) if od is not None else set())
    console.print(f"[bold]TinyNAS search[/] ({args.budget}) under {cons.describe()} -> {out}")
    if cons.latency_s is not None:
        from tinynas.latency import latency_source
        console.print(f"latency from the {latency_source(cons)}")
    opts = SearchOptions(cons, out, data=args.data, budget=args.budget, in_channels=args.in_channels,
                         seed=args.seed, device=args.device, threads=args.threads,
                         progress=not args.no_progress, from_step=args.from_step,
                         baseline=not args.no_baseline,
                         live_progress=console.is_terminal and not args.no_progress, console=console)
    try:
        s = run_search(opts, log=lambda m: console.print(m, highlight=False))
    except BaseException:
        if od is not None:
            od.abandon()
        raise
    if od is not None:
        od.commit()
    if not s:
        return 0
    w = s["winner"]
    console.print(f"[bold green]winner[/]: float {100 * w['float_test_acc']:.2f}%, int8 "
                  f"{100 * w['int8_test_acc']:.2f}%, {w['macs'] / 1e6:.2f}M MACs, peak SRAM "
                  f"{format_size(w['peak_sram'])}{' (fused streaming)' if cons.stream else ''}, flash "
                  f"{format_size(w['flash_bytes'])}")
    return 0


def cmd_space(args: argparse.Namespace, console: Console) -> int:
    check_space_args(args)
    for flag, path in (("--json", args.json_out), ("--plot", args.plot)):
        if path:
            check_output_file(path, flag)
    cons = constraints_from_args(args.board, args.sram, args.flash, sram_reserve=args.sram_reserve,
                                 flash_reserve=args.flash_reserve)
    kw = {"num_classes": args.num_classes, "in_channels": args.in_channels}
    if args.widths:
        kw["width_choices"] = args.widths
    if args.resolutions:
        bad = [r for r in args.resolutions if not float(r).is_integer()]
        if bad:
            raise UsageError(f"--resolutions: resolutions must be whole pixels, got {bad}")
        kw["resolution_choices"] = tuple(int(r) for r in args.resolutions)
    space = SearchSpace(**kw)
    console.print(f"[bold]TinyNAS stage 1[/]: {len(space.width_choices)} widths x "
                  f"{len(space.resolution_choices)} resolutions x {args.samples} samples under "
                  f"{cons.describe()}" + (" (peak SRAM with fused streaming)" if args.stream else ""))
    t0 = time.perf_counter()
    with Progress(TextColumn("scoring (W, R) spaces"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=True) as prog:
        task = prog.add_task("spaces", total=len(space.width_choices) * len(space.resolution_choices))
        res = optimize_space(space, cons, samples=args.samples, seed=args.seed, min_fit_ratio=args.min_fit,
                             progress=lambda i, n: prog.update(task, completed=i), stream=args.stream)
    dt = time.perf_counter() - t0

    ranked = sorted(res.stats, key=lambda s: (-s.mean_macs, -s.fit_ratio))
    table = Table(title=f"Best (W, R) spaces by mean MACs of fitting sub-networks ({dt:.1f} s)")
    for col in ("W", "R", "fit ratio", "mean MACs", "p80 MACs", "min peak SRAM", "min flash"):
        table.add_column(col, justify="right")
    for s in ranked[:args.top]:
        mark = "bold green" if s is res.choice else ("dim" if s.fit_ratio < args.min_fit else None)
        table.add_row(f"{s.width_mult:g}", str(s.resolution), f"{100 * s.fit_ratio:.1f}%",
                      f"{s.mean_macs / 1e6:.1f}M" if s.fit else "-", f"{s.p80_macs / 1e6:.1f}M" if s.fit else "-",
                      format_size(s.min_peak_sram), format_size(s.min_flash), style=mark)
    console.print(table)
    console.print(f"[dim]dim rows: fewer than {100 * args.min_fit:g}% of samples fit (--min-fit); "
                  "not eligible[/]")

    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        write_output(args.json_out, json.dumps(res.to_dict(), indent=1) + "\n", "--json")
        console.print(f"wrote {args.json_out}")
    if res.choice is None:
        lo_s = min(res.stats, key=lambda s: s.min_peak_sram)
        lo_f = min(res.stats, key=lambda s: s.min_flash)
        console.print(
            f"[bold red]error:[/] no sub-network fits {cons.describe()}"
            + (f" in a space with at least {100 * args.min_fit:g}% fitting samples" if args.min_fit else "")
            + f". Smallest peak SRAM seen: {format_size(lo_s.min_peak_sram)} (w{lo_s.width_mult:g}-r"
            f"{lo_s.resolution}); smallest flash seen: {format_size(lo_f.min_flash)} (w{lo_f.width_mult:g}-r"
            f"{lo_f.resolution}). Raise the limits or add smaller widths/resolutions.")
        return 3
    if args.plot:
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        plot_cdf(res, args.plot)
        console.print(f"wrote {args.plot}")
    c = res.choice
    console.print(f"[bold green]chosen space: W={c.width_mult:g}, R={c.resolution}[/] "
                  f"(mean {c.mean_macs / 1e6:.1f}M MACs of fitting models, {100 * c.fit_ratio:.1f}% fit)")
    return 0


SIZE_FLAGS = ("--sram", "--flash", "--sram-reserve", "--flash-reserve", "--latency")


def _attach_values(argv: list[str]) -> list[str]:
    """`--flash -1MB` -> `--flash=-1MB`, so that a negative size reaches the size parser (and its
    clear error) instead of argparse taking it for an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in SIZE_FLAGS and i + 1 < len(argv) and argv[i + 1][:1] == "-" and argv[i + 1][1:2].isdigit():
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_attach_values(list(sys.argv[1:] if argv is None else argv)))
    console = Console()
    if args.cmd == "space":
        return run_command("tinynas", args.cmd, lambda: cmd_space(args, console))
    if args.cmd == "search":
        return run_command("tinynas", args.cmd, lambda: cmd_search(args, console),
                           interrupted=f"interrupted; run the same command again to resume from {args.out} "
                                       "(work since its last saved state is redone)")
    parser.error(f"unknown command {args.cmd}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
