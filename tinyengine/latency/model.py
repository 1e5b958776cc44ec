"""Latency model (nn-Meter style, per kernel): predicted instructions/cycles of every layer.

Each kernel's cost is a linear combination of analytic terms read off its loops: the MACs (the SMLAD
inner loop), one term per output element (requantisation, stores), per input element (int8 -> int16
widening, the in-place depthwise kernel's padded channel copy), per row/column of the SIMD tiles, and
the leftover terms of the channel and pixel tiling (the 2x2 output tile of the pointwise kernel and
the 4-channel steps of SXTB16: odd channels and pixels take the scalar path; the pointwise kernel's
assembly loop and folded requantisation, chosen by shape). The coefficients are
fitted by least squares on relative error to per-layer measurements (``tinyengine probe --layers``
records), one set per kernel, so shapes never seen in calibration are still predicted from how each
term scales.

``tinyengine calibrate RECORDS... --board B`` fits and saves a model; ``default_model(board)`` loads
the one shipped with the package (fitted on QEMU Cortex-M4 instruction counts: QEMU counts
instructions, and the M4/M7 builds run the same instruction stream). For a real board without its own
calibration the instruction model is scaled by a documented CPI estimate to give cycles.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np

from boards.cores import CPI_ESTIMATE
from tinyengine.kernels.choice import kernel_choices
from tinyengine.kernels.registry import latency_terms
from tinyengine.planner import PlanOptions
from tinyml_errors import LatencyError, LoweringError
from tinyml_errors.files import read_json

FORMAT = "tinyml-latency/1"
DATA = Path(str(files("tinyengine.latency") / "data"))


# ----------------------------------------------------------------------------- features
def layer_features(layer: dict) -> tuple[str, list[str], np.ndarray]:
    """(fit key, term names, term values) of one lowered layer (``KernelChoice.summary()``): the terms
    each kernel's registry entry says its time scales with (depthwise: one fit per kernel size and stride)."""
    try:
        key, terms = latency_terms(layer["kernel"], layer.get("args", {}))
    except LoweringError:
        raise LatencyError(f"latency model: no terms for kernel '{layer['kernel']}' "
                           f"(layer {layer.get('name')})") from None
    return key, list(terms), np.array(list(terms.values()), dtype=np.float64)


# ----------------------------------------------------------------------------- model
@dataclass
class KernelFit:
    terms: list[str]
    coef: list[float]
    samples: int = 0
    rmspe: float = 0.0   # on its own calibration data

    def predict(self, x: np.ndarray) -> float:
        return float(np.dot(self.coef, x))


@dataclass
class LatencyModel:
    """Per-kernel linear models; ``unit`` is what the records measured (instructions or cycles)."""

    target: str                  # board (or core) it was calibrated on
    core: str
    unit: str
    kernels: dict[str, KernelFit] = field(default_factory=dict)
    scale: float = 1.0           # applied to every prediction (CPI for an instruction model on a real board)
    scaled_unit: str | None = None
    source: str = ""

    @property
    def out_unit(self) -> str:
        return self.scaled_unit or self.unit

    def predict_layer(self, layer: dict) -> float:
        k, terms, x = layer_features(layer)
        fit = self.kernels.get(k)
        if fit is None:
            raise LatencyError(f"latency model ({self.source or self.target}) was not calibrated for kernel "
                               f"'{k}' (layer {layer.get('name')}): add probe records of a model that uses it")
        if fit.terms != terms:
            raise LatencyError(f"latency model: kernel '{k}' terms {fit.terms} differ from {terms} "
                               "(model from another version: recalibrate)")
        return max(0.0, fit.predict(x)) * self.scale

    def predict_layers(self, layers: list[dict]) -> list[float]:
        return [self.predict_layer(la) for la in layers]

    def predict_arch(self, arch) -> float:
        """Whole-network prediction for an ArchConfig (kernels as codegen would choose them)."""
        return sum(self.predict_layers(arch_layers(arch)))

    def predict_fast(self, arch) -> float:
        """``predict_arch`` through per-part caches (stem, each block at its input size, head), the
        way ``fast_costs`` caches memory: what the search calls for thousands of sub-networks."""
        from tinyengine.cost import stem_head_key
        sizes = arch.spatial_sizes()
        key = self._cache_key()
        total = sum(_part_latency(key, ("block", b, sizes[b.index])) for b in arch.blocks())
        return total + _part_latency(key, ("stem_head", stem_head_key(arch)))

    def _cache_key(self) -> int:
        k = id(self)
        _MODELS[k] = self  # kept alive while cached predictions refer to it
        return k

    def seconds(self, value: float, clock_hz: int) -> float | None:
        """Predicted seconds at ``clock_hz`` (cycles only; instructions are not time)."""
        return value / clock_hz if self.out_unit == "cycles" and clock_hz else None

    def for_board(self, board) -> "LatencyModel":
        """This model as a predictor for ``board``: instruction models give estimated cycles on a real
        board (CPI_ESTIMATE of its core); on an emulated board they stay instructions."""
        if self.unit != "instructions" or board.emulated:
            return self
        cpi = CPI_ESTIMATE.get(board.core)
        if cpi is None:
            return self
        return LatencyModel(board.name, board.core, self.unit, self.kernels, cpi, "cycles",
                            f"{self.source} x CPI {cpi} ({board.core} estimate)")

    def to_dict(self) -> dict:
        return {"format": FORMAT, "target": self.target, "core": self.core, "unit": self.unit,
                "kernels": {k: {"terms": f.terms, "coef": f.coef, "samples": f.samples, "rmspe": f.rmspe}
                            for k, f in sorted(self.kernels.items())}}

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "LatencyModel":
        p = Path(path)
        d = _load_json(p, f"latency model {p}", "no such file (make one with `tinyengine calibrate`)")
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise LatencyError(f"latency model {p}: not a {FORMAT} file")
        try:
            kernels = {k: KernelFit(list(v["terms"]), [float(c) for c in v["coef"]], int(v.get("samples", 0)),
                                    float(v.get("rmspe", 0.0))) for k, v in d["kernels"].items()}
            return cls(str(d["target"]), str(d["core"]), str(d["unit"]), kernels, source=str(p))
        except (KeyError, TypeError, ValueError) as e:
            raise LatencyError(f"latency model {p}: malformed ({type(e).__name__}: {e})") from None


def _load_json(p: Path, what: str, missing: str):
    return read_json(p, LatencyError, what=what, missing=missing)


def default_model(board=None) -> LatencyModel:
    """The shipped instruction model (QEMU Cortex-M4 measurements), adapted to ``board``."""
    m = LatencyModel.load(DATA / "qemu-m4.json")
    m.source = "shipped QEMU Cortex-M4 instruction model"
    return m.for_board(board) if board is not None else m


_MODELS: dict[int, LatencyModel] = {}


@lru_cache(maxsize=200_000)
def _part_latency(model_key: int, part: tuple) -> float:
    from tinyengine.ir.graph import block_graph, head_graph, stem_graph
    from tinyengine.pipeline import plan_memory
    model = _MODELS[model_key]
    if part[0] == "block":
        graphs = [block_graph(part[1], part[2])]
    else:
        res, cin, stem_c, stem_k, stem_s, last_c, last_hw, fm, ncls = part[1]
        graphs = [stem_graph(res, cin, stem_c, stem_k, stem_s), head_graph(last_hw, last_c, fm, ncls)]
    return sum(sum(model.predict_layers(kernel_choices(plan_memory(g, _ARCH_PLAN)))) for g in graphs)


# Architecture predictions plan with the per-op layout choice off (every depthwise in place): the
# choice depends on the whole network's peak, which the per-block cache of ``predict_fast`` cannot see,
# and it only ever picks a kernel predicted cheaper, so this is an upper bound of the generated code's.
# The residual-add fusion likewise (kept where the whole network's arena does not grow; every fused
# block measured faster than its projection + add): off here, an upper bound again.
_ARCH_PLAN = PlanOptions(layout_choice="off", fuse_add="off")


def arch_layers(arch) -> list[dict]:
    """Lowered layer summaries of an ArchConfig without weights (what the generated code will call)."""
    from tinyengine.ir.graph import build_graph
    from tinyengine.pipeline import plan_memory
    g = build_graph(arch)
    return kernel_choices(plan_memory(g, _ARCH_PLAN))


# ----------------------------------------------------------------------------- records and fitting
@dataclass
class Sample:
    model: str
    layer: dict
    measured: float


def read_records(paths: list[str | Path]) -> tuple[list[Sample], dict]:
    """Per-layer samples from ``tinyengine probe --layers --json`` records (with their project's
    lowering); the common unit/board/core as a dict. Errors name the file."""
    samples: list[Sample] = []
    meta: dict = {}
    for path in paths:
        p = Path(path)
        rec = _load_json(p, str(p), "no such probe record")
        if not isinstance(rec, dict) or "layers" not in rec:
            raise LatencyError(f"{p}: no per-layer timings (record it with `tinyengine probe --layers --json` "
                               "or `tinyengine emulate --layers --json`)")
        if not rec.get("lowering"):
            raise LatencyError(f"{p}: no lowering (probe with --project DIR so the kernels' shapes are known)")
        for key in ("unit", "core"):
            if key in meta and meta[key] != rec.get(key):
                raise LatencyError(f"{p}: {key} '{rec.get(key)}' differs from the other records' '{meta[key]}'")
            meta[key] = rec.get(key)
        meta.setdefault("board", rec.get("board"))
        lowering = {la["index"]: la for la in rec["lowering"]}
        unit = rec["unit"]
        for la in rec["layers"]:
            low = lowering.get(la["index"])
            if low is None or "args" not in low:
                raise LatencyError(f"{p}: layer {la['index']} has no lowering arguments (regenerate the project)")
            samples.append(Sample(rec.get("model", p.stem), low, float(la[unit])))
    return samples, meta


def fit(samples: list[Sample], *, target: str, core: str, unit: str, ridge: float = 1e-6) -> LatencyModel:
    """Least squares on relative error, per kernel (rows scaled by 1/measured)."""
    groups: dict[str, tuple[list[str], list[np.ndarray], list[float]]] = {}
    for s in samples:
        if s.measured <= 0:
            continue
        k, terms, x = layer_features(s.layer)
        groups.setdefault(k, (terms, [], []))
        groups[k][1].append(x)
        groups[k][2].append(s.measured)
    model = LatencyModel(target, core, unit)
    for k, (terms, xs, ys) in groups.items():
        X, y = np.array(xs), np.array(ys)
        A = X / y[:, None]
        scale = np.maximum(np.abs(A).max(axis=0), 1e-30)  # column scaling: terms span 1..1e7
        An = A / scale
        # a small ridge keeps terms that are collinear in this data (e.g. 'call' with one shape) solvable
        lhs = An.T @ An + ridge * np.eye(An.shape[1])
        w = np.linalg.solve(lhs, An.T @ np.ones(len(y))) / scale
        pred = X @ w
        rmspe = float(np.sqrt(np.mean(((pred - y) / y) ** 2)))
        model.kernels[k] = KernelFit(terms, [float(c) for c in w], len(y), rmspe)
    return model


def evaluate(model: LatencyModel, samples: list[Sample]) -> dict:
    """RMSPE and the share of predictions within +-10% (per layer), and per whole model."""
    pred = np.array([model.predict_layer(s.layer) for s in samples])
    meas = np.array([s.measured for s in samples])
    rel = (pred - meas) / meas
    per_model: dict[str, list[float]] = {}
    for s, p in zip(samples, pred):
        per_model.setdefault(s.model, [0.0, 0.0])
        per_model[s.model][0] += p
        per_model[s.model][1] += s.measured
    models = {m: (p - t) / t for m, (p, t) in per_model.items()}
    return {"layers": len(samples), "rmspe": float(np.sqrt(np.mean(rel ** 2))),
            "within_10pct": float(np.mean(np.abs(rel) <= 0.10)), "worst": float(np.max(np.abs(rel))),
            "models": models}
