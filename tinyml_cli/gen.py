"""``tinyengine gen``: model (zoo name or arch JSON) + weights -> int8 graph -> memory plan -> C project.

Wired into ``tinyengine/cli.py`` with ``add_gen_parser(subparsers)``; ``cmd_gen(args, console)`` returns
the exit status and raises ValueError (with one clear message) for bad input.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import numpy as np
import torch

from boards import list_boards, load_board
from boards.units import format_size
from codegen.project import Project, write_project
from search_spaces.arch import ArchConfig
from search_spaces.torch_model import build_torch_model
from search_spaces.zoo import load_model
from codegen.search_folder import check_graph_matches_arch, refuse_quantise_options
from tinyengine.frontend.quantize import quantize_model
from tinyengine.outdir import claim as claim_outdir
from tinyengine.pipeline import plan_memory
from tinyml_errors import UsageError


def add_gen_parser(subparsers) -> argparse.ArgumentParser:
    g = subparsers.add_parser(
        "gen", help="generate the C project (model.c/model.h/weights.c, kernels, Makefile, platformio.ini)",
        description="Quantise MODEL, plan its memory and write a self-contained C project for BOARD.")
    g.add_argument("model", help="zoo name (e.g. mcunet-vww1), path to an architecture JSON, or a "
                   "`tinynas search` output folder (its arch.json and already quantised model_int8.pkl)")
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
    g.add_argument("--build", action="store_true",
                   help="also build the host program (make host) and compare it with the reference output")
    return g


def random_model(arch: ArchConfig, seed: int) -> torch.nn.Module:
    """A freshly initialised network with randomised BatchNorm statistics and affine terms (seeded),
    so that folded weights and activation ranges look like a trained model's, not an identity BN's."""
    torch.manual_seed(seed)
    model = build_torch_model(arch)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
    return model.eval()


def load_weights(arch: ArchConfig, path: str | Path) -> torch.nn.Module:
    """The network of ``arch`` with a state_dict from ``path`` loaded strictly; a ValueError that lists
    missing keys, unexpected keys and shape mismatches otherwise."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--weights {path}: no such file (give 'random' or a state_dict saved with torch.save)")
    try:
        sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise UsageError(f"--weights {path}: not a PyTorch state_dict file ({type(e).__name__}: {e})") from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UsageError(f"--weights {path}: expected a state_dict (a dict of tensors), got {type(sd).__name__}")
    model = build_torch_model(arch)
    want = model.state_dict()
    missing = [k for k in want if k not in sd]
    unexpected = [k for k in sd if k not in want]
    shapes = [f"{k} {tuple(sd[k].shape)} (model has {tuple(want[k].shape)})"
              for k in want if k in sd and tuple(sd[k].shape) != tuple(want[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        for what, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
            if items:
                more = f" and {len(items) - 5} more" if len(items) > 5 else ""
                parts.append(f"{what}: {', '.join(items[:5])}{more}")
        raise UsageError(f"--weights {path} does not match architecture '{arch.name or 'model'}': "
                         + "; ".join(parts))
    model.load_state_dict(sd, strict=True)
    return model.eval()


def calibration_images(arch: ArchConfig, n: int, seed: int, source: str = "random") -> np.ndarray:
    """``n`` float images (N, C, R, R) in [0, 1] for post-training quantisation."""
    r, c = arch.resolution, arch.in_channels
    if source == "random":
        return np.random.default_rng(seed).random((n, c, r, r), dtype=np.float32)
    if source == "fashion-mnist":
        from tinynas.data import load_fashion_mnist
        return load_fashion_mnist("train", resolution=r, channels=c, limit=n)[0]
    p = Path(source)
    if p.suffix != ".npy" or not p.is_file():
        raise UsageError(f"--calib-data {source}: give 'random', 'fashion-mnist' or an existing .npy file")
    try:
        x = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UsageError(f"--calib-data {source}: not a readable .npy array ({e})") from None
    if x.ndim != 4 or x.shape[1:] != (c, r, r):
        raise UsageError(f"--calib-data {source}: shape {x.shape}, the model takes (N, {c}, {r}, {r})")
    if len(x) < n or not np.issubdtype(x.dtype, np.number) or not np.isfinite(x[:n]).all():
        raise UsageError(f"--calib-data {source}: need {n} finite images (--calib), the file has {len(x)} "
                         f"of dtype {x.dtype}" + ("" if len(x) < n else " with NaN/inf or non-numbers"))
    return x[:n].astype(np.float32)


MAX_CALIB = 1024  # calibration images: more would allocate gigabytes of float images at large resolutions


def generate(model_spec: str, board_name: str, out: str | Path, *, weights: str | None = None, seed: int = 0,
             calib: int | None = None, winograd: bool = False, calib_data: str | None = None,
             force: bool = False) -> Project:
    """The whole pipeline behind ``tinyengine gen`` (no printing): returns the written project.
    ``out`` is claimed first (:mod:`tinyengine.outdir`): files gen did not write stop it unless ``force``."""
    board = load_board(board_name)
    if not 0 <= seed < 2 ** 32:
        raise UsageError(f"--seed: must be in 0..{2 ** 32 - 1}, got {seed}")
    if calib is not None and not 1 <= calib <= MAX_CALIB:
        raise UsageError(f"--calib: must be in 1..{MAX_CALIB}, got {calib}")
    if Path(model_spec).is_dir():
        refuse_quantise_options(Path(model_spec), weights=weights, calib=calib, calib_data=calib_data)
        make = lambda: _generate_searched(Path(model_spec), board, out, seed=seed, winograd=winograd)  # noqa: E731
    else:
        arch = load_model(model_spec)
        make = lambda: _generate_model(arch, model_spec, board, out, weights=weights or "random",  # noqa: E731
                                       seed=seed, calib=16 if calib is None else calib, winograd=winograd,
                                       calib_data=calib_data or "random")
    od = claim_outdir(out, "tinyengine gen", force=force, ignore=("build", ".pio"))
    try:
        proj = make()
    except BaseException:
        od.abandon()
        raise
    od.commit(proj.files)
    return proj


def _generate_model(arch: ArchConfig, model_spec: str, board, out, *, weights: str, seed: int, calib: int,
                    winograd: bool, calib_data: str) -> Project:
    if weights == "random":
        model, source = random_model(arch, seed), f"random (seed {seed})"
    else:
        model, source = load_weights(arch, weights), str(weights)
    graph = quantize_model(arch, model, calibration_images(arch, calib, seed, calib_data))
    if not arch.name:
        graph.name = Path(model_spec).stem
    plan = plan_memory(graph)
    return write_project(out, arch, plan, board, winograd=winograd, seed=seed,
                         weights_from=f"{source}; calibrated on {calib} {calib_data} images")


def _generate_searched(folder: Path, board, out, *, seed: int, winograd: bool) -> Project:
    """A `tinynas search` output: the int8 graph it evaluated (so the firmware computes exactly the
    int8 accuracy the search reported), with its architecture."""
    import pickle

    from tinyengine.ir.graph import Graph
    arch_file, graph_file = folder / "arch.json", folder / "model_int8.pkl"
    for f in (arch_file, graph_file):
        if not f.is_file():
            raise UsageError(f"{folder}: not a `tinynas search` output folder ({f.name} is missing)")
    arch = ArchConfig.load(arch_file)
    with open(graph_file, "rb") as fh:
        graph = pickle.load(fh)  # written by tinynas.search from this code base
    if not isinstance(graph, Graph):
        raise UsageError(f"{graph_file}: not a pickled int8 tinyengine Graph ({type(graph).__name__})")
    check_graph_matches_arch(graph, arch, arch_file, graph_file)
    plan = plan_memory(graph)
    return write_project(out, arch, plan, board, winograd=winograd, seed=seed,
                         weights_from=f"{folder} (trained by tinynas search; its int8 model as evaluated)")


def build_host(root: Path, target: str = "host", timeout: float = 600) -> subprocess.CompletedProcess:
    """``make <target>`` in a generated project; a ValueError naming the Debian package if a tool is missing."""
    for tool, pkg in (("make", "make"), ("gcc", "gcc")):
        if shutil.which(tool) is None:
            raise UsageError(f"'{tool}' not found: install the Debian package '{pkg}'")
    return subprocess.run(["make", "-C", str(root), target], capture_output=True, text=True, timeout=timeout)


def cmd_gen(args: argparse.Namespace, console) -> int:
    proj = generate(args.model, args.board, args.out, weights=args.weights, seed=args.seed,
                    calib=args.calib, winograd=args.winograd, calib_data=args.calib_data, force=args.force)
    low, board = proj.lowering, load_board(args.board)
    kinds: dict[str, int] = {}
    for o in low.ops:
        kinds[o.kernel] = kinds.get(o.kernel, 0) + 1
    console.print(f"[bold]{low.name}[/] for {board.name}: {len(low.ops)} layers, {low.macs / 1e6:.2f}M MACs")
    console.print("kernels: " + ", ".join(f"{k} x{n}" for k, n in kinds.items()))
    console.print(f"arena {format_size(low.arena_bytes)} ({low.arena_bytes:,} B = planner peak SRAM), "
                  f"weights {format_size(low.weight_bytes)} ({low.weight_bytes:,} B)")
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
