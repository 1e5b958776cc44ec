"""Latency constraint: the fallback analytic predictor (``--latency``) until a calibrated model exists.

``predict_latency_s`` is the one entry point the search uses. In order it asks: a predictor
registered with ``set_latency_model``; tinyengine's calibrated per-kernel model
(``tinyengine.latency.default_model(board)``) when it is installed and predicts cycles for the board;
else the analytic fallback below (and ``latency_source`` says which one was used).

Fallback estimate: cycles = MACs x cycles-per-MAC of the board's core + a fixed per-layer overhead,
seconds = cycles / clock (the core figures are in ``boards.cores``). These are estimates, not
measurements; the search says so when it uses them.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from boards.cores import CYCLES_PER_LAYER, CYCLES_PER_MAC, NO_DSP_CYCLES_PER_MAC
from search_spaces.arch import ArchConfig
from tinyml_errors import LatencyError

_MODEL: Callable[[ArchConfig, object], float] | None = None
SOURCE_ANALYTIC = "analytic estimate (MACs x cycles/MAC of the core / clock; not calibrated)"


def set_latency_model(fn: Callable[[ArchConfig, object], float] | None) -> None:
    """Install a calibrated predictor ``fn(arch, board) -> seconds`` (None restores the fallback)."""
    global _MODEL
    _MODEL = fn


def _calibrated_model(board):
    """tinyengine's calibrated model adapted to ``board`` when it exists and gives cycles, else None."""
    key = getattr(board, "name", None)
    if key in _CALIBRATED:
        return _CALIBRATED[key]
    model = None
    try:
        from tinyengine.latency import default_model
        m = default_model(board)
        if m.out_unit == "cycles":
            model = m
    except LatencyError:  # no model for this core: the analytic fallback applies
        model = None
    _CALIBRATED[key] = model
    return model


_CALIBRATED: dict = {}


def latency_source(board_or_constraints=None) -> str:
    if _MODEL is not None:
        return "registered latency model"
    b = getattr(board_or_constraints, "board", board_or_constraints)
    if b is not None and hasattr(b, "clock_hz") and _calibrated_model(b) is not None:
        return f"calibrated latency model ({_calibrated_model(b).source})"
    return SOURCE_ANALYTIC


def per_arch(board_or_constraints) -> bool:
    """True when predictions need the per-network path (a registered or calibrated model)."""
    return _MODEL is not None or _calibrated_model(_board(board_or_constraints)) is not None


def _board(board_or_constraints):
    b = getattr(board_or_constraints, "board", board_or_constraints)
    if b is None or not hasattr(b, "clock_hz"):
        raise LatencyError("--latency: a latency limit needs a board (its core and clock): add --board")
    return b


def cycles_per_mac(board) -> float:
    if not getattr(board, "dsp", True):
        return NO_DSP_CYCLES_PER_MAC
    return CYCLES_PER_MAC.get(board.core, 1.6)


def latency_from_macs(macs, n_layers, board_or_constraints) -> np.ndarray:
    """Vectorised fallback estimate for many sub-networks (seconds)."""
    b = _board(board_or_constraints)
    cycles = np.asarray(macs, dtype=np.float64) * cycles_per_mac(b) + np.asarray(n_layers) * CYCLES_PER_LAYER
    return cycles / b.clock_hz


def predict_latency_s(arch: ArchConfig, board_or_constraints) -> float:
    """Predicted inference latency of ``arch`` on the board (a Board or Constraints with .board)."""
    b = _board(board_or_constraints)
    if _MODEL is not None:
        return float(_MODEL(arch, b))
    cal = _calibrated_model(b)
    if cal is not None:
        try:
            return float(cal.seconds(cal.predict_fast(arch), b.clock_hz))
        except LatencyError:
            pass  # a kernel the model was not calibrated for: fall back for this network
    from tinyengine.cost import fast_costs
    n_layers = 3 + sum(3 if blk.expand else 2 for blk in arch.blocks())
    return float(latency_from_macs(fast_costs(arch).macs, n_layers, b))
