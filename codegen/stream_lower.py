"""Lowering of a fused streaming segment (``tinyengine.passes.stream``) to C: a loop over the static row
schedule that calls one row kernel per step.

The segment's scratch (planned by the memory planner) holds one ring of rows per intermediate tensor
and the member kernels' work area, at ``attrs['stream_layout']``'s offsets from the scratch's start.
Row ``r`` of a ring with ``R`` rows lives in slot ``r % R``; rows of the external inputs and of the
output are read and written in place in their whole tensors at the plan's offsets. Per step:

* pointwise conv (1x1, stride 1): ``te_conv_pointwise_s8`` over the W pixels of one row;
* any other conv (the first member only; it reads a whole tensor): ``te_conv_im2col_s8`` on the input
  rows of its window, with ``in_h`` the rows inside the input, ``pad_top`` the padding rows above them
  and ``out_h`` 1 (its taps outside the window's rows count as padding, as in the whole-tensor call);
* depthwise: ``te_depthwise_row_s8`` (firmware/src/te_stream.c) with one pointer per kernel row (NULL
  above the top and below the bottom);
* add: ``te_add_s8`` over one row (the output may be written over the row it reads).
"""
from __future__ import annotations

import numpy as np

from tinyengine.ir.graph import Graph, Op
from tinyengine.ir.stream import Schedule
from tinyengine.numerics.kernels_ref import add_params
from tinyengine.passes.stream import is_general_conv
from tinyml_errors import LoweringError


def bind_segment(plan, op: Op, cname: str, lo) -> None:
    """Fill ``lo`` (a LoweredOp of kind stream_segment): every member's weight arrays and the C code."""
    from codegen.emit import _add_init
    from codegen.lower import CArray, _bias_mult_shift, _check_quantised

    g: Graph = plan.graph
    t = g.tensors
    sch: Schedule = op.attrs["stream"]
    lay = op.attrs["stream_layout"]
    if lo.scratch_offset is None:
        raise LoweringError(f"codegen: segment '{op.name}' has no scratch for its rings")
    base = lo.scratch_offset
    off = plan.tensor_offset
    work = base + lay["work"]

    def row(name: str, r: str) -> str:
        h, w, c = t[name].shape
        if name in sch.rings:
            return f"TE_I8({base + lay['rings'][name]} + (({r}) % {sch.rings[name]}) * {w * c})"
        return f"TE_I8({off[name]} + ({r}) * {w * c})"

    arrays: list = []
    decl: list[str] = []
    cases: list[str] = []
    for k, m in enumerate(sch.members):
        _check_quantised(g, m)
        mn = f"{cname}_m{k}"
        x, y = t[m.inputs[0]], t[m.output]
        act = (int(m.attrs.get("act_min", -128)), int(m.attrs.get("act_max", 127)))
        if m.weight_shape is not None:
            w = m.params["weight"]
            gen = is_general_conv(m)
            wv = w.reshape(w.shape[0], -1) if (m.kind == "conv2d" and not gen) else w
            arrays.append(CArray(f"{mn}_w", "int8_t", np.asarray(wv)))
            arrays += _bias_mult_shift(m, mn)
            decl.append(f"        static const te_quant_t q{k} = {{ {mn}_mult, {mn}_shift, {int(x.zero_point)}, "
                        f"{int(y.zero_point)}, {act[0]}, {act[1]} }};")
        h_in, w_in, c_in = x.shape
        _, w_out, c_out = y.shape
        body = f"/* {m.name} */ "
        if m.kind == "add":
            b = t[m.inputs[1]]
            ap = add_params(x.scale, b.scale, y.scale)
            p = {"a_zp": x.zero_point, "b_zp": b.zero_point, "out_zp": y.zero_point,
                 "a_mult": ap.input1_multiplier, "a_shift": ap.input1_shift, "b_mult": ap.input2_multiplier,
                 "b_shift": ap.input2_shift, "out_mult": ap.output_multiplier, "out_shift": ap.output_shift,
                 "left_shift": ap.left_shift, "act_min": act[0], "act_max": act[1]}
            decl.append(f"        static const te_add_params_t a{k} = {{ {_add_init(p)} }};")
            body += (f"te_add_s8({row(m.inputs[0], 'y')}, {row(m.inputs[1], 'y')}, {w_out * c_out}, &a{k}, "
                     f"{row(m.output, 'y')});")
        elif m.kind == "conv2d" and not is_general_conv(m):
            body += (f"te_conv_pointwise_s8({row(m.inputs[0], 'y')}, {w_in}, {c_in}, {mn}_w, {mn}_bias, "
                     f"{c_out}, &q{k}, {row(m.output, 'y')}, TE_I16({work}));")
        elif m.kind == "conv2d":
            if m.inputs[0] in sch.rings:
                raise LoweringError(f"codegen: segment '{op.name}': general conv '{m.name}' must read a whole "
                                    "tensor (only a segment's first op may be a k>1 or strided conv)")
            (kh, kw), (sh, sw), pad = m.attrs["kernel"], m.attrs["stride"], m.attrs["padding"]
            body += ("{ te_conv_geom_t gg; const int a = y * %d - %d; const int lo = a < 0 ? 0 : a; "
                     "const int hi = a + %d > %d ? %d : a + %d; "
                     "gg.in_h = (int16_t)(hi - lo); gg.in_w = %d; gg.in_c = %d; gg.out_h = 1; gg.out_w = %d; "
                     "gg.out_c = %d; gg.k_h = %d; gg.k_w = %d; gg.stride_h = %d; gg.stride_w = %d; "
                     "gg.pad_top = (int8_t)(lo - a); gg.pad_left = %d; "
                     "te_conv_im2col_s8(TE_I8(%d + lo * %d), &gg, %s_w, %s_bias, &q%d, %s, TE_I16(%d)); }"
                     % (sh, pad[0], kh, h_in, h_in, kh, w_in, c_in, w_out, c_out, kh, kw, sh, sw, pad[2],
                        off[m.inputs[0]], w_in * c_in, mn, mn, k, row(m.output, "y"), work))
        elif m.kind == "depthwise_conv2d":
            (kh, kw), (sh, sw), pad = m.attrs["kernel"], m.attrs["stride"], m.attrs["padding"]
            body += ("{ const int8_t *rp[%d]; const int a = y * %d - %d; int i; "
                     "for (i = 0; i < %d; i++) rp[i] = (a + i < 0 || a + i >= %d) ? NULL : %s; "
                     "te_depthwise_row_s8(rp, %d, %d, %d, %d, %d, %d, %d, %s_w, %s_bias, &q%d, %s, TE_I32(%d)); }"
                     % (kh, sh, pad[0], kh, h_in, row(m.inputs[0], "a + i"), kh, kw, w_in, c_in, sw, pad[2],
                        w_out, mn, mn, k, row(m.output, "y"), work))
        else:
            raise LoweringError(f"codegen: segment '{op.name}': op '{m.name}' ({m.kind}) cannot stream")
        cases.append(f"            case {k}: {body} break;")
    ev = ",".join(map(str, sch.events))
    etype = "uint8_t" if len(sch.members) < 256 else "uint16_t"
    code = "\n".join([
        f"    {{ /* fused streaming: {len(sch.events)} row steps over {len(sch.members)} ops; rings at "
        f"{base}.., work at {work} */",
        f"        static const {etype} ev[{len(sch.events)}] = {{ {ev} }};",
        *decl,
        f"        int rows[{len(sch.members)}] = {{ 0 }};",
        "        int e;",
        f"        for (e = 0; e < {len(sch.events)}; e++) {{",
        "            const int y = rows[ev[e]]++;",
        "            switch (ev[e]) {",
        *cases,
        "            default: break;",
        "            }",
        "        }",
        "    }"])
    lo.arrays = arrays
    lo.args = dict(lo.args, code=code)
