"""Latency model (nn-Meter style, per kernel): predicted instructions/cycles of every layer.

Each kernel's cost is a linear combination of analytic terms read off its loops: the MACs (the SMLAD
inner loop), one term per output element (requantisation, stores), per input element (int8 -> int16
widening, the in-place depthwise kernel's padded channel copy), per row/column of the SIMD tiles, and
the leftover terms of the channel and pixel tiling (the 2x2 output tile of the pointwise kernel and
the 4-channel steps of SXTB16: odd channels and pixels take the scalar path). The coefficients are
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
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

FORMAT = "tinyml-latency/1"
DATA = Path(__file__).resolve().parent / "latency_data"
# Cycles per instruction when a real board has no calibration of its own: Cortex-M4 issues one
# instruction per cycle except loads (2) and taken branches (2-4) -- about 1.25 on these kernels;
# the M7's dual issue brings it under 1 (estimates, replaced by `tinyengine calibrate` on the board).
CPI_ESTIMATE = {"cortex-m4": 1.25, "cortex-m7": 0.8, "cortex-m33": 1.2, "cortex-m55": 0.8, "cortex-m3": 1.3}


class LatencyError(ValueError):
    """A latency model or probe record that cannot be used (named, with the reason)."""


# ----------------------------------------------------------------------------- features
def _g(args: dict) -> dict:
    return args.get("geom", args)


def layer_features(layer: dict) -> tuple[str, list[str], np.ndarray]:
    """(kernel key, term names, term values) of one lowered layer (``LoweredOp.summary()``); the key is
    the C kernel, with the kernel size and stride for the depthwise kernels (one fit each)."""
    k, a = layer["kernel"], layer.get("args", {})
    if k == "te_conv_pointwise_s8":
        p, ci, co = a["n_pixels"], a["in_c"], a["out_c"]
        terms = {"macs": p * ci * co, "out": p * co, "in": p * ci, "pixels": p, "out_c": co,
                 "ci_rem4": p * co * (ci % 4), "co_odd": p * ci * (co % 2), "pix_odd": (p % 2) * ci * co}
    elif k in ("te_conv_im2col_s8",):
        g = _g(a)
        p, kk, co = g["out_h"] * g["out_w"], g["k_h"] * g["k_w"] * g["in_c"], g["out_c"]
        terms = {"macs": p * kk * co, "out": p * co, "col": p * kk, "pixels": p, "out_c": co,
                 "k_rem4": p * co * (kk % 4), "co_odd": p * kk * (co % 2)}
    elif k == "te_conv_winograd3x3_s8":
        g = _g(a)
        t, ci, co = math.ceil(g["out_h"] / 2) * math.ceil(g["out_w"] / 2), g["in_c"], g["out_c"]
        terms = {"tile_mults": t * 16 * ci * co, "tile_in": t * ci, "tile_out": t * co, "tiles": t}
    elif k in ("te_depthwise_inplace_s8", "te_depthwise_s8"):
        # one fit per (kernel size, stride): each has its own unrolled row function. Per channel: the
        # padded copy of the plane (in place), then per output row chunks of up to 32 outputs, computed
        # two at a time sharing loads, an odd last output the slow way, and one requantisation each.
        g = _g(a)
        c, oh, ow = g["in_c"], g["out_h"], g["out_w"]
        ph = g["in_h"] + 2 * g["pad_top"]
        pw = g["in_w"] + 2 * g["pad_left"]
        k = f"{k}/k{g['k_h']}s{g['stride_h']}"
        terms = {"pairs": c * oh * (ow // 2), "odd": c * oh * (ow % 2), "out": c * oh * ow,
                 "chunks": c * oh * math.ceil(ow / 32), "padded_in": c * ph * pw, "channels": c}
    elif k == "te_add_s8":
        terms = {"elements": a["n"]}
    elif k == "te_avg_pool_s8":
        terms = {"in": a["in_h"] * a["in_w"] * a["c"], "out": a["out_h"] * a["out_w"] * a["c"]}
    elif k == "te_fully_connected_s8":
        terms = {"macs": a["in_n"] * a["out_n"], "out": a["out_n"], "in": a["in_n"]}
    elif k in ("memmove", "(none)"):
        terms = {"bytes": a.get("n", 0)}
    else:
        raise LatencyError(f"latency model: no terms for kernel '{k}' (layer {layer.get('name')})")
    terms["call"] = 1
    return k, list(terms), np.array(list(terms.values()), dtype=np.float64)


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
        from .cost import stem_head_key
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
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise LatencyError(f"{what}: {missing}") from None
    except json.JSONDecodeError as e:
        raise LatencyError(f"{what}: invalid JSON ({e.msg}, line {e.lineno})") from None
    except (OSError, UnicodeDecodeError, RecursionError) as e:
        raise LatencyError(f"{what}: cannot read ({getattr(e, 'strerror', None) or type(e).__name__})") from None


def default_model(board=None) -> LatencyModel:
    """The shipped instruction model (QEMU Cortex-M4 measurements), adapted to ``board``."""
    m = LatencyModel.load(DATA / "qemu-m4.json")
    m.source = "shipped QEMU Cortex-M4 instruction model"
    return m.for_board(board) if board is not None else m


_MODELS: dict[int, LatencyModel] = {}


@lru_cache(maxsize=200_000)
def _part_latency(model_key: int, part: tuple) -> float:
    from codegen.lower import kernel_choices
    from .graph import block_graph, head_graph, stem_graph
    from .planner import plan_memory
    model = _MODELS[model_key]
    if part[0] == "block":
        graphs = [block_graph(part[1], part[2])]
    else:
        res, cin, stem_c, stem_k, stem_s, last_c, last_hw, fm, ncls = part[1]
        graphs = [stem_graph(res, cin, stem_c, stem_k, stem_s), head_graph(last_hw, last_c, fm, ncls)]
    return sum(sum(model.predict_layers(kernel_choices(g, plan_memory(g)))) for g in graphs)


def arch_layers(arch) -> list[dict]:
    """Lowered layer summaries of an ArchConfig without weights (what the generated code will call)."""
    from codegen.lower import kernel_choices
    from .graph import build_graph
    from .planner import plan_memory
    g = build_graph(arch)
    return kernel_choices(g, plan_memory(g))


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
