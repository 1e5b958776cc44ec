"""The ``tinyengine`` command line: ``analyze`` (memory plan, costs, kernel choices), ``gen`` (C project),
``build`` / ``emulate`` / ``probe`` (firmware, QEMU, serial-port measurements)."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from boards import list_boards, load_board
from boards.units import format_size
from search_spaces.zoo import load_model, zoo_names
from tinyengine.analyze import analyze, analyze_graph, plot_memory_profile
from tinyengine.frontend.model_source import is_model_file, load_model_file
from tinyengine.kernels.choice import kernel_choices
from tinyengine.outdir import check_output_file, write_output
from tinyengine.planner import PlanOptions
from tinyml_cli.common import run_command
from tinyml_cli.deploy import add_deploy_parsers
from tinyml_cli.export import add_export_parser
from tinyml_cli.gen import add_gen_parser
from tinyml_errors import LoweringError, UsageError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinyengine", description="TinyEngine: int8 inference engine "
                                "for Cortex-M: analysis, memory planning and code generation.")
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("analyze", help="per-layer MACs, params, flash, live memory and the peak SRAM",
                       description="MODEL is a zoo name (" + ", ".join(zoo_names()) + "), an "
                       "architecture JSON of ours, an MCUNet net.config JSON, an int8 .tflite or a float .onnx.")
    a.add_argument("model")
    a.add_argument("--board", help=f"check the model against a board's limits ({', '.join(list_boards())})")
    a.add_argument("--no-inplace", action="store_true",
                   help="plan without in-place depthwise/add (for comparison)")
    a.add_argument("--json", dest="json_out", help="write the analysis (layers, totals, arena layout) here")
    a.add_argument("--plot", help="write the per-layer memory profile here (PNG; with and without in-place)")
    a.add_argument("--quiet", action="store_true", help="totals only, no per-layer table")
    a.add_argument("--patches", type=int, default=1, metavar="N",
                   help="also plan MCUNetV2 patch-based inference (the early layers run in N x N patches): "
                        "peak SRAM with and without, and the extra MACs of the recomputed halos")
    a.add_argument("--patch-split", metavar="OP",
                   help="last op of the patched prefix (default: the split with the lowest peak "
                        "within 15%% extra MACs)")
    a.add_argument("--stream", action="store_true",
                   help="also plan fused streaming execution (segments run row by row, intermediates in "
                        "rings of rows; no extra MACs): the segments, their line buffers and the peak SRAM "
                        "with and without")
    a.add_argument("--latency-model", metavar="F",
                   help="latency model from `tinyengine calibrate` (default with --board: the shipped QEMU "
                        "Cortex-M4 instruction model, as estimated cycles on a real board)")
    a.add_argument("--winograd", action="store_true",
                   help="show the kernel choices as `tinyengine gen --winograd` would make them")
    a.add_argument("--pw-weights", choices=("int8", "int16", "auto"), default="int8",
                   help="show flash and kernel choices as `tinyengine gen --pw-weights` would make them (int16 "
                        "pointwise weights in flash; auto needs --board)")
    a.add_argument("--layout-choice", choices=("off", "memory", "speed"), default="memory",
                   help="depthwise in or out of place by predicted cost: memory (default) only where the "
                        "arena does not grow, speed also where it grows (up to --layout-extra-sram), off: "
                        "in place wherever possible")
    a.add_argument("--layout-extra-sram", type=int, default=0, metavar="BYTES",
                   help="with --layout-choice speed: bytes the arena may grow by (0: no limit)")
    a.add_argument("--fuse-add", choices=("on", "off"), default="on",
                   help="pointwise projection + residual add as one kernel (te_conv_pointwise_add_s8) where the "
                        "arena does not grow: on (default) or off")
    a.add_argument("--specialize", choices=("off", "auto", "all"), default="off",
                   help="show which layers `gen --specialize` would give a specialised kernel copy, the "
                        "estimated instructions saved and code bytes (budget: --board's flash or the limit)")
    a.add_argument("--specialize-flash-limit", type=int, default=None, metavar="BYTES",
                   help="code bytes the specialised copies may add (as gen's)")
    add_gen_parser(sub)
    add_deploy_parsers(sub)
    add_export_parser(sub)
    return p


def _c_kernels(an, winograd: bool) -> tuple[list[dict] | None, str | None]:
    """The generated code's kernel per op (the kernel registry's choices), or why there are none."""
    try:
        return kernel_choices(an.plan, winograd=winograd), None
    except LoweringError as e:
        return None, str(e)


def _apply_pw_weights(an, mode: str, board_name: str | None) -> dict | None:
    """``--pw-weights``: mark the int16 layers (tinyengine/kernels/pw_weights.py) on the analysed graphs and
    recount the per-layer and total flash with their doubled weights."""
    if mode == "int8":
        return None
    from tinyengine.ir.opcost import op_flash
    from tinyengine.kernels.pw_weights import choose_pw_weights
    board = load_board(board_name) if board_name else None
    where = (board.flash_bytes, board.name, board.dsp) if board else (None, "the board", True)
    rec = None
    for g in {id(an.graph): an.graph, id(an.plan.graph): an.plan.graph}.values():
        rec = choose_pw_weights(g, mode, *where)
    flash = {op.name: op_flash(op) for op in an.graph.ops}
    for r in an.rows:
        r.flash = flash.get(r.name, r.flash)
    an.flash_bytes = sum(flash.values())
    return rec


def _num(v) -> str:
    return "?" if v is None else f"{v:,}"


def _print_fused(plan, console: Console) -> None:
    """The residual-add fusion (tinyengine.passes.fuse_add): which projection + add pairs run as one op."""
    if plan.options.fuse_add == "off":
        console.print("[bold]fused residual adds[/]: off (--fuse-add off)")
        return
    recs = plan.fused
    saved = sum(r["saved_tensor_bytes"] for r in recs.values())
    console.print(f"[bold]fused residual adds[/] (--fuse-add on): {len(recs)} projection + add pairs run as "
                  f"te_conv_pointwise_add_s8 ({', '.join(recs) or 'none'}); {saved:,} B of projection "
                  "outputs never stored; arena not grown by it")


def _print_layout_choice(plan, console: Console, quiet: bool) -> None:
    """The layout pass's depthwise decisions: each op's choice, reason and alternatives' costs."""
    recs = plan.layout
    moved = {n: r for n, r in recs.items() if r["choice"] == "out of place"
             and "te_depthwise_inplace_s8" in r["alternatives"]}
    if not recs:
        return
    saved = sum(r["alternatives"]["te_depthwise_inplace_s8"]["predicted_instructions"]
                - r["alternatives"]["te_depthwise_s8"]["predicted_instructions"] for r in moved.values())
    console.print(f"[bold]layout choice[/] ({plan.options.layout_choice}): {len(moved)} of {len(recs)} depthwise "
                  f"out of place, {saved:,} predicted instructions saved, arena unchanged by it"
                  + ("" if plan.options.layout_choice != "speed" else " or grown within the allowance"))
    if quiet:
        return
    for name, r in recs.items():
        alts = "; ".join(f"{k.removeprefix('te_').removesuffix('_s8')}: {_num(v['predicted_instructions'])} insn, "
                         f"arena {_num(v['arena_bytes'])} B" for k, v in r["alternatives"].items())
        console.print(f"  {name}: {r['choice']} -- {r['reason']} [{alts}]")


def _specialisation(kernels: list[dict], args, board, weight_bytes: int, console: Console,
                    latency=None) -> dict | None:
    """``--specialize``: gen's per-layer decisions (tinyengine/kernels/specialize.py) for these kernels."""
    from types import SimpleNamespace

    from tinyengine.kernels.specialize import check_mode, choose, flash_budget
    check_mode(args.specialize, args.specialize_flash_limit)
    if args.specialize == "off":
        return None
    budget = (flash_budget(board, weight_bytes, args.specialize_flash_limit)
              if board is not None or args.specialize_flash_limit is not None else 1 << 40)
    ops = [SimpleNamespace(index=k["index"], name=k["name"], kernel=k["kernel"], args=k["args"],
                           summary=lambda k=k: k) for k in kernels]
    dec = choose(ops, args.specialize, budget, latency)
    chosen = [d for d in dec.values() if d.specialised]
    where = f"{budget:,} B budget" if budget < 1 << 40 else "no flash budget (give --board or a limit)"
    console.print(f"[bold]specialised kernels[/] ({args.specialize}, {where}): {len(chosen)} of {len(dec)} "
                  f"layers, ~{sum(d.code_bytes for d in chosen):,} B more code, "
                  f"~{sum(d.est_saved for d in chosen):,.0f} instructions saved per inference (estimates)")
    if not args.quiet:
        for k in kernels:
            d = dec.get(k["index"])
            if d is not None:
                console.print(f"  {k['name']}: {'copy' if d.specialised else 'generic'} -- {d.reason}")
    return dec


def cmd_analyze(args: argparse.Namespace, console: Console) -> int:
    for flag, path in (("--json", args.json_out), ("--plot", args.plot)):
        if path:
            check_output_file(path, flag)
    imported = load_model_file(args.model) if is_model_file(args.model) else None
    arch = imported[1] if imported else load_model(args.model)
    if imported and args.patches > 1:
        raise UsageError(f"--patches: patch-based planning works on our architectures, not on an imported "
                         f"{Path(args.model).suffix} model")
    if args.patches < 1:
        raise UsageError(f"--patches must be >= 1, got {args.patches}")
    if args.patch_split and args.patches == 1:
        raise UsageError("--patch-split needs --patches N with N >= 2")
    if args.layout_extra_sram < 0:
        raise UsageError(f"--layout-extra-sram must be >= 0 bytes, got {args.layout_extra_sram}")
    if args.layout_extra_sram and args.layout_choice != "speed":
        raise UsageError("--layout-extra-sram needs --layout-choice speed")
    opts = PlanOptions(inplace_depthwise=not args.no_inplace, inplace_add=not args.no_inplace,
                       layout_choice=args.layout_choice, layout_extra_sram=args.layout_extra_sram,
                       fuse_add=args.fuse_add)
    an = analyze_graph(imported[0], arch, opts) if imported else analyze(arch, opts)
    pan = analyze(arch, replace(opts, patches=args.patches, patch_split=args.patch_split)) \
        if args.patches > 1 else None
    san = None
    if args.stream:
        from tinyengine.analyze_stream import analyze_streamed
        san = analyze_streamed(arch, replace(opts, stream=True), imported[0] if imported else None)
    pw = _apply_pw_weights(an, args.pw_weights, args.board)
    kernels, no_kernels = _c_kernels(an, args.winograd)
    board = load_board(args.board) if args.board else None
    lat = lat_model = None
    if kernels and (board or args.latency_model):
        from tinyengine.latency import LatencyError, LatencyModel, default_model
        lat_model = LatencyModel.load(args.latency_model) if args.latency_model else default_model(board)
        if board and args.latency_model:
            lat_model = lat_model.for_board(board)
        try:
            lat = lat_model.predict_layers(kernels)
        except LatencyError as e:  # e.g. an imported model's kernels the shipped model was not fitted on
            console.print(f"[yellow]no latency prediction:[/] {e}")
            lat = None
    if not args.quiet:
        t = Table(title=f"{arch.name or args.model}: {'x'.join(map(str, an.graph.tensors[an.graph.inputs[0]].shape))}"
                        f" -> {arch.num_classes} classes")
        for col, just in (("#", "right"), ("op", "left"), ("kind", "left"), ("in", "left"), ("out", "left"),
                          ("k/s", "left"), ("MACs", "right"), ("params", "right"), ("flash", "right"),
                          ("live act.", "right"), ("scratch", "right"), ("C kernel", "left")):
            t.add_column(col, justify=just)
        if lat:
            t.add_column(f"pred. {lat_model.out_unit}", justify="right")
        peak = an.plan.peak_step
        for r in an.rows:
            t.add_row(str(r.index), r.name, r.kind + (" (in-place)" if r.inplace else ""),
                      "x".join(map(str, r.in_shape)), "x".join(map(str, r.out_shape)), r.kernel,
                      f"{r.macs:,}", f"{r.params:,}", f"{r.flash:,}", f"{r.live_bytes:,}", f"{r.scratch:,}",
                      kernels[r.index]["kernel"].removeprefix("te_").removesuffix("_s8") if kernels else "",
                      *([f"{lat[r.index]:,.0f}"] if lat else []),
                      style="bold yellow" if r.index == peak else None)
        console.print(t)
    if no_kernels:
        console.print(f"[yellow]no C kernels for this graph:[/] {no_kernels}")
    _print_layout_choice(an.plan, console, args.quiet)
    _print_fused(an.plan, console)
    spec = _specialisation(kernels, args, board, an.flash_bytes, console, lat_model if lat else None) \
        if kernels else None
    p = an.plan
    console.print(f"[bold]MACs[/] {an.macs / 1e6:.2f}M   [bold]params[/] {an.params / 1e6:.3f}M "
                  f"(float model, BN counted)   [bold]flash[/] {format_size(an.flash_bytes)} "
                  f"(int8 weights + int32 bias + requant; code not included)")
    if pw:
        console.print(f"[bold]--pw-weights {pw['mode']}[/]: {len(pw['int16_layers'])} of {pw['eligible_layers']} "
                      f"eligible pointwise layers with int16 weights, +{pw['extra_flash_bytes']:,} B flash "
                      f"(included above), ~{pw['saved_instructions_estimate']:,} fewer instructions (Cortex-M4)")
    console.print(f"[bold]peak SRAM[/] {format_size(p.peak_sram)} ({p.peak_sram:,} B, arena incl. input "
                  f"and scratch; peak at {an.graph.ops[p.peak_step].name})   lower bound "
                  f"{p.lower_bound:,} B   no reuse {format_size(p.naive_bytes)}   packing {p.strategy}")
    if pan:
        pp, pg = pan.plan, pan.patched
        console.print(f"[bold]patched[/] {pg.n}x{pg.n} up to {pg.split_name}: [bold]peak SRAM[/] "
                      f"{format_size(pp.peak_sram)} ({pp.peak_sram:,} B, peak at "
                      f"{pan.graph.ops[pp.peak_step].name}), {p.peak_sram / pp.peak_sram:.2f}x lower than "
                      f"without ({p.peak_sram:,} B)   extra MACs +{pan.extra_macs / 1e6:.2f}M "
                      f"({100 * pan.extra_macs / an.macs:.1f}% of {an.macs / 1e6:.2f}M)")
    if san:
        from tinyml_cli.stream_report import print_stream
        print_stream(console, an, san)
    if lat:
        total = sum(lat)
        secs = lat_model.seconds(total, board.clock_hz) if board else None
        console.print(f"[bold]predicted latency[/] {total:,.0f} {lat_model.out_unit}"
                      + (f" = {secs * 1e3:.1f} ms at {board.clock_hz / 1e6:g} MHz" if secs else "")
                      + f" ({total / an.macs:.2f} per MAC; {lat_model.source})")
    pub = arch.meta.get("published", {})
    if pub:
        console.print("published: " + ", ".join(f"{k}={v}" for k, v in pub.items()))
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        d = an.to_dict()
        d["fuse_add"] = {"option": an.plan.options.fuse_add, "fused": an.plan.fused}
        if kernels:
            for row, k in zip(d["layers"], kernels):
                row["c_kernel"] = {key: k[key] for key in ("kernel", "layout", "reason", "scratch_type")}
                if "layout_choice" in k:
                    row["c_kernel"]["layout_choice"] = k["layout_choice"]
                if spec and k["index"] in spec:
                    row["c_kernel"]["specialisation"] = spec[k["index"]].summary()
        if pw:
            d["pw_weights"] = pw
        if lat:
            for row, v in zip(d["layers"], lat):
                row["predicted_latency"] = v
            d["totals"]["predicted_latency"] = {"value": sum(lat), "unit": lat_model.out_unit,
                                                "model": lat_model.source}
        if pan:
            pd = pan.to_dict()
            d["patched"] = {"totals": pd["totals"], "patches": pd["patches"], "arena": pd["arena"]}
        if san:
            sd = san.to_dict()
            d["streamed"] = {"totals": sd["totals"], "stream": sd["stream"], "arena": sd["arena"],
                             "layers": sd["layers"]}
        write_output(args.json_out, json.dumps(d, indent=1) + "\n", "--json")
        console.print(f"wrote {args.json_out}")
    if args.plot:
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        other_opts = PlanOptions(inplace_depthwise=args.no_inplace, inplace_add=args.no_inplace)
        other = analyze_graph(imported[0], arch, other_opts) if imported else analyze(arch, other_opts)
        profiles = {"in-place": an, "no in-place": other}
        if args.no_inplace:
            profiles = {"no in-place": an, "in-place": other}
        if pan:
            profiles[f"patched {pan.patched.n}x{pan.patched.n} to {pan.patched.split_name}"] = pan
        if san:
            profiles[f"streamed ({len(san.segments)} segments)"] = san
        plot_memory_profile(profiles, args.plot, board.sram_bytes if board else None)
        console.print(f"wrote {args.plot}")
    if board:
        p = pan.plan if pan else p  # deploying with patches: the patched arena is what must fit
        p = san.plan if san and san.plan.peak_sram < p.peak_sram else p  # gen --stream
        over_s, over_f = p.peak_sram - board.sram_bytes, an.flash_bytes - board.flash_bytes
        if over_s > 0 or over_f > 0:
            what = []
            if over_s > 0:
                what.append(f"peak SRAM exceeds {board.name}'s {format_size(board.sram_bytes)} by {format_size(over_s)}")
            if over_f > 0:
                what.append(f"flash exceeds {board.name}'s {format_size(board.flash_bytes)} by {format_size(over_f)}")
            console.print(f"[bold red]does not fit:[/] {'; '.join(what)}")
            return 1
        console.print(f"[green]fits {board.name}[/]: SRAM {100 * p.peak_sram / board.sram_bytes:.0f}%, "
                      f"flash {100 * an.flash_bytes / board.flash_bytes:.0f}% (model data only)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console()
    if args.cmd == "analyze":
        return run_command("tinyengine", args.cmd, lambda: cmd_analyze(args, console))
    if args.cmd == "gen":
        from tinyml_cli.gen import cmd_gen
        return run_command("tinyengine", args.cmd, lambda: cmd_gen(args, console))
    if args.cmd == "export":
        from tinyml_cli.export import cmd_export
        return run_command("tinyengine", args.cmd, lambda: cmd_export(args, console))
    if args.cmd in ("build", "emulate", "probe", "calibrate", "flash"):
        from tinyml_cli import deploy as deploy_cli
        return run_command("tinyengine", args.cmd, lambda: getattr(deploy_cli, f"cmd_{args.cmd}")(args, console))
    parser.error(f"unknown command {args.cmd}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
