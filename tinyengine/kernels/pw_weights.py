"""Per-layer choice of int16 pointwise weights in flash (``tinyengine gen --pw-weights int8|int16|auto``).

``te_conv_pointwise_w16_s8`` (firmware/src/te_pointwise_w16.c) reads its weights already widened to
int16, in the order its 2 x 2 tile loads them, so its inner loop has no SXTB16: 14 instructions per 16
MACs instead of 18 (4 fewer per 16 MACs: about MACs / 4 instructions saved per layer), for twice the
layer's weight bytes in flash (in_c * out_c more). The saving per extra flash byte is therefore
``pixels / 4``: large-spatial layers first.

* ``int8`` (the default): no layer changes;
* ``int16``: every eligible layer; refused, naming the sizes, when the constants alone (int8 model plus
  the doubled weights) are over the board's flash;
* ``auto``: eligible layers by instructions saved per extra byte, each while the flash left after the
  int8 model and the code reserve still holds it.

Only cores with the DSP extension gain (the portable build of the int16 kernel is a plain loop).

Eligible: a 1x1 stride-1 unpadded conv2d (the pointwise kernel's ops) whose in_c is a multiple of 4, but
not 8 or 16 (te_pointwise.c's few-input-channel path already runs those without per-use widening), and,
once quantised, with the full int8 clamp and every shift in [-23, -2] (the int16 kernel's fast path).
The choice is an op attribute (``pw_weights: "int16"``): the kernel registry selects the int16 kernel
from it and :func:`tinyengine.ir.opcost.op_flash` counts the doubled weights, so the flash figures of
``analyze``, the cost model and lowering.json include it.
"""
from __future__ import annotations

import numpy as np

from tinyengine.ir.graph import Graph, Op
from tinyengine.ir.opcost import op_flash
from tinyml_errors import UsageError

MODES = ("int8", "int16", "auto")
ATTR = "pw_weights"
CODE_RESERVE_BYTES = 128 * 1024  # flash kept for code (kernels, generated model, runtime: ~60-90 KB today)


def eligible(g: Graph, op: Op) -> bool:
    """Whether ``op`` can take int16 weights with a gain (see the module doc)."""
    if op.kind != "conv2d" or op.weight_shape is None:
        return False
    a = op.attrs
    if (tuple(a.get("kernel", ())) != (1, 1) or tuple(a.get("stride", ())) != (1, 1)
            or tuple(a.get("padding", ())) != (0, 0, 0, 0) or a.get("in_regions") or "out_region" in a):
        return False
    cin = op.weight_shape[3]
    if cin % 4 or cin in (8, 16):
        return False
    # quantised: the int16 kernel's fast path needs the full int8 clamp and every shift in [-23, -2] (others
    # run its plain loop, slower than the int8 kernel); an unquantised graph (analyze) is judged by shape
    if (int(a.get("act_min", -128)), int(a.get("act_max", 127))) != (-128, 127):
        return False
    shift = op.params.get("shift")
    return shift is None or bool(np.all((np.asarray(shift) >= -23) & (np.asarray(shift) <= -2)))


def extra_flash(op: Op) -> int:
    """Flash bytes int16 weights add to ``op`` (its int8 weights once more)."""
    o, kh, kw, i = op.weight_shape
    return o * kh * kw * i


def saved_instructions(g: Graph, op: Op) -> int:
    """Instructions int16 weights save on ``op`` (4 per 16 MACs on the Cortex-M4 DSP path)."""
    h, w, _ = g.tensors[op.output].shape
    o, _, _, i = op.weight_shape
    return h * w * o * i // 4


def choose_pw_weights(g: Graph, mode: str, flash_bytes: int | None = None, board_name: str = "the board",
                      dsp: bool = True, base_bytes: int | None = None, reserve: int | None = None) -> dict:
    """Mark the ops of ``g`` that get int16 weights (``op.attrs[ATTR] = "int16"``; cleared on the others)
    and return the record (mode, layers, extra flash, estimated instructions saved, budget). ``dsp``: the
    board's core has the DSP extension (without it the int16 kernel runs its portable loop, no faster
    than the int8 kernel's: ``int16`` is refused and ``auto`` widens nothing). ``base_bytes``: the int8
    model's constants in flash as lowered (default: the sum of ``op_flash``); ``reserve``: flash kept for
    code and other data (default :data:`CODE_RESERVE_BYTES`)."""
    if mode not in MODES:
        raise UsageError(f"--pw-weights: must be one of {', '.join(MODES)}, got '{mode}'")
    if mode == "int16" and not dsp:
        raise UsageError(f"--pw-weights int16: {board_name}'s core has no DSP extension (SMLAD), where int16 "
                         "weights save nothing; use int8 (the default)")
    for op in g.ops:
        op.attrs.pop(ATTR, None)
    cands = [op for op in g.ops if eligible(g, op)] if dsp else []
    base = sum(op_flash(op) for op in g.ops) if base_bytes is None else base_bytes
    reserve = CODE_RESERVE_BYTES if reserve is None else reserve
    budget = None if flash_bytes is None else flash_bytes - reserve - base
    chosen: list[Op] = []
    if mode == "int16":
        chosen = cands
        extra = sum(extra_flash(op) for op in chosen)
        if flash_bytes is not None and base + extra > flash_bytes:
            raise UsageError(
                f"--pw-weights int16: int16 weights add {extra:,} B of flash to the int8 model's {base:,} B, over "
                f"{board_name}'s {flash_bytes:,} B of flash (--pw-weights auto widens only the layers that fit, "
                f"keeping {reserve:,} B for code)")
    elif mode == "auto":
        if budget is None:
            raise UsageError("--pw-weights auto needs the board's flash size (give --board)")
        left = budget
        order = sorted(cands, key=lambda op: -saved_instructions(g, op) / extra_flash(op))
        for op in order:
            if extra_flash(op) <= left:
                chosen.append(op)
                left -= extra_flash(op)
    names = {op.name for op in chosen}
    for op in g.ops:
        if op.name in names:
            op.attrs[ATTR] = "int16"
    return {"mode": mode, "int16_layers": [op.name for op in g.ops if op.name in names],
            "extra_flash_bytes": sum(extra_flash(op) for op in chosen),
            "saved_instructions_estimate": sum(saved_instructions(g, op) for op in chosen),
            "flash_budget_bytes": budget, "code_reserve_bytes": reserve, "int8_constants_bytes": base,
            "eligible_layers": len(cands)}
