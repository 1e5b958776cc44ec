"""Run a .tflite in TensorFlow Lite Micro (the ``tflite-micro`` PyPI interpreter): outputs and arena size.

The Python interpreter has no arena query; its ``print_allocations()`` writes the recording allocator's
report ("Arena allocation total N bytes ... head ... tail ...") to the C-level stderr, so ``tflm_arena``
captures file descriptor 2 around the call and parses it. head = the non-persistent section (tensors
and kernel scratch, laid out by TFLM's greedy memory planner); tail = the persistent section
(interpreter/tensor structs, per-channel requantisation arrays and other op data).
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass

import numpy as np

from tinyml_errors import ExportError

DEFAULT_ARENA = 16 << 20  # bytes given to the interpreter; the report says how much it used


def _runtime():
    try:
        from tflite_micro import runtime
    except ImportError as e:
        raise ExportError("running a .tflite in TFLite Micro needs the PyPI package 'tflite-micro' "
                         f"(pip install tflite-micro): {e}") from None
    return runtime


@dataclass(frozen=True)
class TflmArena:
    total: int       # bytes the arena must have (head + tail + alignment)
    head: int        # non-persistent: activations and scratch
    tail: int        # persistent: runtime structs, op data (per-channel multipliers, ...)
    report: str      # the allocator's full report


def _capture_fd2(fn) -> str:
    """Run ``fn()`` with the process-level stderr redirected to a temp file; return what was written."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        try:
            os.dup2(tmp.fileno(), 2)
            fn()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return tmp.read().decode(errors="replace")


def _interpreter(tflite_bytes: bytes, arena_size: int):
    rt = _runtime()
    try:
        return rt.Interpreter.from_bytes(bytes(tflite_bytes), arena_size=arena_size)
    except Exception as e:  # noqa: BLE001 - the wrapper raises RuntimeError/ValueError with TFLM's text
        raise ExportError(f"TFLite Micro could not load the model: {e}") from None


def tflm_invoke(tflite_bytes: bytes, x_int8: np.ndarray, *, arena_size: int = DEFAULT_ARENA) -> np.ndarray:
    """Run one inference: ``x_int8`` (H, W, C) or (1, H, W, C) int8 -> the int8 output (batch dim dropped)."""
    interp = _interpreter(tflite_bytes, arena_size)
    x = np.asarray(x_int8)
    if x.dtype != np.int8:
        raise ExportError(f"tflm_invoke: input must be int8, got {x.dtype}")
    want = tuple(int(d) for d in interp.get_input_details(0)["shape"])
    if x.size != int(np.prod(want)):
        raise ExportError(f"tflm_invoke: input has shape {x.shape}, the model wants {want}")
    interp.set_input(x.reshape(want), 0)
    interp.invoke()
    y = np.asarray(interp.get_output(0))
    return y.reshape(y.shape[1:]) if y.ndim > 1 and y.shape[0] == 1 else y


_RE = {k: re.compile(rf"Arena allocation {k} (\d+) bytes") for k in ("total", "head", "tail")}


def tflm_arena(tflite_bytes: bytes, *, arena_size: int = DEFAULT_ARENA) -> TflmArena:
    """TFLM's arena use for the model (after one invoke on a zero input), from its allocation report."""
    interp = _interpreter(tflite_bytes, arena_size)
    d = interp.get_input_details(0)
    interp.set_input(np.zeros(tuple(d["shape"]), dtype=d["dtype"]), 0)
    interp.invoke()
    report = _capture_fd2(interp.print_allocations)
    vals = {}
    for k, rx in _RE.items():
        m = rx.search(report)
        if m is None:
            raise ExportError(f"tflite-micro's allocation report has no 'Arena allocation {k}' line "
                             f"(package version changed?): {report[:300]!r}")
        vals[k] = int(m.group(1))
    return TflmArena(vals["total"], vals["head"], vals["tail"], report)


def tflm_arena_bytes(tflite_bytes: bytes) -> int:
    """Total arena bytes TFLite Micro needs for the model (head + tail)."""
    return tflm_arena(tflite_bytes).total


def tflm_tensors(tflite_bytes: bytes, x_int8: np.ndarray, *, arena_size: int = DEFAULT_ARENA) -> dict[str, np.ndarray]:
    """Run one inference keeping every tensor (``kPreserveAllTensors``); returns the non-constant ones by
    name (batch dim dropped), for layer-by-layer comparison with ``reference.run_graph``."""
    rt = _runtime()
    from tinyengine.export import tflite_summary
    try:
        interp = rt.Interpreter.from_bytes(bytes(tflite_bytes), arena_size=arena_size,
                                           intrepreter_config=rt.InterpreterConfig.kPreserveAllTensors)
    except Exception as e:  # noqa: BLE001
        raise ExportError(f"TFLite Micro could not load the model: {e}") from None
    want = tuple(int(d) for d in interp.get_input_details(0)["shape"])
    interp.set_input(np.asarray(x_int8, dtype=np.int8).reshape(want), 0)
    interp.invoke()
    out = {}
    for i, (name, shape, ttype) in enumerate(tflite_summary(tflite_bytes)["tensors"]):
        if ttype != "INT8" or "/weight" in name:
            continue
        v = np.asarray(interp.GetTensor(i, 0)["tensor_data"])
        out[name] = v.reshape(v.shape[1:]) if v.ndim > 1 and v.shape[0] == 1 else v
    return out
