"""``tinyengine gen``: the parser and the printing; the pipeline is ``codegen.generate``.

Wired into ``tinyml_cli/engine.py`` with ``add_gen_parser(subparsers)``; ``cmd_gen(args, console)`` returns
the exit status and raises a TinyMLError (one clear message) for bad input.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from boards import list_boards, load_board
from boards.units import format_size
from codegen.generate import build_host, folder_streams, generate
from tinyml_errors import UsageError


def add_gen_parser(subparsers) -> argparse.ArgumentParser:
    g = subparsers.add_parser(
        "gen", help="generate the C project (model.c/model.h/weights.c, kernels, Makefile, platformio.ini)",
        description="Quantise MODEL, plan its memory and write a self-contained C project for BOARD.")
    g.add_argument("model", help="zoo name (e.g. mcunet-vww1), path to an architecture JSON, a "
                   "`tinynas search` output folder (its arch.json and already quantised model_int8.npz), an "
                   "int8 .tflite (imported as is) or a float .onnx (quantised with --calib/--calib-data)")
    g.add_argument("--board", required=True, help=f"board preset ({', '.join(list_boards())})")
    g.add_argument("--out", required=True, help="project folder to write (created; or one holding an earlier "
                   "`tinyengine gen` output, whose files it replaces)")
    g.add_argument("--force", action="store_true", help="write into a folder that holds files gen did not write "
                   "(they are overwritten where gen writes the same name, never deleted)")
    g.add_argument("--weights", default=None, metavar="random|PATH",
                   help="'random' (seeded init, randomised BatchNorm statistics) or a PyTorch state_dict "
                        "saved with torch.save for this architecture (default: random)")
    g.add_argument("--seed", type=int, default=0,
                   help="seed for random weights, calibration images and the reference input (default 0)")
    g.add_argument("--calib", type=int, default=None, metavar="N",
                   help="number of random calibration images in [0, 1) (default 16)")
    g.add_argument("--calib-data", default=None, metavar="random|fashion-mnist|IMAGES.npy",
                   help="calibration images: random in [0, 1) (default), the first N Fashion-MNIST training "
                        "images (for a network trained on it), or an .npy array (N, C, H, W) in [0, 1]")
    g.add_argument("--winograd", action="store_true",
                   help="use Winograd F(2x2,3x3) for 3x3 stride-1 regular convs where the plan's scratch allows")
    g.add_argument("--stream", action=argparse.BooleanOptionalAction, default=None,
                   help="fused streaming execution: the segments that lower the arena run row by row, their "
                        "intermediate tensors in rings of rows (same bytes, same MACs; see analyze --stream). "
                        "Default: on for a `tinynas search --stream` folder, else off")
    g.add_argument("--layout-choice", choices=("off", "memory", "speed"), default="memory",
                   help="depthwise in or out of place by predicted cost (see `tinyengine analyze`): memory "
                        "(default) only where the arena does not grow, speed also where it grows (up to "
                        "--layout-extra-sram), off: in place wherever possible")
    g.add_argument("--layout-extra-sram", type=int, default=0, metavar="BYTES",
                   help="with --layout-choice speed: bytes the arena may grow by (0: no limit)")
    g.add_argument("--pw-weights", choices=("int8", "int16", "auto"), default="int8",
                   help="pointwise weights in flash: int8 (default); int16 pre-widened for every pointwise layer "
                        "with in_c a multiple of 4 other than 8/16 (4 fewer instructions per 16 MACs, twice the "
                        "weight bytes); auto: int16 for the layers that save most per extra byte while the "
                        "board's flash (less 128 KiB for code) allows. lowering.json records the choice")
    g.add_argument("--fuse-add", choices=("on", "off"), default="on",
                   help="pointwise projection + residual add as one kernel (te_conv_pointwise_add_s8) where the "
                        "arena does not grow: on (default) or off")
    g.add_argument("--specialize", choices=("off", "auto", "all"), default="off",
                   help="per-layer specialised copies of the pointwise and depthwise kernels with the layer's "
                        "constants compiled in (faster, more flash): auto where the estimated saving per code byte "
                        "is worth it, all for every such layer, off (default) the generic kernels only")
    g.add_argument("--specialize-flash-limit", type=int, default=None, metavar="BYTES",
                   help="code bytes the specialised copies may add (default: the board's flash left after the "
                        "weights and 64 KiB for the generic kernels and firmware); 0 falls back to the generic "
                        "kernels everywhere")
    g.add_argument("--build", action="store_true",
                   help="also build the host program (make host) and compare it with the reference output")
    return g


def cmd_gen(args: argparse.Namespace, console) -> int:
    proj = generate(args.model, args.board, args.out, weights=args.weights, seed=args.seed,
                    calib=args.calib, winograd=args.winograd, calib_data=args.calib_data, force=args.force,
                    datasets=DATASETS, stream=args.stream, layout_choice=args.layout_choice,
                    layout_extra_sram=args.layout_extra_sram, pw_weights=args.pw_weights,
                    fuse_add=args.fuse_add, specialize=args.specialize,
                    specialize_flash_limit=args.specialize_flash_limit)
    if args.stream is None and Path(args.model).is_dir() and folder_streams(Path(args.model)):
        console.print(f"streaming on: {args.model} was searched with --stream (its SRAM limit counts fused "
                      "streaming); --no-stream to plan layer by layer")
    low, board = proj.lowering, load_board(args.board)
    kinds: dict[str, int] = {}
    for o in low.ops:
        kinds[o.kernel] = kinds.get(o.kernel, 0) + 1
    console.print(f"[bold]{low.name}[/] for {board.name}: {len(low.ops)} layers, {low.macs / 1e6:.2f}M MACs")
    console.print("kernels: " + ", ".join(f"{k} x{n}" for k, n in kinds.items()))
    spec = [o.specialisation for o in low.ops if o.specialisation is not None and o.specialisation.specialised]
    if args.specialize != "off":
        console.print(f"specialised kernels ({args.specialize}): {len(spec)} layers, ~{sum(d.code_bytes for d in spec):,} B "
                      f"more code, ~{sum(d.est_saved for d in spec):,.0f} instructions saved per inference "
                      "(estimates; per layer in lowering.json)")
    console.print(f"arena {format_size(low.arena_bytes)} ({low.arena_bytes:,} B = planner peak SRAM), "
                  f"weights {format_size(low.weight_bytes)} ({low.weight_bytes:,} B)")
    pw = [o for o in low.ops if o.kernel == "te_conv_pointwise_w16_s8"]
    if args.pw_weights != "int8":
        console.print(f"--pw-weights {args.pw_weights}: {len(pw)} pointwise layers with int16 weights in flash "
                      f"(+{sum(o.arrays[0].nbytes // 2 for o in pw):,} B)")
    over = []
    if low.arena_bytes > board.sram_bytes:
        over.append(f"arena exceeds {board.name}'s SRAM ({format_size(board.sram_bytes)})")
    if low.weight_bytes > board.flash_bytes:
        over.append(f"weights exceed {board.name}'s flash ({format_size(board.flash_bytes)})")
    if over:
        console.print(f"[bold yellow]warning:[/] {'; '.join(over)}: the firmware will not link for this board")
    root = proj.root
    console.print(f"wrote {root}/ (src/model.c, src/model.h, src/weights.c, kernels, Makefile, "
                  f"platformio.ini, lowering.json, reference_input.bin, reference_output.bin, README.txt)")
    if args.build:
        r = build_host(root, "check")
        if r.returncode != 0:
            console.print(f"[bold red]host build/check failed[/] (make -C {root} check):\n{r.stdout}{r.stderr}")
            return 1
        console.print(f"built {proj.host_binary}: output on reference_input.bin matches the NumPy reference")
    else:
        console.print(f"build and check on the host: make -C {root} check")
    return 0


def fashion_mnist_images(h: int, w: int, c: int, n: int) -> np.ndarray:
    """The first ``n`` Fashion-MNIST training images as (n, c, h, w) floats (calibration of imported models)."""
    if h != w:
        raise UsageError(f"--calib-data fashion-mnist needs a square input, the model takes {h}x{w}")
    from tinynas.data import load_fashion_mnist
    return load_fashion_mnist("train", resolution=h, channels=c, limit=n)[0]


DATASETS = {"fashion-mnist": fashion_mnist_images}  # named --calib-data sets
