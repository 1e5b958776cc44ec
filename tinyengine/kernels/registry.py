"""THE kernel registry: one :class:`KernelSpec` per C kernel of ``firmware/`` (the kernel contract).

A spec says which ops the kernel takes (``select``: a reason, or None), the scratch it needs (bytes,
element type, and the C expression of ``te_*_scratch_bytes()`` the generated code checks at run time),
the shape arguments of its call, the call itself (a jinja2 snippet rendered into ``model.c``) and the
terms its latency scales with. The memory planner, codegen's lowering, the latency model,
``tinyengine analyze`` and the templates all read it: adding a kernel is one entry here, its C in
``firmware/src/`` and its conformance tests.

Specs are tried in registry order; the first whose ``select`` returns a reason takes the op.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from tinyengine.ir.graph import Graph, Op
from tinyml_errors import LoweringError

# int16 scratch is read two halfwords at a time by the SIMD paths: word alignment for both.
SCRATCH_ALIGN = {"int8": 1, "int16": 4, "int32": 4}

WINOGRAD_MAX_IN_C = 1827  # te_winograd.c: int32 sums cannot overflow up to here; above, the kernel refuses


@dataclass(frozen=True)
class Context:
    """What a kernel choice depends on besides the op: the plan's aliasing and the user's options."""

    inplace: bool = False            # the plan writes the op's output over its input
    winograd: bool = False           # --winograd
    planned_scratch: int | None = None  # bytes the plan reserved (None while planning)
    same_offset: bool = False        # reshape: input and output at one offset


@dataclass(frozen=True)
class KernelSpec:
    """One C kernel: what it accepts, its scratch, its call and its latency terms."""

    name: str                                   # the C function ("memmove"/"(none)" for reshape)
    kinds: tuple[str, ...]                      # op kinds it implements
    layout: str                                 # data and weight layout it reads and writes
    select: Callable[[Graph, Op, Context], str | None]
    args: Callable[[Graph, Op], dict]           # shape arguments of the call (no numbers)
    call: str     # jinja2 snippet of the call in model.c: x/x1 input offsets, y output offset, w "weights,
                  # bias" arrays, s scratch offset, i layer index, a call arguments (codegen.emit._call)
    terms: Callable[[dict], dict[str, float]]   # latency terms from ``args``
    scratch_type: str | None = None             # int8 / int16 / int32 element type of the scratch
    scratch: Callable[[Graph, Op], int] | None = None      # bytes (mirror of the C function)
    scratch_c: Callable[[Graph, Op], str] | None = None    # the C expression checked by te_model_check()
    fit_key: Callable[[dict], str] | None = None           # latency fit per variant (default: the name)
    weights: str = "none"                       # weight array layout: none | ohwi | stem | oi | oi16 | hwc | winograd

    def latency_key(self, args: dict) -> str:
        return self.fit_key(args) if self.fit_key else self.name


# --------------------------------------------------------------------------- shapes
def _geom(g: Graph, op: Op) -> dict:
    x, y = g.tensors[op.inputs[0]].shape, g.tensors[op.output].shape
    for name, v in (("input", x), ("output", y)):
        if max(v) > 32767:
            raise LoweringError(f"codegen: op '{op.name}': {name} shape {v} does not fit te_conv_geom_t's "
                                "int16 fields")
    a = op.attrs
    (kh, kw), (sh, sw), pad = a["kernel"], a["stride"], a["padding"]
    return {"geom": {"in_h": x[0], "in_w": x[1], "in_c": x[2], "out_h": y[0], "out_w": y[1], "out_c": y[2],
                     "k_h": kh, "k_w": kw, "stride_h": sh, "stride_w": sw, "pad_top": pad[0],
                     "pad_left": pad[2]}}


def _cin(g: Graph, op: Op) -> int:
    return g.tensors[op.inputs[0]].shape[2]


def winograd_scratch_bytes(in_c: int) -> int:
    """Mirror of ``te_winograd_scratch_bytes(in_c)`` (firmware/src/te_winograd.c): the transformed 4x4
    input tile of every input channel, ``16 * in_c`` int16. The generated ``te_model_check()`` compares
    it with the C function at run time, so a drift between the two is caught, not silently trusted."""
    return 16 * in_c * 2


def _pointwise_ok(op: Op) -> bool:
    a = op.attrs
    return tuple(a["kernel"]) == (1, 1) and tuple(a["stride"]) == (1, 1) and tuple(a["padding"]) == (0, 0, 0, 0)


# --------------------------------------------------------------------------- conv2d
def _sel_pointwise(g, op, ctx):
    return "1x1 stride-1 conv: a GEMM over NHWC pixel rows, no im2col needed" if _pointwise_ok(op) else None


def _sel_pointwise_w16(g, op, ctx):
    if not (_pointwise_ok(op) and op.attrs.get("pw_weights") == "int16" and _cin(g, op) % 4 == 0):
        return None
    o, _, _, i = op.weight_shape
    return (f"1x1 stride-1 conv, gen --pw-weights: int16 weights pre-widened in flash (+{o * i:,} B), "
            "no SXTB16 in the inner loop (14 instead of 18 instructions per 16 MACs)")


def _sel_winograd(g, op, ctx):
    a = op.attrs
    if not (ctx.winograd and tuple(a["kernel"]) == (3, 3) and tuple(a["stride"]) == (1, 1)):
        return None
    cin = _cin(g, op)
    if cin > WINOGRAD_MAX_IN_C or ctx.planned_scratch is None or winograd_scratch_bytes(cin) > ctx.planned_scratch:
        return None
    return "3x3 stride-1 regular conv with --winograd: F(2x2,3x3) does 16 multiplies per 4 outputs instead of 36"


def _sel_im2col(g, op, ctx):
    kh, kw = op.attrs["kernel"]
    sh = op.attrs["stride"][0]
    why = "stem" if op.role == "stem" else f"{kh}x{kw} stride-{sh} conv"
    reason = f"{why}: im2col + GEMM"
    if ctx.winograd and (kh, kw) == (3, 3) and tuple(op.attrs["stride"]) == (1, 1):
        cin = _cin(g, op)
        reason += (f" (no Winograd: in_c {cin} > {WINOGRAD_MAX_IN_C}" if cin > WINOGRAD_MAX_IN_C
                   else f" (no Winograd: it needs {winograd_scratch_bytes(cin)} B scratch, the "
                        f"plan reserved {ctx.planned_scratch} B") + ")"
    return reason


STEM_MAX_IN_C, STEM_MAX_K = 4, 196  # TE_STEM_MAX_IN_C / TE_STEM_MAX_K in tinyengine.h


def stem_k(k_h: int, k_w: int, in_c: int) -> int:
    """Mirror of ``te_stem_k``: the stem's reduction length, k_h * k_w * in_c rounded up to a multiple of 4."""
    return (k_h * k_w * in_c + 3) & ~3


def _sel_stem(g, op, ctx):
    kh, kw = op.attrs["kernel"]
    cin = _cin(g, op)
    if cin > STEM_MAX_IN_C or stem_k(kh, kw, cin) > STEM_MAX_K:
        return None
    k, kp = kh * kw * cin, stem_k(kh, kw, cin)
    pad = f", padded to {kp} with zero weights (no scalar tail)" if kp != k else ""
    return (f"{'stem' if op.role == 'stem' else 'conv'} with {cin} input channel{'s' * (cin > 1)}: im2col columns of "
            f"{k} values gathered whole and widened in groups of four{pad}, 2x2 tiles on int16 weights")


def _terms_stem(a):
    # the 2x2 tiles run over the padded column (Kp - K zero-weight products per output), one column
    # gathered and widened per pixel, requantisation per output, constants per channel and call
    g = a["geom"]
    k = g["k_h"] * g["k_w"] * g["in_c"]
    p, kp, co = g["out_h"] * g["out_w"], stem_k(g["k_h"], g["k_w"], g["in_c"]), g["out_c"]
    return {"macs": p * k * co, "pad_macs": p * (kp - k) * co, "out": p * co, "col": p * kp, "pixels": p,
            "out_c": co, "co_odd": p * kp * (co % 2)}


_PW_KEYS = ("macs", "out", "in", "pixels", "out_c", "ci_rem4", "co_odd", "pix_odd", "macs_asm", "out_rq",
            "in_rewiden")


def _terms_pw_tiles(a):
    # te_pointwise.c's 2 x 2 tiles (DSP dispatch for the usual layer: full clamp, shifts in [-23, -2]): the
    # folded requantisation per 32-channel chunk (input widened again per chunk), the assembly inner loop
    p, ci, co = a["n_pixels"], a["in_c"], a["out_c"]
    rq = ci % 4 == 0 and ci > 0 and (co <= 32 or ci <= 64)
    asm = ci % 4 == 0 and ci >= (16 if rq else 20)
    return {"macs": p * ci * co, "out": p * co, "in": p * ci, "pixels": p, "out_c": co,
            "ci_rem4": p * co * (ci % 4), "co_odd": p * ci * (co % 2), "pix_odd": (p % 2) * ci * co,
            "macs_asm": p * ci * co if asm else 0, "out_rq": p * co if rq else 0,
            "in_rewiden": p * ci * ((co - 1) // 32) if rq else 0}


def _terms_pointwise(a):
    # the 2 x 2 tiles, except in_c 16 (and 8 with out_c even): the few-input-channel path (one pixel a turn
    # against a table of at most 192 words per chunk, 4 + in_c / 2 per channel), its own per-output costs
    p, ci, co = a["n_pixels"], a["in_c"], a["out_c"]
    few_keys = ("out_few8", "out_few16", "px_few", "co_few")
    if ci == 16 or (ci == 8 and co % 2 == 0):
        chunks = math.ceil(co / (192 // (4 + ci // 2)))
        return {**dict.fromkeys(_PW_KEYS, 0), "macs": p * ci * co, "out_few8": p * co if ci == 8 else 0,
                "out_few16": p * co if ci == 16 else 0, "px_few": p * chunks, "co_few": co}
    return {**_terms_pw_tiles(a), **dict.fromkeys(few_keys, 0)}


def _terms_pointwise_w16(a):
    # te_pointwise_w16.c, the usual layer: 2 x 2 tiles on int16 weights, constants per 32-channel chunk
    # (pixel pair widened again per chunk) when out_c <= 32 or in_c <= 64, else per channel pair
    p, ci, co = a["n_pixels"], a["in_c"], a["out_c"]
    table = co <= 32 or ci <= 64
    return {"macs": p * ci * co, "out": p * co, "in": p * ci, "pixels": p, "out_c": co,
            "co_odd": p * ci * (co % 2), "pix_odd": (p % 2) * ci * co,
            "in_rewiden": p * ci * ((co - 1) // 32) if table else 0, "out_pair_rq": 0 if table else p * co}


def _terms_im2col(a):
    g = a["geom"]
    p, kk, co = g["out_h"] * g["out_w"], g["k_h"] * g["k_w"] * g["in_c"], g["out_c"]
    return {"macs": p * kk * co, "out": p * co, "col": p * kk, "pixels": p, "out_c": co,
            "k_rem4": p * co * (kk % 4), "co_odd": p * kk * (co % 2)}


def _terms_winograd(a):
    g = a["geom"]
    t, ci, co = math.ceil(g["out_h"] / 2) * math.ceil(g["out_w"] / 2), g["in_c"], g["out_c"]
    return {"tile_mults": t * 16 * ci * co, "tile_in": t * ci, "tile_out": t * co, "tiles": t}


# --------------------------------------------------------------------------- depthwise
def _dw_scratch(g, op):
    h, w, _ = g.read_shape(op, 0)
    pt, pb, pl, pr = op.attrs["padding"]
    return (h + pt + pb) * (w + pl + pr)  # one padded input channel, int8


def _dw_scratch_c(g, op):
    x = g.tensors[op.inputs[0]].shape
    pt, pb, pl, pr = op.attrs["padding"]
    return f"te_depthwise_scratch_bytes({x[0]}, {x[1]}, {pt}, {pb}, {pl}, {pr})"


def _sel_dw_inplace(g, op, ctx):
    if not ctx.inplace:
        return None
    src = op.inputs[0]
    return (f"the plan writes the output over its input '{src}' (no second activation buffer: saves "
            f"{g.tensors[op.output].nbytes} B)")


def _sel_dw(g, op, ctx):
    return "the plan gives the output its own buffer (input still needed, or in-place off)"


def _terms_dw(a):
    # Per channel: the padded copy of the plane (in place), then per output row chunks of up to 32
    # outputs, computed two at a time sharing loads (5x5/7x7: four at a time, a pair left over when a
    # row's length is 2 or 3 mod 4: rest_pairs), an odd last output the slow way, one requantisation each.
    g = a["geom"]
    c, oh, ow = g["in_c"], g["out_h"], g["out_w"]
    # the plane covers exactly the rows / columns some output tap reads (te_depthwise_inplace_s8)
    ph = (oh - 1) * g["stride_h"] + g["k_h"]
    pw = (ow - 1) * g["stride_w"] + g["k_w"]
    if (g["k_h"], g["k_w"], g["stride_h"], g["stride_w"]) == (3, 3, 1, 1) and 2 <= ow <= 24:
        # the DSP path's flat sweeps (te_depthwise.c, dw_flat_k3s1): every row, in sweeps of
        # 130 // (ow + 2) rows, 2 dropped outputs per row, one store call per sweep; the last sweep with
        # an odd count takes one pair more (a first pair, then pairs ending at the last output)
        pitch, per = ow + 2, 130 // (ow + 2)
        sweeps = pairs = 0
        for r0 in range(0, oh, per):
            nr = min(per, oh - r0)
            count = (nr - 1) * pitch + ow
            sweeps += 1
            pairs += 1 + count // 2 if r0 + nr == oh and count % 2 else (count + 1) // 2
        return {"pairs": c * pairs, "rest_pairs": 0, "odd": 0, "out": c * oh * ow,
                "chunks": c * sweeps, "padded_in": c * ph * pw, "channels": c}
    pairs = rest = odd = 0  # per row, over its chunks of up to 32 outputs
    for x0 in range(0, ow, 32):
        n = min(32, ow - x0)
        if g["k_h"] >= 5 and n >= 4 and n % 4 == 3:  # 5x5/7x7: three left after the quads take one more quad
            pairs += 2 * (n // 4 + 1)
        else:
            pairs, rest, odd = pairs + n // 2, rest + (n % 4) // 2, odd + n % 2
    return {"pairs": c * oh * pairs, "rest_pairs": c * oh * rest, "odd": c * oh * odd,
            "out": c * oh * ow, "chunks": c * oh * math.ceil(ow / 32), "padded_in": c * ph * pw, "channels": c}


def _dw_span(n_out, s, pad, k, n_in):
    """(valid taps summed over the outputs of one axis, outputs whose window lies inside the input)."""
    taps = inside = 0
    for o in range(n_out):
        i0 = o * s - pad
        lo, hi = max(0, -i0), min(k, n_in - i0)
        taps += max(0, hi - lo)
        inside += lo == 0 and hi == k
    return taps, inside


def _terms_dw_hwc(a):
    # te_depthwise_s8 (HWC direct, four channels per pass): the valid taps (border windows skip the
    # padding), interior outputs two at a time, border outputs one at a time with clipped loops, one
    # requantisation per output in chunks of up to 32 per channel; C % 4 channels take the scalar loop.
    g = a["geom"]
    c, oh, ow = g["in_c"], g["out_h"], g["out_w"]
    ty, iy = _dw_span(oh, g["stride_h"], g["pad_top"], g["k_h"], g["in_h"])
    tx, ix = _dw_span(ow, g["stride_w"], g["pad_left"], g["k_w"], g["in_w"])
    groups = math.ceil(c / 4)
    return {"taps": c * ty * tx, "out": c * oh * ow, "border_px": groups * (oh * ow - iy * ix),
            "chunks": groups * oh * math.ceil(ow / 32), "groups": groups, "tail_taps": (c % 4) * ty * tx}


def _dw_key(name):
    # one fit per (kernel size, stride): each has its own unrolled row function
    return lambda a: f"{name}/k{a['geom']['k_h']}s{a['geom']['stride_h']}"


# --------------------------------------------------------------------------- pointwise + residual add
PW_ADD_TABLE_BYTES = 256 * 4  # the ADD's scaling of one input as a table over its 256 byte values


def pointwise_add_scratch_bytes(in_c: int, out_c: int) -> int:
    """Mirror of ``te_pointwise_add_scratch_bytes``: two pixels widened to int16, the ADD's table, two
    pixels of projection bytes (the general path)."""
    return 2 * in_c * 2 + PW_ADD_TABLE_BYTES + 2 * out_c


def _sel_pw_add(g, op, ctx):
    f = op.attrs["fused_add"]
    where = f", written over the residual '{f['residual']}'" if ctx.inplace else ""
    return (f"1x1 projection fused with the residual add '{f['add']}': each requantised value goes straight "
            f"into the add, no '{f['mid']}' tensor ({f['saved_bytes']} B){where}")


def _terms_pw_add(a):
    # the pointwise kernel's 2 x 2 tile terms (the fused kernel has no few-input-channel path): the add stage
    # is per output (its cost goes into the 'out' coefficient), its 256-entry table per call ('call')
    return _terms_pw_tiles(a)


# --------------------------------------------------------------------------- the rest
def _pool_args(g, op):
    h, w_, c = g.tensors[op.inputs[0]].shape
    y = g.tensors[op.output].shape
    if op.kind == "global_avg_pool":
        k, s, pad, oh, ow = (h, w_), (1, 1), (0, 0, 0, 0), 1, 1
    else:
        k, s, pad = op.attrs["kernel"], op.attrs["stride"], op.attrs["padding"]
        oh, ow = y[0], y[1]
    return {"in_h": h, "in_w": w_, "c": c, "k_h": k[0], "k_w": k[1], "stride_h": s[0], "stride_w": s[1],
            "pad_top": pad[0], "pad_left": pad[2], "out_h": oh, "out_w": ow}


def _sel_pool(g, op, ctx):
    return ("global average pool = AVERAGE_POOL_2D with a full H x W kernel" if op.kind == "global_avg_pool"
            else "average pool")


def _fc_args(g, op):
    o, n = op.weight_shape
    return {"in_n": n, "out_n": o}


def _softmax_args(g, op):
    shape = g.tensors[op.inputs[0]].shape
    return {"rows": math.prod(shape) // shape[-1], "depth": shape[-1]}


def _pad_args(g, op):
    x = g.tensors[op.inputs[0]].shape
    t, b, l, r = op.attrs["padding"]
    return {"in_h": x[0], "in_w": x[1], "c": x[2], "pad_top": t, "pad_bottom": b, "pad_left": l, "pad_right": r}


SPECS: tuple[KernelSpec, ...] = (
    KernelSpec(
        "te_conv_pointwise_w16_s8", ("conv2d",),
        "NHWC pixels x in_c -> pixels x out_c; int16 weights in the 2x2 tile's order (codegen/pw_weights.py)",
        _sel_pointwise_w16,
        lambda g, op: {"n_pixels": g.tensors[op.inputs[0]].shape[0] * g.tensors[op.inputs[0]].shape[1],
                       "in_c": _cin(g, op), "out_c": g.tensors[op.output].shape[2]},
        "    if (te_conv_pointwise_w16_s8(TE_I8({{ x }}), {{ a.n_pixels }}, {{ a.in_c }}, {{ w }}, "
        "{{ a.out_c }},\n                                 &te_quant_{{ i }}, TE_I8({{ y }}), "
        "TE_I16({{ s }})) != 0) return {{ i + 1 }};",
        _terms_pointwise_w16, "int16",
        lambda g, op: 2 * _cin(g, op) * 2,  # the same two widened pixels as te_conv_pointwise_s8
        lambda g, op: f"te_pointwise_scratch_bytes({_cin(g, op)})", weights="oi16"),
    KernelSpec(
        "te_conv_pointwise_s8", ("conv2d",), "NHWC pixels x in_c -> pixels x out_c; weights (out_c, in_c)",
        _sel_pointwise,
        lambda g, op: {"n_pixels": g.tensors[op.inputs[0]].shape[0] * g.tensors[op.inputs[0]].shape[1],
                       "in_c": _cin(g, op), "out_c": g.tensors[op.output].shape[2]},
        "    te_conv_pointwise_s8(TE_I8({{ x }}), {{ a.n_pixels }}, {{ a.in_c }}, {{ w }}, "
        "{{ a.out_c }},\n                         &te_quant_{{ i }}, TE_I8({{ y }}), "
        "TE_I16({{ s }}));",
        _terms_pointwise, "int16",
        lambda g, op: 2 * _cin(g, op) * 2,  # two input pixels widened to int16 for the SIMD 2x2 tile
        lambda g, op: f"te_pointwise_scratch_bytes({_cin(g, op)})", weights="oi"),
    KernelSpec(
        "te_conv_winograd3x3_s8", ("conv2d",), "NHWC; weights pre-transformed U = G'gG'^T int32 (out_c, 4, 4, in_c)",
        _sel_winograd, _geom,
        "    if (te_conv_winograd3x3_s8(TE_I8({{ x }}), &te_geom_{{ i }}, {{ w }}, &te_quant_{{ i }},\n"
        "                               TE_I8({{ y }}), TE_I32({{ s }})) != 0) "
        "return {{ i + 1 }};",
        _terms_winograd, "int32",
        lambda g, op: winograd_scratch_bytes(_cin(g, op)),
        lambda g, op: f"te_winograd_scratch_bytes({_cin(g, op)})", weights="winograd"),
    KernelSpec(
        "te_conv_stem_s8", ("conv2d",), "NHWC, 1..4 input channels; weights OHWI rows zero-padded to a multiple "
        "of 4, widened to int16 pairs (codegen/stem.py); two int16 im2col columns in scratch",
        _sel_stem, _geom,
        "    if (te_conv_stem_s8(TE_I8({{ x }}), &te_geom_{{ i }}, {{ w }}, &te_quant_{{ i }},\n"
        "                        TE_I8({{ y }}), TE_I16({{ s }})) != 0) "
        "return {{ i + 1 }};",
        _terms_stem, "int16",
        lambda g, op: 2 * stem_k(op.attrs["kernel"][0], op.attrs["kernel"][1], _cin(g, op)) * 2,
        lambda g, op: f"te_stem_scratch_bytes({op.attrs['kernel'][0]}, {op.attrs['kernel'][1]}, {_cin(g, op)})",
        weights="stem"),
    KernelSpec(
        "te_conv_im2col_s8", ("conv2d",), "NHWC; weights OHWI; two int16 im2col columns in scratch",
        _sel_im2col, _geom,
        "    te_conv_im2col_s8(TE_I8({{ x }}), &te_geom_{{ i }}, {{ w }}, &te_quant_{{ i }},\n"
        "                      TE_I8({{ y }}), TE_I16({{ s }}));",
        _terms_im2col, "int16",
        lambda g, op: 2 * op.attrs["kernel"][0] * op.attrs["kernel"][1] * _cin(g, op) * 2,  # two int16 columns
        lambda g, op: f"te_im2col_scratch_bytes({op.attrs['kernel'][0]}, {op.attrs['kernel'][1]}, {_cin(g, op)})",
        weights="ohwi"),
    KernelSpec(
        "te_depthwise_inplace_s8", ("depthwise_conv2d",),
        "NHWC in place (output over input); weights (kH, kW, C); one padded channel in scratch",
        _sel_dw_inplace, _geom,
        "    te_depthwise_inplace_s8(TE_I8({{ y }}), &te_geom_{{ i }}, {{ w }}, &te_quant_{{ i }},\n"
        "                            TE_I8({{ s }}));",
        _terms_dw, "int8", _dw_scratch, _dw_scratch_c, _dw_key("te_depthwise_inplace_s8"), weights="hwc"),
    KernelSpec(
        "te_depthwise_s8", ("depthwise_conv2d",), "NHWC in -> NHWC out; weights (kH, kW, C)",
        _sel_dw, _geom,
        "    te_depthwise_s8(TE_I8({{ x }}), &te_geom_{{ i }}, {{ w }}, &te_quant_{{ i }},\n"
        "                    TE_I8({{ y }}));",
        _terms_dw_hwc, weights="hwc"),
    KernelSpec(
        "te_conv_pointwise_add_s8", ("conv2d_add",),
        "NHWC pixels x in_c -> pixels x out_c, plus the residual (pixels x out_c); weights (out_c, in_c)",
        _sel_pw_add,
        lambda g, op: {"n_pixels": g.tensors[op.inputs[0]].shape[0] * g.tensors[op.inputs[0]].shape[1],
                       "in_c": _cin(g, op), "out_c": g.tensors[op.output].shape[2]},
        "    te_conv_pointwise_add_s8(TE_I8({{ x }}), {{ a.n_pixels }}, {{ a.in_c }}, {{ w }}, "
        "{{ a.out_c }},\n                             &te_quant_{{ i }}, TE_I8({{ x1 }}), &te_add_{{ i }}, "
        "TE_I8({{ y }}), TE_I16({{ s }}));",
        _terms_pw_add, "int16",
        lambda g, op: pointwise_add_scratch_bytes(_cin(g, op), g.tensors[op.output].shape[2]),
        lambda g, op: f"te_pointwise_add_scratch_bytes({_cin(g, op)}, {g.tensors[op.output].shape[2]})",
        weights="oi"),
    KernelSpec(
        "te_add_s8", ("add",), "elementwise over NHWC",
        lambda g, op, ctx: "residual add (TFLM int8 ADD: left shift 20, two input and one output multiplier)",
        lambda g, op: {"n": g.tensors[op.output].nbytes},
        "    te_add_s8(TE_I8({{ x }}), TE_I8({{ x1 }}), {{ a.n }}, &te_add_{{ i }}, "
        "TE_I8({{ y }}));",
        lambda a: {"elements": a["n"]}),
    KernelSpec(
        "te_avg_pool_s8", ("global_avg_pool", "avg_pool2d"), "NHWC", _sel_pool, _pool_args,
        "    te_avg_pool_s8(TE_I8({{ x }}), {{ a.in_h }}, {{ a.in_w }}, {{ a.c }}, "
        "{{ a.k_h }}, {{ a.k_w }}, {{ a.stride_h }}, {{ a.stride_w }}, "
        "{{ a.pad_top }}, {{ a.pad_left }},\n"
        "                   {{ a.out_h }}, {{ a.out_w }}, {{ a.act_min }}, "
        "{{ a.act_max }}, TE_I8({{ y }}));",
        lambda a: {"in": a["in_h"] * a["in_w"] * a["c"], "out": a["out_h"] * a["out_w"] * a["c"]}),
    KernelSpec(
        "te_fully_connected_s8", ("fully_connected",), "vector in -> vector out; weights (out, in)",
        lambda g, op, ctx: "classifier", _fc_args,
        "    te_fully_connected_s8(TE_I8({{ x }}), {{ a.in_n }}, {{ w }}, {{ a.out_n }},\n"
        "                          &te_quant_{{ i }}, TE_I8({{ y }}));",
        lambda a: {"macs": a["in_n"] * a["out_n"], "out": a["out_n"], "in": a["in_n"]}, weights="oi"),
    # ops of imported .tflite / ONNX models (firmware/src/te_pool_softmax.c; TFLite Micro's int8 arithmetic)
    KernelSpec(
        "te_max_pool_s8", ("max_pool2d",), "NHWC", lambda g, op, ctx: "max pool (TFLM MAX_POOL_2D)", _pool_args,
        "    te_max_pool_s8(TE_I8({{ x }}), {{ a.in_h }}, {{ a.in_w }}, {{ a.c }}, "
        "{{ a.k_h }}, {{ a.k_w }}, {{ a.stride_h }}, {{ a.stride_w }}, "
        "{{ a.pad_top }}, {{ a.pad_left }},\n"
        "                   {{ a.out_h }}, {{ a.out_w }}, {{ a.act_min }}, "
        "{{ a.act_max }}, TE_I8({{ y }}));",
        lambda a: {"taps": a["out_h"] * a["out_w"] * a["c"] * a["k_h"] * a["k_w"],
                   "out": a["out_h"] * a["out_w"] * a["c"]}),
    KernelSpec(
        "te_mean_hw_s8", ("mean",), "NHWC pixels x C -> C",
        lambda g, op, ctx: "MEAN over H and W (TFLM QuantizedMeanOrSum: one multiplier with 1/(H*W) folded in)",
        lambda g, op: {"n_pixels": g.tensors[op.inputs[0]].shape[0] * g.tensors[op.inputs[0]].shape[1],
                       "c": g.tensors[op.inputs[0]].shape[2]},
        "    te_mean_hw_s8(TE_I8({{ x }}), {{ a.n_pixels }}, {{ a.c }}, {{ a.in_zp }}, "
        "{{ a.mult }}, {{ a.shift }}, {{ a.out_zp }}, TE_I8({{ y }}));",
        lambda a: {"in": a["n_pixels"] * a["c"], "out": a["c"]}),
    KernelSpec(
        "te_softmax_s8", ("softmax",), "rows x depth (last axis)",
        lambda g, op, ctx: ("softmax (TFLM int8: gemmlowp exp and reciprocal; output scale 1/256, zero point "
                            "-128)"),
        _softmax_args,
        "    te_softmax_s8(TE_I8({{ x }}), {{ a.rows }}, {{ a.depth }}, {{ a.mult }}, "
        "{{ a.left_shift }}, {{ a.diff_min }}, TE_I8({{ y }}));",
        lambda a: {"elements": a["rows"] * a["depth"], "rows": a["rows"]}),
    KernelSpec(
        "te_pad_s8", ("pad",), "NHWC", lambda g, op, ctx: "PAD of H and W with the zero point", _pad_args,
        "    te_pad_s8(TE_I8({{ x }}), {{ a.in_h }}, {{ a.in_w }}, {{ a.c }}, "
        "{{ a.pad_top }}, {{ a.pad_bottom }}, {{ a.pad_left }}, "
        "{{ a.pad_right }}, {{ a.value }}, TE_I8({{ y }}));",
        lambda a: {"in": a["in_h"] * a["in_w"] * a["c"],
                   "out": (a["in_h"] + a["pad_top"] + a["pad_bottom"]) * (a["in_w"] + a["pad_left"] + a["pad_right"])
                   * a["c"]}),
    # fused row-streamed segment (tinyengine.passes.stream): generated C loop over the static row
    # schedule, calling the row kernels of firmware/src/te_stream.c and te_conv_pointwise_s8 per row
    KernelSpec(
        "te_stream_segment", ("stream_segment",),
        "NHWC rows; intermediates in rings of rows inside the scratch; weights per member",
        lambda g, op, ctx: ("fused streaming: " + " + ".join(m.name for m in op.attrs["stream"].members)
                            + " row by row, intermediates in rings of rows"),
        lambda g, op: {"row_calls": op.attrs["stream"].row_calls},
        "{{ a.code }}",
        lambda a: {"row_calls": a["row_calls"]}, "int16",
        lambda g, op: op.attrs["stream_layout"]["bytes"],
        lambda g, op: f"((size_t){op.attrs['stream_layout']['bytes']})"),
    KernelSpec(
        "(none)", ("reshape",), "bytes unchanged",
        lambda g, op, ctx: "reshape: same bytes, new shape" if ctx.same_offset else None,
        lambda g, op: {"n": g.tensors[op.output].nbytes},
        "    /* nothing to do: {{ kernel }} */",
        lambda a: {"bytes": a.get("n", 0)}),
    KernelSpec(
        "memmove", ("reshape",), "bytes unchanged",
        lambda g, op, ctx: "reshape: same bytes, new shape",
        lambda g, op: {"n": g.tensors[op.output].nbytes},
        "    memmove(TE_I8({{ y }}), TE_I8({{ x }}), {{ a.n }});",
        lambda a: {"bytes": a.get("n", 0)}),
)

BY_NAME: dict[str, KernelSpec] = {s.name: s for s in SPECS}
SUPPORTED_KINDS: tuple[str, ...] = tuple(dict.fromkeys(k for s in SPECS for k in s.kinds))


def spec(name: str) -> KernelSpec:
    """The spec of the C kernel ``name`` (LoweringError naming the known ones if there is none)."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise LoweringError(f"no kernel '{name}' in the registry (known: {', '.join(BY_NAME)})") from None


def select(g: Graph, op: Op, ctx: Context) -> tuple[KernelSpec, str]:
    """The first kernel in registry order that takes ``op``, with its reason."""
    for s in SPECS:
        if op.kind in s.kinds:
            reason = s.select(g, op, ctx)
            if reason is not None:
                return s, reason
    raise LoweringError(f"codegen: op '{op.name}' ({op.kind}) has no C kernel "
                        f"(supported: {', '.join(SUPPORTED_KINDS)})")


def planned_scratch_bytes(g: Graph, op: Op, inplace: bool) -> int:
    """Scratch the memory planner reserves for ``op``: what the kernel chosen without --winograd needs
    (Winograd then fits in the im2col reservation or is not chosen)."""
    if op.kind not in SUPPORTED_KINDS:
        return 0  # an op no C kernel takes: analysis still plans it, lowering refuses it by name
    s, _ = select(g, op, Context(inplace=inplace))
    return s.scratch(g, op) if s.scratch else 0


def latency_terms(kernel: str, args: dict) -> tuple[str, dict[str, float]]:
    """(fit key, terms) of one lowered call: what the latency model regresses on."""
    s = spec(kernel)
    terms = dict(s.terms(args))
    terms["call"] = 1
    return s.latency_key(args), terms
