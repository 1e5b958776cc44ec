"""Render a :class:`~codegen.lower.Lowering` to C text with the jinja2 templates in ``templates/``."""
from __future__ import annotations

import json
import re
import zlib
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import jinja2
import numpy as np

from codegen.lower import CArray, LoweredOp, Lowering
from codegen.specialize import call as specialised_call

TEMPLATES = Path(str(files("codegen") / "templates"))
_INT32_MIN = -(1 << 31)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    env.globals.update(geom=_geom_init, quant=_quant_init, addp=_add_init)
    return env


def c_float(v: float) -> str:
    """A C float literal (without the f suffix) that reads back as the same float32."""
    s = f"{float(np.float32(v)):.9g}"
    return s if ("." in s or "e" in s) else s + ".0"


def c_array_body(a: CArray, per_line: int | None = None) -> str:
    """Values, comma-separated, a fixed count per line (compact: no padding)."""
    vals = np.asarray(a.values).reshape(-1).astype(np.int64)
    if a.ctype == "int32_t":
        per_line = per_line or 12
        items = ["(-2147483647-1)" if v == _INT32_MIN else str(v) for v in vals.tolist()]
    else:
        per_line = per_line or 32
        items = list(map(str, vals.tolist()))
    lines = [",".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n".join(lines)


def _geom_init(g: dict) -> str:
    keys = ("in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "k_h", "k_w", "stride_h", "stride_w",
            "pad_top", "pad_left")
    return ", ".join(str(int(g[k])) for k in keys)


def _quant_init(q: dict) -> str:
    return f"{q['mult']}, {q['shift']}, {q['in_zp']}, {q['out_zp']}, {q['act_min']}, {q['act_max']}"


def _c_int32(v: int) -> str:
    return "(-2147483647-1)" if int(v) == _INT32_MIN else str(int(v))


def _add_init(p: dict) -> str:
    keys = ("a_zp", "b_zp", "out_zp", "a_mult", "a_shift", "b_mult", "b_shift", "out_mult", "out_shift",
            "left_shift", "act_min", "act_max")
    return ", ".join(_c_int32(p[k]) for k in keys)


def _shape(s) -> str:
    return "x".join(map(str, s))


def _op_view(o: LoweredOp, low: Lowering) -> dict:
    """What the templates show for one op: the LoweredOp plus human-readable notes."""
    g = low.graph
    op = g.ops[o.index]
    if op.kind in ("conv2d", "depthwise_conv2d"):
        kh, kw = op.attrs["kernel"]
        sh, _ = op.attrs["stride"]
        what = f"{op.kind} {kh}x{kw}/s{sh}"
    else:
        what = op.kind
    describe = f"{what}, {' + '.join(_shape(s) for s in o.in_shapes)} -> {_shape(o.out_shape)}, {o.macs} MACs"
    if o.scratch_offset is not None:
        note = f"{o.scratch_bytes} B {o.scratch_type} @ {o.scratch_offset}"
        if o.scratch_nudge:
            note += f" (plan {o.scratch_offset - o.scratch_nudge}, aligned)"
    elif o.scratch_bytes:
        note = f"{o.scratch_bytes} B reserved, unused"
    else:
        note = "-"
    ins = ", ".join(f"'{n}' @ {off}" for n, off in o.inputs)
    buffers = f"in {ins}; out '{o.output[0]}' @ {o.output[1]} ({o.out_bytes} B)"
    if o.inplace_of:
        buffers += f", in place over '{o.inplace_of}'"
    if o.scratch_offset is not None:
        buffers += f"; scratch {note}"
    d = dict(o.__dict__)
    d.update(describe=describe, scratch_note=note, buffers=buffers)
    d["call"] = specialised_call(o, _call(o.spec.call, d))
    return d


@lru_cache(maxsize=64)
def _call_template(snippet: str) -> jinja2.Template:
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False).from_string(snippet)


def _call(snippet: str, view: dict) -> str:
    """The kernel's C call for one op: its registry snippet, with the names the registry's snippets use."""
    ins, arrays = view["inputs"], view["arrays"]
    return _call_template(snippet).render(
        x=ins[0][1], x1=ins[1][1] if len(ins) > 1 else None, y=view["output"][1], s=view["scratch_offset"],
        w=", ".join(arr.name for arr in arrays[:2]), i=view["index"], a=view["args"], kernel=view["kernel"])


def _guard(name: str, what: str) -> str:
    return "TE_" + re.sub(r"[^0-9A-Za-z]", "_", name).upper() + "_" + what


def model_context(low: Lowering) -> dict:
    g = low.graph
    inp, out = g.tensors[low.input[0]], g.tensors[low.output[0]]
    return {
        "name": low.name, "ops": [_op_view(o, low) for o in low.ops], "n_ops": len(low.ops),
        "input_shape": inp.shape, "output_shape": out.shape, "in_dtype": "int8",
        "input_bytes": inp.nbytes, "output_bytes": out.nbytes,
        "input_scale": c_float(inp.scale), "input_zp": int(inp.zero_point),
        "output_scale": c_float(out.scale), "output_zp": int(out.zero_point),
        "arena_bytes": low.arena_bytes, "input_offset": low.input[1], "output_offset": low.output[1],
        "weight_bytes": low.weight_bytes, "macs": low.macs, "strategy": low.plan.strategy,
        "lower_bound": low.plan.lower_bound, "winograd": low.winograd, "model_hash": model_hash(low),
        "specialised": any(o.specialisation is not None and o.specialisation.specialised for o in low.ops),
    }


MODEL_HASH_TAG = "tinyengine-model-hash-v1"


def model_hash_text(low: Lowering) -> str:
    """The text part of the model hash (firmware/PROTOCOL.md, "Model hash"): one line for the model, then
    one per layer in schedule order with its kernel, layout, buffers and call arguments."""
    g = low.graph
    inp, out = g.tensors[low.input[0]], g.tensors[low.output[0]]
    lines = [f"{MODEL_HASH_TAG} {low.name} in={_shape(inp.shape)} {c_float(inp.scale)} {int(inp.zero_point)} "
             f"out={_shape(out.shape)} {c_float(out.scale)} {int(out.zero_point)} arena={low.arena_bytes} "
             f"input@{low.input[1]} output@{low.output[1]} layers={len(low.ops)}"]
    for o in low.ops:
        ins = ",".join(f"{t}@{off}:{_shape(s)}" for (t, off), s in zip(o.inputs, o.in_shapes))
        args = json.dumps(o.args, sort_keys=True, separators=(",", ":"), default=int)
        lines.append(f"{o.index} {o.name} {o.kernel} {o.layout} in={ins} out={o.output[0]}@{o.output[1]}:"
                     f"{_shape(o.out_shape)} scratch={o.scratch_offset}:{o.scratch_bytes} args={args}")
    return "\n".join(lines) + "\n"


def model_hash(low: Lowering) -> int:
    """CRC32 (zlib) of :func:`model_hash_text` (UTF-8) followed, for every weight array in schedule order,
    by its values as little-endian int8/int32 bytes; the generated model.h's ``TE_MODEL_HASH`` and the
    INFO response carry it, so the probe can tell which model a board runs."""
    crc = zlib.crc32(model_hash_text(low).encode("utf-8"))
    for o in low.ops:
        for a in o.arrays:
            dt = "<i1" if a.ctype == "int8_t" else "<i4"
            crc = zlib.crc32(np.ascontiguousarray(np.asarray(a.values).reshape(-1).astype(dt)).tobytes(), crc)
    return crc & 0xFFFFFFFF


def render_model(low: Lowering) -> dict[str, str]:
    """File name -> text: model.h, model.c, weights.h, weights.c, host_main.c."""
    env = environment()
    ctx = model_context(low)
    arrays = []
    for o in low.ops:
        for a in o.arrays:
            arrays.append({"name": a.name, "ctype": a.ctype, "size": int(a.values.size),
                           "comment": f"{o.name}: {a.name.rsplit('_', 1)[-1]} "
                                      f"{'x'.join(map(str, a.values.shape))} {a.ctype} for {o.kernel}",
                           "body": c_array_body(a)})
    wctx = {"name": low.name, "arrays": arrays, "total_bytes": low.weight_bytes}
    return {
        "model.h": env.get_template("model.h.j2").render(guard=_guard(low.name, "MODEL_H"), **ctx),
        "model.c": env.get_template("model.c.j2").render(**ctx),
        "weights.h": env.get_template("weights.h.j2").render(guard=_guard(low.name, "WEIGHTS_H"), **wctx),
        "weights.c": env.get_template("weights.c.j2").render(**wctx),
        "host_main.c": env.get_template("host_main.c.j2").render(**ctx),
    }
