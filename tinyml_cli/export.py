"""``tinyengine export MODEL --tflite [PATH] --onnx [PATH]``: take a (searched) model to other runtimes.

``--tflite`` writes the int8 graph the engine runs (same quantisation, bit-exact in TFLite Micro with the
default ``--padding exact``); ``--onnx`` writes the float PyTorch model. ``--check`` runs the .tflite in
the ``tflite-micro`` interpreter on the reference input and compares it with our NumPy reference, and
prints TFLM's arena beside our planner's peak. Wired into ``tinyengine/cli.py`` with
``add_export_parser(subparsers)``; ``cmd_export(args, console)`` returns the exit status and raises
ValueError (one clear message) for bad input.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from boards.units import format_size
from search_spaces.zoo import load_model
from tinyengine.frontend.model_source import is_model_file, load_model_file
from tinyengine.outdir import check_output_file
from tinyml_errors import UsageError


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    e = subparsers.add_parser(
        "export", help="export a model to TFLite (int8 .tflite) and/or ONNX (float)",
        description="Quantise MODEL as `tinyengine gen` does and write it as an int8 .tflite (runs in "
                    "TFLite Micro, bit-exact with our reference) and/or export the float model as ONNX.")
    e.add_argument("model", help="zoo name (e.g. mcunet-vww1), path to an architecture JSON, an int8 .tflite or a "
                   "float .onnx (their int8 graph, re-exported)")
    e.add_argument("--tflite", nargs="?", const="", metavar="PATH",
                   help="write the int8 TFLite flatbuffer (default PATH: MODEL.tflite)")
    e.add_argument("--onnx", nargs="?", const="", metavar="PATH",
                   help="write the float model as ONNX (default PATH: MODEL.onnx; needs the 'onnx' package)")
    e.add_argument("--weights", default="random", metavar="random|PATH",
                   help="'random' (seeded) or a PyTorch state_dict for this architecture (default: random)")
    e.add_argument("--seed", type=int, default=0, help="seed for random weights and calibration (default 0)")
    e.add_argument("--calib", type=int, default=16, metavar="N",
                   help="number of random calibration images in [0, 1) (default 16)")
    e.add_argument("--padding", choices=("exact", "same"), default="exact",
                   help="exact: PAD ops where TFLite SAME differs from our padding (bit-exact, default); "
                        "same: TFLite SAME everywhere (TensorFlow's layout; borders differ after stride 2)")
    e.add_argument("--check", action="store_true",
                   help="run the .tflite in tflite-micro on a seeded input, compare with our reference, "
                        "and print TFLM's arena beside our peak SRAM")
    return e


def _default_path(path: str, stem: str, suffix: str) -> Path:
    p = Path(path) if path else Path(f"{stem}{suffix}")
    if p.is_dir():
        p = p / f"{stem}{suffix}"
    if not p.parent.is_dir():
        raise UsageError(f"--{suffix[1:]} {path}: folder {p.parent} does not exist")
    return check_output_file(p, f"--{suffix[1:]}")


def cmd_export(args: argparse.Namespace, console) -> int:
    from codegen.generate import calibration_images
    from tinyengine.frontend.weights import load_weights, random_model

    if args.tflite is None and args.onnx is None:
        raise UsageError("nothing to export: give --tflite [PATH] and/or --onnx [PATH]")
    if not 1 <= args.calib <= 1024:
        raise UsageError(f"--calib: must be in 1..1024, got {args.calib}")
    imported = None
    if is_model_file(args.model):  # an int8 .tflite or float .onnx: its int8 graph, re-exported
        if args.onnx is not None:
            raise UsageError(f"--onnx: {args.model} is an imported model file; --onnx exports the float "
                             "PyTorch model of one of our architectures")
        imported = load_model_file(args.model, calib=args.calib, seed=args.seed)[0]
        stem = Path(args.model).stem + "_int8"
    else:
        arch = load_model(args.model)
        stem = arch.name or Path(args.model).stem
    tfl_path = _default_path(args.tflite, stem, ".tflite") if args.tflite is not None else None
    onnx_path = _default_path(args.onnx, stem, ".onnx") if args.onnx is not None else None
    model = None if imported else (random_model(arch, args.seed) if args.weights == "random"
                                   else load_weights(arch, args.weights))

    if onnx_path is not None:
        from tinyengine.export import export_onnx
        export_onnx(arch, model, onnx_path)
        console.print(f"wrote {onnx_path} (float, input 'input' 1x{arch.in_channels}x{arch.resolution}x"
                      f"{arch.resolution} NCHW, output 'logits'; {onnx_path.stat().st_size:,} B)")
    if tfl_path is None:
        return 0

    from tinyengine.export import export_tflite, tflite_summary
    from tinyengine.frontend.quantize import quantize_model
    from tinyengine.pipeline import plan_memory
    graph = imported or quantize_model(arch, model, calibration_images(arch, args.calib, args.seed))
    graph.name = stem
    data = export_tflite(graph, padding=args.padding)
    tfl_path.write_bytes(data)
    s = tflite_summary(data)
    kinds: dict[str, int] = {}
    for k in s["ops"]:
        kinds[k] = kinds.get(k, 0) + 1
    console.print(f"wrote {tfl_path} (int8 TFLite, {len(data):,} B = {format_size(len(data))}; "
                  f"{len(s['ops'])} ops: {', '.join(f'{k} x{n}' for k, n in kinds.items())}; "
                  f"padding={args.padding})")
    if not args.check:
        return 0

    from tinyengine.export.tflm import tflm_arena, tflm_tensors
    from tinyengine.numerics.reference import run_graph
    x = np.random.default_rng(args.seed).integers(-128, 128, graph.tensors[graph.inputs[0]].shape,
                                                  dtype=np.int16).astype(np.int8)
    ref = run_graph(graph, x)
    got = tflm_tensors(data, x)
    ours = plan_memory(graph).arena_bytes
    arena = tflm_arena(data)
    console.print(f"TFLite Micro arena {arena.total:,} B (tensors {arena.head:,} B + persistent "
                  f"{arena.tail:,} B); our peak SRAM {ours:,} B; ours/TFLM = {ours / arena.total:.2f}")
    bad = [n for n in ref if n not in got or not np.array_equal(got[n].reshape(-1), ref[n].reshape(-1))]
    if bad:
        note = "" if args.padding == "exact" else " (expected with --padding same)"
        console.print(f"[bold red]TFLite Micro differs from our reference{note}[/] in {len(bad)} of "
                      f"{len(ref)} tensors, first '{bad[0]}'")
        return 1 if args.padding == "exact" else 0
    console.print(f"TFLite Micro matches our reference bit for bit on all {len(ref)} tensors "
                  f"(output: {ref[graph.outputs[0]].size} int8 values)")
    return 0
