"""The pipeline behind ``tinyengine gen`` as a library (no printing): a model (zoo name, architecture JSON,
``.tflite``/``.onnx`` file or ``tinynas search`` folder) + weights -> int8 graph -> memory plan -> C project
in an output folder it owns (:mod:`tinyengine.outdir`). Named calibration data sets (e.g. Fashion-MNIST)
come from the caller through ``datasets``: a loader ``(h, w, c, n) -> (n, c, h, w) float images``."""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np

from boards import load_board
from codegen.project import Project, write_project
from codegen.search_folder import (
    check_graph_matches_arch,
    refuse_quantise_options,
    refuse_unstreamed,
    searched_stream,
)
from search_spaces.arch import ArchConfig
from search_spaces.zoo import load_model
from tinyengine.frontend.model_source import is_model_file, load_model_file
from tinyengine.frontend.quantize import quantize_model
from tinyengine.frontend.weights import load_weights, random_model
from tinyengine.kernels.pw_weights import MODES as PW_MODES
from tinyengine.outdir import claim as claim_outdir
from tinyengine.pipeline import plan_memory
from tinyengine.planner import PlanOptions
from tinyml_errors import ModelImportError, PlanError, UsageError


def calibration_images(arch: ArchConfig, n: int, seed: int, source: str = "random",
                       datasets: dict | None = None) -> np.ndarray:
    """``n`` float images (N, C, R, R) in [0, 1] for post-training quantisation: random, a named data set
    (a loader in ``datasets``) or an .npy array."""
    r, c = arch.resolution, arch.in_channels
    if source == "random":
        return np.random.default_rng(seed).random((n, c, r, r), dtype=np.float32)
    if datasets and source in datasets:
        return datasets[source](r, r, c, n)
    p = Path(source)
    if p.suffix != ".npy" or not p.is_file():
        names = ", ".join(f"'{k}'" for k in ("random", *(datasets or {})))
        raise UsageError(f"--calib-data {source}: give {names} or an existing .npy file")
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
             force: bool = False, datasets: dict | None = None, stream: bool | None = None,
             layout_choice: str = "memory", layout_extra_sram: int = 0, pw_weights: str = "int8",
             pw_reserve: int | None = None, fuse_add: str = "on", specialize: str = "off",
             specialize_flash_limit: int | None = None) -> Project:
    """The whole pipeline behind ``tinyengine gen`` (no printing): returns the written project.
    ``out`` is claimed first (:mod:`tinyengine.outdir`): files gen did not write stop it unless ``force``.
    ``stream`` None: on for a ``tinynas search --stream`` folder (``folder_streams``), else off.
    ``pw_weights`` / ``pw_reserve``: int8|int16|auto pointwise weights, flash auto keeps for code
    (tinyengine/kernels/pw_weights.py)."""
    board = load_board(board_name)
    if pw_weights not in PW_MODES:
        raise UsageError(f"--pw-weights: must be one of {', '.join(PW_MODES)}, got '{pw_weights}'")
    if not 0 <= seed < 2 ** 32:
        raise UsageError(f"--seed: must be in 0..{2 ** 32 - 1}, got {seed}")
    if calib is not None and not 1 <= calib <= MAX_CALIB:
        raise UsageError(f"--calib: must be in 1..{MAX_CALIB}, got {calib}")
    n_calib, calib_src = (16 if calib is None else calib), (calib_data or "random")
    opts = replace(_plan_options(board, layout_choice, layout_extra_sram, bool(stream)), fuse_add=fuse_add)
    from tinyengine.kernels.specialize import check_mode
    check_mode(specialize, specialize_flash_limit)  # before any work
    spec = {"specialize": specialize, "specialize_flash_limit": specialize_flash_limit, "pw_weights": pw_weights,
            "pw_reserve": pw_reserve}
    if Path(model_spec).is_dir():
        refuse_quantise_options(Path(model_spec), weights=weights, calib=calib, calib_data=calib_data)
        if stream is None:
            opts = replace(_plan_options(board, layout_choice, layout_extra_sram, folder_streams(Path(model_spec))),
                           fuse_add=fuse_add)
        make = lambda: _generate_searched(Path(model_spec), board, out, seed=seed, winograd=winograd,  # noqa: E731
                                          opts=opts, explicit_no_stream=stream is False, spec=spec)
    elif is_model_file(model_spec):  # .tflite: int8 as is; .onnx: float, quantised on the calibration images
        make = lambda: _generate_imported(model_spec, board, out, seed=seed, winograd=winograd,  # noqa: E731
                                          calib=n_calib, calib_data=calib_src, datasets=datasets, opts=opts,
                                          spec=spec)
    else:
        arch = load_model(model_spec)
        make = lambda: _generate_model(arch, model_spec, board, out, weights=weights or "random",  # noqa: E731
                                       seed=seed, calib=n_calib, winograd=winograd, calib_data=calib_src,
                                       datasets=datasets, opts=opts, spec=spec)
    od = claim_outdir(out, "tinyengine gen", force=force, ignore=("build", ".pio"))
    try:
        proj = make()
    except BaseException:
        od.abandon()
        raise
    od.commit(proj.files)
    return proj


def _plan_options(board, layout_choice: str = "memory", layout_extra_sram: int = 0,
                  stream: bool = False) -> PlanOptions:
    """``--stream`` (tinyengine/passes/stream.py), ``--layout-choice`` / ``--layout-extra-sram``
    (tinyengine/passes/layout.py). The choice comes from
    the shipped instruction fits of the Cortex-M4 DSP path; on a core without the DSP extension (portable
    C kernels) out-of-place depthwise is not the cheaper one, so every depthwise stays in place there."""
    if layout_extra_sram < 0:
        raise UsageError(f"--layout-extra-sram must be >= 0 bytes, got {layout_extra_sram}")
    if layout_extra_sram and layout_choice != "speed":
        raise UsageError("--layout-extra-sram needs --layout-choice speed")
    return PlanOptions(stream=stream, layout_choice=layout_choice if board.dsp else "off",
                       layout_extra_sram=layout_extra_sram)


def _generate_imported(model_spec: str, board, out, *, seed: int, winograd: bool, calib: int,
                       calib_data: str, datasets: dict | None, opts: PlanOptions, spec: dict) -> Project:
    graph, _ = load_model_file(model_spec, calib_data=calib_data, calib=calib, seed=seed, datasets=datasets or {})
    how = ("int8 .tflite, imported with its quantisation" if model_spec.lower().endswith(".tflite")
           else f"float .onnx; calibrated on {calib} {calib_data} images")
    return write_project(out, None, plan_memory(graph, opts), board, winograd=winograd, seed=seed,
                         weights_from=f"{model_spec} ({how})", **spec)


def _generate_model(arch: ArchConfig, model_spec: str, board, out, *, weights: str, seed: int, calib: int,
                    winograd: bool, calib_data: str, datasets: dict | None, opts: PlanOptions,
                    spec: dict) -> Project:
    if weights == "random":
        model, source = random_model(arch, seed), f"random (seed {seed})"
    else:
        model, source = load_weights(arch, weights), str(weights)
    graph = quantize_model(arch, model, calibration_images(arch, calib, seed, calib_data, datasets))
    if not arch.name:
        graph.name = Path(model_spec).stem
    plan = plan_memory(graph, opts)
    return write_project(out, arch, plan, board, winograd=winograd, seed=seed,
                         weights_from=f"{source}; calibrated on {calib} {calib_data} images", **spec)


def folder_streams(folder: Path) -> bool:
    """Whether ``folder`` (a ``tinynas search`` output) was searched with --stream (gen then streams)."""
    arch_file = folder / "arch.json"
    return arch_file.is_file() and searched_stream(ArchConfig.load(arch_file))[0]


def _generate_searched(folder: Path, board, out, *, seed: int, winograd: bool,
                       opts: PlanOptions | None = None, explicit_no_stream: bool = False,
                       spec: dict | None = None) -> Project:
    """A `tinynas search` output: the int8 graph it evaluated (so the firmware computes exactly the
    int8 accuracy the search reported), with its architecture."""
    from tinyengine.ir.graph_io import load_graph
    arch_file, graph_file = folder / "arch.json", folder / "model_int8.npz"
    if not graph_file.is_file() and (folder / "model_int8.pkl").is_file():
        raise ModelImportError(
            f"{folder / 'model_int8.pkl'}: a pickle from an older `tinynas search`, which is no longer loaded "
            "(loading a pickle can run code); re-run the same `tinynas search ... --out "
            f"{folder}` command: it resumes and writes model_int8.npz")
    for f in (arch_file, graph_file):
        if not f.is_file():
            raise UsageError(f"{folder}: not a `tinynas search` output folder ({f.name} is missing)")
    arch = ArchConfig.load(arch_file)
    graph = load_graph(graph_file)  # tinyml-graph/1: JSON + arrays, loaded without pickle
    check_graph_matches_arch(graph, arch, arch_file, graph_file)
    plan = plan_memory(graph, opts)
    relies, limit = searched_stream(arch)
    if relies and explicit_no_stream:
        refuse_unstreamed(folder, plan.peak_sram, limit)
    elif relies and opts is not None and opts.stream and limit is not None and plan.peak_sram > limit:
        # the search's per-block estimate is meant to be conservative; never hand out a plan over its limit
        raise PlanError(f"{folder}: streamed, the whole graph plans at {plan.peak_sram:,} B, over the "
                        f"{limit:,} B SRAM limit the search counted (its per-block streaming estimate was "
                        "lower); search again with a lower --sram")
    return write_project(out, arch, plan, board, winograd=winograd, seed=seed,
                         weights_from=f"{folder} (trained by tinynas search; its int8 model as evaluated)",
                         **(spec or {}))


def build_host(root: Path, target: str = "host", timeout: float = 600) -> subprocess.CompletedProcess:
    """``make <target>`` in a generated project; a UsageError naming the Debian package if a tool is missing."""
    for tool, pkg in (("make", "make"), ("gcc", "gcc")):
        if shutil.which(tool) is None:
            raise UsageError(f"'{tool}' not found: install the Debian package '{pkg}'")
    return subprocess.run(["make", "-C", str(root), target], capture_output=True, text=True, timeout=timeout)
