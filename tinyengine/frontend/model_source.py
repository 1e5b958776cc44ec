"""Models that come as files of other frameworks (``.tflite``, ``.onnx``): which paths they are, and the
few facts the commands print about them (what an ArchConfig tells for our own models).

``.tflite`` files are already int8 and are imported as they are (``tflite_import``); ``.onnx`` files are
float models that go through BN folding and our post-training quantisation (``onnx_import``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tinyengine.ir.graph import Graph

IMPORT_SUFFIXES = (".tflite", ".onnx")


def is_model_file(spec: str | Path) -> bool:
    """True for a path (existing or not) ending in one of ``IMPORT_SUFFIXES``."""
    return Path(str(spec)).suffix.lower() in IMPORT_SUFFIXES


@dataclass
class ImportedModel:
    """What the commands show about an imported model (the ArchConfig fields they read)."""

    name: str
    resolution: int      # input height
    in_channels: int
    num_classes: int     # size of the output
    source: str = ""
    meta: dict = field(default_factory=dict)

    @classmethod
    def of(cls, graph: Graph, source: str) -> "ImportedModel":
        shape = graph.tensors[graph.inputs[0]].shape
        out = 1
        for d in graph.tensors[graph.outputs[0]].shape:
            out *= d
        return cls(graph.name, int(shape[0]), int(shape[-1]), out, source)


def load_model_file(spec: str | Path, *, calib_data: str = "random", calib: int = 16, seed: int = 0,
                    datasets: dict | None = None) -> tuple[Graph, ImportedModel]:
    """The int8 graph of a ``.tflite`` (as is) or ``.onnx`` (quantised on ``calib`` images; named data
    sets come from ``datasets``, see ``float_graph.calibration_images_for``) file."""
    p = Path(str(spec))
    if p.suffix.lower() == ".tflite":
        from tinyengine.frontend.tflite import import_tflite
        g = import_tflite(p)
    else:
        from tinyengine.frontend.onnx import quantize_onnx
        g = quantize_onnx(p, calib_data=calib_data, calib=calib, seed=seed, datasets=datasets)
    return g, ImportedModel.of(g, str(p))
