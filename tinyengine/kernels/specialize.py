"""Which layers run a per-layer specialised copy of their kernel (``--specialize off|auto|all``).

The copies themselves (C text) are ``codegen/specialize.py``'s. Per layer of a specialisable kernel the
instructions a copy saves are estimated from the layer's latency terms (coefficients fitted on
``benchmarks/model_instructions.py --specialize all``) and its extra code from measured copy sizes. The
layers are taken by instructions saved per extra code byte, best first, while the extra code fits the
flash budget: ``--specialize-flash-limit`` bytes, or by default what the board's flash leaves after the
weights and ``CODE_RESERVE`` bytes for the generic kernels and the firmware. ``auto`` takes only layers
that save at least ``AUTO_MIN_SAVED_PER_BYTE`` instructions per inference per byte of code; ``all`` takes
every layer of a specialisable kernel within the budget; ``off`` none.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tinyml_errors import TinyMLError, UsageError

MODES = ("off", "auto", "all")
CODE_RESERVE = 64 * 1024  # flash kept for the generic kernels, the runtime and the application


@dataclass(frozen=True)
class SpecKernel:
    """How one C kernel is specialised: its .c files (included in this order), its hook macro, and the
    measured estimates: instructions a copy saves (linear in the registry's latency terms of the layer)
    and the extra code of one copy on Cortex-M4 (DSP build)."""

    sources: tuple[str, ...]
    hook: str
    saved: dict[str, float]                 # registry latency term -> instructions saved per unit
    code: Callable[[dict], int]             # call arguments -> .text bytes of one copy (rounded up)
    unrolled: "SpecKernel | None" = None    # a bigger, faster variant the budget may upgrade a copy to
    pragma: str = ""                        # before the kernel source in the copy (GCC only)


def _dw_inplace_code(a: dict) -> int:
    return {3: 1300, 5: 1800}.get(int(a["geom"]["k_h"]), 3500)


def _dw_inplace_unrolled_code(a: dict) -> int:
    return {3: 3900, 5: 4100}.get(int(a["geom"]["k_h"]), 5800)


def _pw_code(a: dict) -> int:
    ci, co = int(a["in_c"]), int(a["out_c"])
    if ci <= 16:
        return 2200
    return 3600 if ci <= 64 or co <= 32 else 2300  # the folded-requantisation path is compiled in too


# in-place depthwise copies: with the row lengths literals, unrolling the loops pays (measured on vww1's
# in-place layers: 0.81 -> 0.75 of the generic kernel's instructions, ~2.5x the code); out-of-place ones
# do not (0.86 -> 0.88), and pointwise copies lose (0.96 -> 1.39: spills)
UNROLL = '#pragma GCC optimize("unroll-loops")'

# Fitted on benchmarks/model_instructions.py --specialize all (mcunet-vww1, every layer of the three
# kernels; README "Per-layer specialised kernels"). Pointwise saves mostly per pixel and per output in the
# few-channel layers (the in_c 8/16 path: ~4.5 per pixel and table chunk, measured on vww1 b0.project,
# b1-b4.expand after that path landed); depthwise per channel (the plane copy and row loops with the pitch a
# literal).
KERNELS: dict[str, SpecKernel] = {
    "te_conv_pointwise_s8": SpecKernel(("te_conv.c", "te_pointwise.c"), "TE_SPEC_POINTWISE",
                                       {"out": 0.17, "pixels": 15.0, "out_rq": 2.5, "px_few": 4.5},
                                       _pw_code),
    "te_depthwise_inplace_s8": SpecKernel(("te_depthwise.c",), "TE_SPEC_DEPTHWISE",
                                          {"channels": 280.0, "out": 1.5, "padded_in": 1.8},
                                          _dw_inplace_code,
                                          SpecKernel(("te_depthwise.c",), "TE_SPEC_DEPTHWISE",
                                                     {"channels": 294.0, "out": 2.5, "padded_in": 2.7},
                                                     _dw_inplace_unrolled_code, pragma=UNROLL)),
    "te_depthwise_s8": SpecKernel(("te_depthwise.c",), "TE_SPEC_DEPTHWISE", {"groups": 1220.0},
                                  lambda a: 1300),
}
AUTO_MIN_SAVED_PER_BYTE = 1.0  # auto: a copy must save at least this many instructions per inference per byte


@dataclass
class SpecDecision:
    """Per layer: whether it runs a specialised copy, its C name, the estimates behind the choice."""

    specialised: bool
    function: str | None
    est_instructions: float   # latency model's estimate of the generic kernel on this layer
    est_saved: float          # instructions the copy is expected to save
    code_bytes: int           # extra flash of the copy (estimate)
    reason: str
    pragma: str = ""          # the variant's pragma (codegen/specialize.py writes it into the copy)
    variant: str = "plain"    # plain | unrolled

    def summary(self) -> dict:
        return {"specialised": self.specialised, "function": self.function,
                "est_instructions": round(self.est_instructions), "est_saved": round(self.est_saved),
                "code_bytes": self.code_bytes, "variant": self.variant, "reason": self.reason}


def check_mode(mode: str, flash_limit: int | None) -> None:
    if mode not in MODES:
        raise UsageError(f"--specialize: give one of {', '.join(MODES)}, got '{mode}'")
    if flash_limit is not None and flash_limit < 0:
        raise UsageError(f"--specialize-flash-limit must be >= 0 bytes, got {flash_limit}")


def flash_budget(board, weight_bytes: int, flash_limit: int | None) -> int:
    """Extra code bytes the specialised copies may take."""
    if flash_limit is not None:
        return flash_limit
    if board is None:
        return 0
    return max(0, int(board.flash_bytes) - int(weight_bytes) - CODE_RESERVE)


def _estimate(layer: dict, latency) -> float:
    if latency is None:
        return 0.0
    try:
        return float(latency.predict_layer(layer))
    except TinyMLError:  # a kernel the latency model was not calibrated for: no estimate
        return 0.0


def estimate_saved(kernel: str, args: dict, spec: SpecKernel | None = None) -> float:
    """Instructions a specialised copy of ``kernel`` (``spec``: a variant of it) is expected to save on a
    layer with call ``args``."""
    from tinyengine.kernels.registry import latency_terms
    _, terms = latency_terms(kernel, args)
    return sum(c * float(terms.get(t, 0.0)) for t, c in (spec or KERNELS[kernel]).saved.items())


def choose(ops, mode: str, budget: int, latency=None) -> dict[int, SpecDecision]:
    """Decisions for the ops (``KernelChoice``s) that a specialisable kernel runs, by op index;
    ``latency`` an optional :class:`~tinyengine.latency.model.LatencyModel` (the generic kernel's estimate,
    shown beside the saving)."""
    cands = []
    for o in ops:
        k = KERNELS.get(o.kernel)
        if k is None:
            continue
        cands.append((o, k.code(o.args), _estimate(o.summary(), latency), estimate_saved(o.kernel, o.args)))
    out: dict[int, SpecDecision] = {}
    used = 0
    # best instructions saved per extra byte first (ties: schedule order)
    for o, code, est, saved in sorted(cands, key=lambda c: (-c[3] / c[1], c[0].index)):
        fn = f"te_spec_{o.index}"
        if mode == "off":
            why, ok = "--specialize off", False
        elif mode == "auto" and saved < AUTO_MIN_SAVED_PER_BYTE * code:
            why, ok = (f"generic kernel: a copy would save ~{saved:,.0f} instructions for ~{code} B of code "
                       f"(auto wants >= {AUTO_MIN_SAVED_PER_BYTE:g} per byte)"), False
        elif used + code > budget:
            why, ok = (f"generic kernel: ~{code} B more would exceed the {budget:,} B flash budget for "
                       f"specialised copies ({used:,} B taken)"), False
        else:
            used += code
            why, ok = (f"specialised copy ({mode}): the layer's constants compiled in, ~{saved:,.0f} "
                       f"instructions saved for ~{code} B of code"), True
        out[o.index] = SpecDecision(ok, fn if ok else None, est, saved, code if ok else 0, why)
    # then the budget left upgrades copies to their unrolled variant, best extra saving per extra byte first
    ups = []
    for o, code, _, saved in cands:
        u = KERNELS[o.kernel].unrolled
        if u is not None and out[o.index].specialised:
            extra, more = u.code(o.args) - code, estimate_saved(o.kernel, o.args, u) - saved
            if more > 0:
                ups.append((more / max(extra, 1), o, u, extra, more))
    for _, o, u, extra, more in sorted(ups, key=lambda x: (-x[0], x[1].index)):
        d = out[o.index]
        if used + extra > budget or (mode == "auto" and more < AUTO_MIN_SAVED_PER_BYTE * extra):
            continue
        used += extra
        d.code_bytes += extra
        d.est_saved += more
        d.pragma, d.variant = u.pragma, "unrolled"
        d.reason = (f"specialised copy ({mode}, loops unrolled): the layer's constants compiled in, "
                    f"~{d.est_saved:,.0f} instructions saved for ~{d.code_bytes} B of code")
    return out
