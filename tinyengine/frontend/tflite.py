"""Import an int8 ``.tflite`` (TensorFlow's ``TFLiteConverter`` with full-integer quantisation) into the
engine's graph IR, already quantised: the same planner, reference, codegen and firmware path as our own
models, and the same bytes as TFLite Micro's interpreter.

The flatbuffer is read with the schema classes the ``tflite-micro`` wheel ships (``schema_py_generated``,
the flatc-generated object API over the ``flatbuffers`` runtime), not by hand. One subgraph, batch 1,
NHWC. Op mapping (``SUPPORTED``):

===================== ======================================================================
TFLite                engine op
===================== ======================================================================
CONV_2D               conv2d (OHWI int8 weights, per-channel scales; SAME/VALID, any k/stride)
DEPTHWISE_CONV_2D     depthwise_conv2d (depth multiplier 1 only)
FULLY_CONNECTED       fully_connected (per-tensor or per-channel weights)
ADD                   add (same shapes; no broadcasting)
AVERAGE_POOL_2D       avg_pool2d (same scale and zero point in and out)
MAX_POOL_2D           max_pool2d
MEAN                  mean (over H and W of a 4-D tensor)
RESHAPE               reshape (the static output shape)
SOFTMAX               softmax (TFLM int8 arithmetic; output scale 1/256, zero point -128)
PAD                   pad (H and W only, with the zero point)
QUANTIZE/DEQUANTIZE   dropped at the model's edges: the graph takes and returns the int8 tensors
SHAPE, STRIDED_SLICE, folded: the shape chain Keras' Flatten leaves for a dynamic batch only feeds
PACK, CONCATENATION   RESHAPE's shape input, and RESHAPE keeps its static output shape
===================== ======================================================================

Fused RELU / RELU6 / RELU_N1_TO_1 become the clamp ``[act_min, act_max]`` TFLite derives from the
output quantisation (``requant.activation_range``). Anything else gets one ModelImportError line naming
the op, its index and output tensor, and the supported list.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tinyengine.ir.graph import Graph, Op, Tensor
from tinyengine.numerics.kernels_ref import same_padding
from tinyengine.numerics.requant import activation_range, effective_scales, quantize_multipliers
from tinyml_errors import ModelImportError

SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "AVERAGE_POOL_2D", "MAX_POOL_2D",
             "MEAN", "RESHAPE", "SOFTMAX", "PAD", "QUANTIZE", "DEQUANTIZE")
SHAPE_OPS = ("SHAPE", "STRIDED_SLICE", "PACK", "CONCATENATION", "CAST")
_ACT = {0: None, 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}
_ACT_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


def _schema():
    try:
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModelImportError("reading .tflite needs the PyPI packages 'tflite-micro' and 'flatbuffers' "
                               f"(pip install tflite-micro): {e}") from None
    return fb


def graph_tensor_name(tflite_name: str) -> str:
    """The graph's name for a .tflite tensor: characters safe in C strings and comments kept, others '_'."""
    return re.sub(r"[^0-9A-Za-z_.:/-]", "_", tflite_name)[:200]


def _name(v) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v or "")


class _Reader:
    """Walks one subgraph of a parsed ModelT and builds the Graph."""

    def __init__(self, data: bytes, where: str):
        fb = self.fb = _schema()
        self.where = where
        self.raw = data
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise ModelImportError(f"{where}: not a TFLite flatbuffer (file identifier 'TFL3' missing at "
                                   "bytes 4..8; is it a .tflite file?)")
        try:
            self.m = fb.ModelT.InitFromPackedBuf(data, 0)
        except Exception as e:  # noqa: BLE001 - any parse failure means a corrupt/truncated file
            raise ModelImportError(f"{where}: corrupt or truncated .tflite ({len(data)} B; the flatbuffer "
                                   f"does not parse: {type(e).__name__})") from None
        if not self.m.subgraphs:
            raise ModelImportError(f"{where}: the model has no subgraph")
        if len(self.m.subgraphs) > 1:
            raise ModelImportError(f"{where}: {len(self.m.subgraphs)} subgraphs (control flow); one is supported")
        self.sg = self.m.subgraphs[0]
        self.op_names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
        self.type_names = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
        self.tensors = self.sg.tensors or []
        self.producer: dict[int, int] = {}
        for i, op in enumerate(self.sg.operators or []):
            for t in (op.outputs if op.outputs is not None else []):
                self.producer[int(t)] = i
        self.g = Graph(Path(where).stem, {}, [], [], [])
        self.alias: dict[int, int] = {}   # tensor index -> the tensor that stands for it (dropped edge ops)
        self.tname: dict[int, str] = {}
        self._used_names: set[str] = set()

    # ---- tensors
    def code(self, op) -> str:
        try:
            oc = self.m.operatorCodes[op.opcodeIndex]
        except (IndexError, TypeError):
            raise ModelImportError(f"{self.where}: operator code {op.opcodeIndex} is missing (corrupt file)") from None
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
        if code == self.fb.BuiltinOperator.CUSTOM:
            return f"CUSTOM({_name(oc.customCode)})"
        return self.op_names.get(code, f"builtin {code}")

    def t(self, idx: int):
        try:
            return self.tensors[int(idx)]
        except (IndexError, TypeError):
            raise ModelImportError(f"{self.where}: tensor index {idx} is out of range (corrupt file)") from None

    def ttype(self, idx: int) -> str:
        return self.type_names.get(self.t(idx).type, str(self.t(idx).type))

    def shape(self, idx: int) -> tuple[int, ...]:
        s = tuple(int(d) for d in (self.t(idx).shape if self.t(idx).shape is not None else ()))
        if len(s) >= 2 and s[0] == 1:
            s = s[1:]  # batch 1 dropped: (H, W, C) activations, (C,) vectors
        return s

    def data(self, idx: int) -> np.ndarray | None:
        t = self.t(idx)
        try:
            buf = self.m.buffers[t.buffer]
        except (IndexError, TypeError):
            raise ModelImportError(f"{self.where}: tensor {idx} '{_name(t.name)}' points at buffer {t.buffer}, "
                                   "which does not exist (corrupt file)") from None
        if buf.data is not None and len(buf.data):
            raw = np.asarray(buf.data, dtype=np.uint8).tobytes()
        elif getattr(buf, "offset", 0) and buf.offset > 1:
            raw = self.raw[buf.offset:buf.offset + buf.size]
            if len(raw) != buf.size:
                raise ModelImportError(f"{self.where}: buffer of tensor '{_name(t.name)}' lies past the end of "
                                       "the file (truncated)")
        else:
            return None
        dt = {"INT8": np.int8, "INT32": np.int32, "FLOAT32": np.float32, "INT64": np.int64,
              "UINT8": np.uint8, "INT16": np.int16}.get(self.ttype(idx))
        if dt is None:
            raise ModelImportError(f"{self.where}: constant tensor '{_name(t.name)}' has type {self.ttype(idx)}")
        full = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        n = int(np.prod(full)) if full else 1
        if len(raw) != n * np.dtype(dt).itemsize:
            raise ModelImportError(f"{self.where}: constant tensor '{_name(t.name)}' has {len(raw)} B for shape "
                                   f"{full} {self.ttype(idx)} (corrupt file)")
        return np.frombuffer(raw, dtype=dt).reshape(full).copy()

    def qparams(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        q = self.t(idx).quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else np.zeros(len(q.scale)), dtype=np.int64)
        return np.asarray(q.scale, dtype=np.float32), zp

    def act(self, idx: int, where: str) -> str:
        """The graph tensor for activation ``idx`` (created on first use, int8 per-tensor quantised)."""
        idx = self.alias.get(int(idx), int(idx))
        if idx in self.tname:
            return self.tname[idx]
        if self.ttype(idx) != "INT8":
            raise ModelImportError(f"{where}: tensor '{_name(self.t(idx).name)}' is {self.ttype(idx)}; only "
                                   "int8 activations are supported (convert with full-integer quantisation, "
                                   "inference_input_type/inference_output_type int8)")
        s, z = self.qparams(idx)
        if len(s) != 1:
            raise ModelImportError(f"{where}: activation '{_name(self.t(idx).name)}' has {len(s)} scales; "
                                   "per-tensor quantisation is required")
        base = graph_tensor_name(_name(self.t(idx).name)) or f"t{idx}"
        name, k = base, 1
        while name in self._used_names:
            k += 1
            name = f"{base}#{k}"
        self._used_names.add(name)
        self.g.tensors[name] = Tensor(name, self.shape(idx), 1, float(s[0]), int(z[0]))
        self.tname[idx] = name
        return name

    # ---- the walk
    def shape_only(self) -> set[int]:
        """Operators that only compute RESHAPE's shape input (folded: RESHAPE keeps its static shape)."""
        ops = self.sg.operators or []
        todo = [int(op.inputs[1]) for op in ops if self.code(op) == "RESHAPE" and op.inputs is not None
                and len(op.inputs) > 1 and int(op.inputs[1]) >= 0]
        drop, seen = set(), set()
        while todo:
            t = todo.pop()
            if t in seen or t not in self.producer:
                continue
            seen.add(t)
            i = self.producer[t]
            if self.code(ops[i]) in SHAPE_OPS:
                drop.add(i)
                todo += [int(x) for x in ops[i].inputs if int(x) >= 0]
        return drop

    def build(self) -> Graph:
        sg = self.sg
        ins = [int(i) for i in (sg.inputs if sg.inputs is not None else [])]
        outs = [int(i) for i in (sg.outputs if sg.outputs is not None else [])]
        if len(ins) != 1 or len(outs) != 1:
            raise ModelImportError(f"{self.where}: {len(ins)} inputs and {len(outs)} outputs; one of each is supported")
        ops = sg.operators or []
        drop = self.shape_only()
        # QUANTIZE of the float input / DEQUANTIZE to the float output: the graph keeps the int8 side.
        for i, op in enumerate(ops):
            c = self.code(op)
            if c == "QUANTIZE" and int(op.inputs[0]) == ins[0] and self.ttype(ins[0]) == "FLOAT32":
                ins[0] = int(op.outputs[0])
                drop.add(i)
            elif c == "DEQUANTIZE" and int(op.outputs[0]) == outs[0]:
                outs[0] = int(op.inputs[0])
                drop.add(i)
        self.g.inputs.append(self.act(ins[0], f"{self.where}: model input"))
        first_conv = True
        for i, op in enumerate(ops):
            if i in drop:
                continue
            code = self.code(op)
            where = f"{self.where}: op {i} ({code}"
            outs_i = [int(x) for x in (op.outputs if op.outputs is not None else [])]
            oname = _name(self.t(outs_i[0]).name) if outs_i else ""
            where += f", output '{oname[:60]}{'...' if len(oname) > 60 else ''}')" if outs_i else ")"
            if code not in SUPPORTED:
                extra = " (here it computes a value other than RESHAPE's shape)" if code in SHAPE_OPS else ""
                raise ModelImportError(f"{where} is not supported{extra}; supported ops: {', '.join(SUPPORTED)}")
            handler = getattr(self, f"_op_{code.lower()}")
            new = handler(op, where, i)
            if new.kind == "conv2d" and first_conv:
                new.role, first_conv = "stem", False
            self.g.ops.append(new)
        self.g.outputs.append(self.act(outs[0], f"{self.where}: model output"))
        try:
            self.g.validate()
        except ValueError as e:
            raise ModelImportError(f"{self.where}: {e}") from None
        return self.g

    # ---- helpers for the handlers
    def _inputs(self, op, n_min: int, where: str) -> list[int]:
        ins = [int(x) for x in (op.inputs if op.inputs is not None else [])]
        if len(ins) < n_min:
            raise ModelImportError(f"{where}: {len(ins)} inputs, expected at least {n_min} (corrupt file)")
        return ins

    def _opts(self, op, cls: str, where: str):
        o = op.builtinOptions
        if o is None or type(o).__name__ != cls:
            raise ModelImportError(f"{where}: builtin options {type(o).__name__} where {cls} was expected")
        return o

    def _fused(self, opts, where: str, out: str) -> tuple[str | None, int, int]:
        f = int(getattr(opts, "fusedActivationFunction", 0))
        if f not in _ACT:
            raise ModelImportError(f"{where}: fused activation {_ACT_NAMES.get(f, f)} is not supported "
                                   "(supported: NONE, RELU, RELU6, RELU_N1_TO_1)")
        t = self.g.tensors[out]
        lo, hi = activation_range(_ACT[f], t.scale, t.zero_point)
        return _ACT[f], lo, hi

    def _padding(self, opts, in_hw, k, s, where: str) -> tuple[int, int, int, int]:
        p = int(opts.padding)
        if p == self.fb.Padding.SAME:
            return same_padding(in_hw, k, s)
        if p == self.fb.Padding.VALID:
            return (0, 0, 0, 0)
        raise ModelImportError(f"{where}: padding {p} is not SAME or VALID")

    def _weights(self, idx: int, where: str, axis: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        w = self.data(idx)
        if w is None or w.dtype != np.int8:
            raise ModelImportError(f"{where}: weights '{_name(self.t(idx).name)}' are not a constant int8 "
                                   f"tensor ({self.ttype(idx)}); only full-integer int8 models are supported")
        s, z = self.qparams(idx)
        if len(s) not in (1, n_out) or np.any(z != 0):
            raise ModelImportError(f"{where}: weights must be symmetric (zero point 0), per tensor or per "
                                   f"output channel ({len(s)} scales for {n_out} channels)")
        return w, np.broadcast_to(s, (n_out,)).astype(np.float32).copy()

    def _bias(self, ins: list[int], k: int, n: int, where: str) -> np.ndarray:
        if len(ins) <= k or ins[k] < 0:
            return np.zeros(n, np.int32)
        b = self.data(ins[k])
        if b is None or b.dtype != np.int32 or b.size != n:
            raise ModelImportError(f"{where}: bias '{_name(self.t(ins[k]).name)}' must be a constant int32 "
                                   f"vector of {n} ({self.ttype(ins[k])})")
        return b.reshape(n).astype(np.int32)

    def _requant(self, x: str, out: str, s_w: np.ndarray) -> dict:
        t = self.g.tensors
        mult, shift = quantize_multipliers(effective_scales(t[x].scale, s_w, t[out].scale))
        return {"mult": mult.astype(np.int32), "shift": shift.astype(np.int32), "weight_scale": s_w}

    def _same_q(self, a: str, b: str, where: str, what: str) -> None:
        ta, tb = self.g.tensors[a], self.g.tensors[b]
        if np.float32(ta.scale) != np.float32(tb.scale) or ta.zero_point != tb.zero_point:
            raise ModelImportError(f"{where}: {what} needs the same scale and zero point in and out "
                                   f"(in {ta.scale:g}/{ta.zero_point}, out {tb.scale:g}/{tb.zero_point})")

    # ---- handlers (one per builtin)
    def _conv(self, op, where: str, i: int, depthwise: bool) -> Op:
        ins = self._inputs(op, 2, where)
        x = self.act(ins[0], where)
        out = self.act(op.outputs[0], where)
        xs, ys = self.g.tensors[x].shape, self.g.tensors[out].shape
        if len(xs) != 3 or len(ys) != 3:
            raise ModelImportError(f"{where}: input {xs} / output {ys} are not (1, H, W, C) tensors")
        o = self._opts(op, "DepthwiseConv2DOptionsT" if depthwise else "Conv2DOptionsT", where)
        if int(o.dilationHFactor) != 1 or int(o.dilationWFactor) != 1:
            raise ModelImportError(f"{where}: dilation {o.dilationHFactor}x{o.dilationWFactor} is not "
                                   "supported (only 1)")
        if depthwise:
            if int(o.depthMultiplier) != 1 or ys[2] != xs[2]:
                raise ModelImportError(f"{where}: depth multiplier {o.depthMultiplier} ({xs[2]} -> {ys[2]} "
                                       "channels) is not supported (only 1)")
            w, s_w = self._weights(ins[1], where, 3, ys[2])
            if w.ndim != 4 or w.shape[0] != 1 or w.shape[3] != xs[2]:
                raise ModelImportError(f"{where}: depthwise weights {w.shape}, expected (1, kH, kW, {xs[2]})")
            w = w[0]
            k = w.shape[:2]
            wshape = tuple(w.shape)
        else:
            w, s_w = self._weights(ins[1], where, 0, ys[2])
            if w.ndim != 4 or w.shape[0] != ys[2] or w.shape[3] != xs[2]:
                raise ModelImportError(f"{where}: weights {w.shape}, expected ({ys[2]}, kH, kW, {xs[2]}) "
                                       "(grouped convolution is not supported)")
            k = w.shape[1:3]
            wshape = tuple(w.shape)
        s = (int(o.strideH), int(o.strideW))
        pad = self._padding(o, xs[:2], k, s, where)
        if ((xs[0] + pad[0] + pad[1] - k[0]) // s[0] + 1, (xs[1] + pad[2] + pad[3] - k[1]) // s[1] + 1) != ys[:2]:
            raise ModelImportError(f"{where}: output {ys[:2]} does not follow from input {xs[:2]}, kernel {k}, "
                                   f"stride {s}, padding {pad}")
        act, lo, hi = self._fused(o, where, out)
        params = {"weight": np.ascontiguousarray(w), "bias": self._bias(ins, 2, ys[2], where),
                  **self._requant(x, out, s_w)}
        attrs = {"kernel": (int(k[0]), int(k[1])), "stride": s, "padding": pad, "activation": act,
                 "weight_shape": tuple(int(d) for d in wshape), "bias": True, "act_min": lo, "act_max": hi}
        kind = "depthwise_conv2d" if depthwise else "conv2d"
        return Op(f"op{i}_{kind}", kind, (x,), out, attrs, "depthwise" if depthwise else "conv", None, params)

    def _op_conv_2d(self, op, where, i):
        return self._conv(op, where, i, False)

    def _op_depthwise_conv_2d(self, op, where, i):
        return self._conv(op, where, i, True)

    def _op_fully_connected(self, op, where, i):
        ins = self._inputs(op, 2, where)
        x = self.act(ins[0], where)
        out = self.act(op.outputs[0], where)
        o = self._opts(op, "FullyConnectedOptionsT", where)
        if int(getattr(o, "weightsFormat", 0)) != 0:
            raise ModelImportError(f"{where}: weights format {o.weightsFormat} is not supported (only DEFAULT)")
        n_out = int(np.prod(self.g.tensors[out].shape))
        w, s_w = self._weights(ins[1], where, 0, n_out)
        n_in = int(np.prod(self.g.tensors[x].shape))
        if w.shape != (n_out, n_in):
            raise ModelImportError(f"{where}: weights {w.shape}, expected ({n_out}, {n_in}) for a batch-1 input")
        act, lo, hi = self._fused(o, where, out)
        params = {"weight": w, "bias": self._bias(ins, 2, n_out, where), **self._requant(x, out, s_w)}
        attrs = {"weight_shape": (n_out, n_in), "bias": True, "activation": act, "act_min": lo, "act_max": hi}
        return Op(f"op{i}_fully_connected", "fully_connected", (x,), out, attrs, "classifier", None, params)

    def _op_add(self, op, where, i):
        ins = self._inputs(op, 2, where)
        a, b = self.act(ins[0], where), self.act(ins[1], where)
        out = self.act(op.outputs[0], where)
        t = self.g.tensors
        if not (t[a].shape == t[b].shape == t[out].shape):
            raise ModelImportError(f"{where}: broadcasting ADD ({t[a].shape} + {t[b].shape}) is not supported")
        act, lo, hi = self._fused(self._opts(op, "AddOptionsT", where), where, out)
        return Op(f"op{i}_add", "add", (a, b), out, {"activation": act, "act_min": lo, "act_max": hi}, "add")

    def _pool(self, op, where, i, kind: str):
        ins = self._inputs(op, 1, where)
        x = self.act(ins[0], where)
        out = self.act(op.outputs[0], where)
        o = self._opts(op, "Pool2DOptionsT", where)
        xs = self.g.tensors[x].shape
        k, s = (int(o.filterHeight), int(o.filterWidth)), (int(o.strideH), int(o.strideW))
        pad = self._padding(o, xs[:2], k, s, where)
        self._same_q(x, out, where, kind)
        act, lo, hi = self._fused(o, where, out)
        attrs = {"kernel": k, "stride": s, "padding": pad, "activation": act, "act_min": lo, "act_max": hi}
        return Op(f"op{i}_{kind}", kind, (x,), out, attrs, "pool")

    def _op_average_pool_2d(self, op, where, i):
        return self._pool(op, where, i, "avg_pool2d")

    def _op_max_pool_2d(self, op, where, i):
        return self._pool(op, where, i, "max_pool2d")

    def _op_mean(self, op, where, i):
        ins = self._inputs(op, 2, where)
        x = self.act(ins[0], where)
        out = self.act(op.outputs[0], where)
        axes = self.data(ins[1])
        if len(self.t(ins[0]).shape) != 4 or axes is None or sorted(int(a) % 4 for a in axes.reshape(-1)) != [1, 2]:
            raise ModelImportError(f"{where}: MEAN over axes {None if axes is None else axes.tolist()} of a "
                                   f"{len(self.t(ins[0]).shape)}-D tensor; only over H and W (axes 1, 2) of "
                                   "NHWC is supported")
        c = self.g.tensors[x].shape[2]
        if int(np.prod(self.g.tensors[out].shape)) != c:
            raise ModelImportError(f"{where}: output {self.g.tensors[out].shape} is not {c} channels")
        return Op(f"op{i}_mean", "mean", (x,), out, {"axes": (0, 1)}, "pool")

    def _op_reshape(self, op, where, i):
        ins = self._inputs(op, 1, where)
        x = self.act(ins[0], where)
        out = self.act(op.outputs[0], where)
        if self.g.tensors[x].nbytes != self.g.tensors[out].nbytes:
            raise ModelImportError(f"{where}: reshape of {self.g.tensors[x].shape} to "
                                   f"{self.g.tensors[out].shape} changes the size")
        self._same_q(x, out, where, "RESHAPE")
        return Op(f"op{i}_reshape", "reshape", (x,), out, {}, "reshape")

    def _op_softmax(self, op, where, i):
        ins = self._inputs(op, 1, where)
        x = self.act(ins[0], where)
        out = self.act(op.outputs[0], where)
        t = self.g.tensors[out]
        if np.float32(t.scale) != np.float32(1 / 256) or t.zero_point != -128:
            raise ModelImportError(f"{where}: int8 SOFTMAX output must have scale 1/256 and zero point -128 "
                                   f"(has {t.scale:g}, {t.zero_point})")
        beta = float(self._opts(op, "SoftmaxOptionsT", where).beta)
        return Op(f"op{i}_softmax", "softmax", (x,), out, {"beta": beta}, "softmax")

    def _op_pad(self, op, where, i):
        ins = self._inputs(op, 2, where)
        x = self.act(ins[0], where)
        out = self.act(op.outputs[0], where)
        p = self.data(ins[1])
        if p is None or p.shape != (4, 2) or np.any(p[0] != 0) or np.any(p[3] != 0) or np.any(p < 0):
            raise ModelImportError(f"{where}: paddings {None if p is None else p.tolist()}; only constant "
                                   "non-negative H and W padding of an NHWC tensor is supported")
        if len(ins) > 2 and ins[2] >= 0:
            raise ModelImportError(f"{where}: PADV2 with a constant value is not supported")
        self._same_q(x, out, where, "PAD")
        pad = (int(p[1, 0]), int(p[1, 1]), int(p[2, 0]), int(p[2, 1]))
        return Op(f"op{i}_pad", "pad", (x,), out, {"padding": pad}, "pad")

    def _op_quantize(self, op, where, i):
        raise ModelImportError(f"{where}: QUANTIZE inside the model (requantising int8) is not supported; "
                               "only a QUANTIZE of the float input is")

    def _op_dequantize(self, op, where, i):
        raise ModelImportError(f"{where}: DEQUANTIZE inside the model is not supported; only one producing "
                               "the float output is")


def import_tflite(path: str | Path | bytes, name: str | None = None) -> Graph:
    """The int8 graph of a ``.tflite`` file (or its bytes), quantisation and weights included."""
    if isinstance(path, (bytes, bytearray)):
        data, where = bytes(path), name or "model.tflite"
    else:
        p = Path(path)
        if not p.is_file():
            raise ModelImportError(f"{p}: no such file")
        data, where = p.read_bytes(), str(p)
    g = _Reader(data, where).build()
    if name:
        g.name = name
    return g
