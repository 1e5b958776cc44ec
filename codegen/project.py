"""A self-contained C project for one model: generated sources, the kernel library, a host Makefile,
a PlatformIO environment for the board, reference input/output bytes and a README."""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search_spaces.arch import ArchConfig
from tinyengine.boards import Board
from tinyengine.graph import Graph
from tinyengine.planner import MemoryPlan
from tinyengine.reference import quantize_input, run_graph

from .emit import environment, model_context, render_model
from .lower import Lowering, LoweringError, lower

FIRMWARE = Path(__file__).resolve().parents[1] / "firmware"
GENERATED = ("model.h", "model.c", "weights.h", "weights.c")


@dataclass
class Project:
    """What :func:`write_project` wrote, and the lowering it came from."""

    root: Path
    lowering: Lowering
    files: list[Path]
    reference_input: np.ndarray
    reference_output: np.ndarray
    kernel_sources: list[str]

    @property
    def host_binary(self) -> Path:
        return self.root / "build" / "host" / "model_host"


def kernel_files(firmware: Path = FIRMWARE) -> tuple[list[Path], list[Path]]:
    """(headers, C sources) of the kernel library; an error naming the folder when it is missing."""
    inc, src = firmware / "include", firmware / "src"
    headers = sorted(inc.glob("*.h")) + sorted(src.glob("*.h"))
    sources = sorted(src.glob("*.c"))
    if not (inc / "tinyengine.h").is_file():
        raise LoweringError(f"codegen: {inc / 'tinyengine.h'} is missing (the kernel API)")
    if not sources:
        raise LoweringError(f"codegen: no kernel sources (*.c) in {src}")
    clash = {p.name for p in headers + sources} & {*GENERATED, "host_main.c"}
    if clash:
        raise LoweringError(f"codegen: kernel files {sorted(clash)} clash with generated file names")
    return headers, sources


def reference_io(graph: Graph, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random image in [0, 1) quantised to the int8 input, and the reference output for it."""
    h, w, c = graph.tensors[graph.inputs[0]].shape
    img = np.random.default_rng(seed).random((h, w, c), dtype=np.float32)
    x = quantize_input(graph, img)
    return x, run_graph(graph, x)[graph.outputs[0]]


def write_project(out_dir: str | Path, arch: ArchConfig | None, graph: Graph, plan: MemoryPlan, board: Board,
                  *, winograd: bool = False, seed: int = 0, weights_from: str = "given graph",
                  firmware: Path = FIRMWARE) -> Project:
    """Lower ``graph`` with ``plan`` and write the project under ``out_dir`` (created; files replaced)."""
    low = lower(graph, plan, winograd=winograd)
    if low.arena_bytes != plan.arena_bytes:  # the invariant: the arena is the planner's peak SRAM
        raise AssertionError(f"codegen: arena {low.arena_bytes} B != plan {plan.arena_bytes} B")
    headers, sources = kernel_files(firmware)
    root = Path(out_dir)
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "host").mkdir(exist_ok=True)
    written: list[Path] = []

    def put(rel: str, data: str | bytes) -> None:
        p = root / rel
        if isinstance(data, bytes):
            p.write_bytes(data)
        else:
            p.write_text(data)
        written.append(p)

    texts = render_model(low)
    for name in GENERATED:
        put(f"src/{name}", texts[name])
    put("host/host_main.c", texts["host_main.c"])
    for f in headers + sources:
        shutil.copyfile(f, root / "src" / f.name)
        written.append(root / "src" / f.name)
    kernel_srcs = [f"src/{f.name}" for f in sources]

    x, y = reference_io(low.graph, seed)
    put("reference_input.bin", x.astype(np.int8).tobytes())
    put("reference_output.bin", np.asarray(y, np.int8).tobytes())

    env = environment()
    ctx = model_context(low)
    put("Makefile", env.get_template("Makefile.j2").render(kernel_srcs=kernel_srcs, **ctx))
    env_name = re.sub(r"[^0-9A-Za-z_]", "_", board.name)
    put("platformio.ini", env.get_template("platformio.ini.j2").render(board=board, env_name=env_name, **ctx))
    put("README.txt", env.get_template("README.txt.j2").render(board=board, weights_from=weights_from, **ctx))
    put("lowering.json", json.dumps({
        "model": low.name, "board": board.name, "arena_bytes": low.arena_bytes,
        "plan_arena_bytes": plan.arena_bytes, "weight_bytes": low.weight_bytes, "macs": low.macs,
        "input": {"tensor": low.input[0], "offset": low.input[1]},
        "output": {"tensor": low.output[0], "offset": low.output[1]},
        "winograd": winograd, "reference_seed": seed, "weights": weights_from,
        "layers": low.kernel_table()}, indent=1) + "\n")
    if arch is not None:
        put("arch.json", arch.to_json() + "\n")
    return Project(root, low, written, x, np.asarray(y, np.int8), kernel_srcs)
