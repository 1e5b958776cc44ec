"""Export to other runtimes: the int8 graph as a TFLite flatbuffer, the float model as ONNX.

TFLite (``export_tflite``): written with the ``flatbuffers`` runtime and the schema classes the
``tflite-micro`` wheel ships (no TensorFlow). One subgraph, batch 1, NHWC, int8 activations with the
graph's per-tensor (scale, zero point), int8 per-output-channel weights (OHWI conv, 1HWC depthwise,
(out, in) fully connected), int32 bias with scale ``s_in * s_w[c]``. Ops map one to one:

=================== ===================================================================
ours                TFLite
=================== ===================================================================
conv2d              CONV_2D (per-channel)
depthwise_conv2d    DEPTHWISE_CONV_2D, depth_multiplier 1
add                 ADD
avg_pool2d          AVERAGE_POOL_2D (explicit padding -> PAD + VALID)
global_avg_pool     AVERAGE_POOL_2D with the whole H x W as filter (not MEAN: same as our kernel)
fully_connected     FULLY_CONNECTED (per-channel weights), fed the (1, 1, 1, C) pool output
pad                 PAD (pads with the input zero point)
reshape             RESHAPE
=================== ===================================================================

Padding: our convs pad k//2 before (PyTorch); TFLite's SAME puts the odd pixel after. They agree for
stride 1 and for stride 2 on odd sizes; where they do not (stride 2 on an even size), ``padding='exact'``
(default) emits ``PAD`` + ``VALID`` so the .tflite computes exactly our graph, bit for bit.
``padding='same'`` emits SAME everywhere instead: the layout a TensorFlow-trained model of the same
architecture has (no PAD tensors, so the fair figure for TFLM's memory), but its border pixels differ
from ours after stride-2 layers.

Fused activations: ReLU/ReLU6 become ``fused_activation_function``; TFLite derives the clamp from the
output quantisation exactly as ``requant.activation_range`` does, which ``export_tflite`` checks per op.

ONNX (``export_onnx``): the float PyTorch model via ``torch.onnx.export`` (needs the ``onnx`` package).
"""
from __future__ import annotations

import numpy as np

from tinyengine.ir.graph import Graph, Op
from tinyengine.numerics.kernels_ref import same_padding
from tinyengine.numerics.requant import activation_range
from tinyml_errors import ExportError


def _schema():
    try:
        import flatbuffers
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ExportError("TFLite export needs the PyPI packages 'tflite-micro' and 'flatbuffers' "
                         f"(pip install tflite-micro): {e}") from None
    return fb, flatbuffers


_ACT = {None: "NONE", "none": "NONE", "relu": "RELU", "relu6": "RELU6", "relu_n1_to_1": "RELU_N1_TO_1"}
# builtin op -> version (the int8 per-channel variants TFLite's converter writes)
_VERSIONS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "ADD": 2, "AVERAGE_POOL_2D": 2,
             "FULLY_CONNECTED": 4, "PAD": 2, "RESHAPE": 1}


from tinyengine.export.tflite_ops import VERSIONS as _EXTRA_VERSIONS  # noqa: E402  (MAX_POOL_2D, MEAN, SOFTMAX)


class _Writer:
    """Accumulates tensors/buffers/ops of one subgraph, then packs the Model."""

    def __init__(self, graph: Graph, padding: str):
        self.fb, self.flatbuffers = _schema()
        self.g = graph
        self.padding = padding
        self.tensors: list = []
        self.index: dict[str, int] = {}
        self.buffers: list[bytes | None] = [None]  # buffer 0: the empty sentinel
        self.opcodes: dict[str, int] = {}
        self.ops: list = []

    # ---- tensors
    def _quant(self, scales, zps, dim: int = 0):
        q = self.fb.QuantizationParametersT()
        q.scale = np.asarray(scales, dtype=np.float32).reshape(-1)
        q.zeroPoint = np.asarray(zps, dtype=np.int64).reshape(-1)
        q.quantizedDimension = dim
        return q

    def _add_tensor(self, name: str, shape, ttype: int, quant, data: np.ndarray | None = None) -> int:
        t = self.fb.TensorT()
        t.name = name
        t.shape = np.asarray(shape, dtype=np.int32)
        t.type = ttype
        t.quantization = quant
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data).tobytes())
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def activation(self, name: str, shape=None) -> int:
        """Index of graph tensor ``name`` (created on first use), shape with the batch of 1."""
        if name in self.index and shape is None:
            return self.index[name]
        t = self.g.tensors[name]
        if t.scale is None or t.zero_point is None:
            raise ExportError(f"export: tensor '{name}' is not quantised (quantise the graph first)")
        shp = (1, *t.shape) if shape is None else shape
        i = self._add_tensor(name, shp, self.fb.TensorType.INT8, self._quant([t.scale], [t.zero_point]))
        self.index.setdefault(name, i)
        return i

    def temp(self, like: str, suffix: str, shape) -> int:
        """A fresh int8 tensor with the qparams of graph tensor ``like`` (PAD outputs)."""
        t = self.g.tensors[like]
        return self._add_tensor(f"{like}{suffix}", shape, self.fb.TensorType.INT8,
                                self._quant([t.scale], [t.zero_point]))

    def const_int32(self, name: str, arr: np.ndarray, quant=None) -> int:
        a = np.asarray(arr, dtype="<i4")
        return self._add_tensor(name, a.shape, self.fb.TensorType.INT32, quant, a)

    # ---- ops
    def op(self, code: str, inputs, outputs, opt_type: str | None = None, options=None) -> None:
        if code not in self.opcodes:
            self.opcodes[code] = len(self.opcodes)
        o = self.fb.OperatorT()
        o.opcodeIndex = self.opcodes[code]
        o.inputs = np.asarray(inputs, dtype=np.int32)
        o.outputs = np.asarray(outputs, dtype=np.int32)
        if opt_type is not None:
            o.builtinOptionsType = getattr(self.fb.BuiltinOptions, opt_type)
            o.builtinOptions = options
        self.ops.append(o)

    # ---- model
    def pack(self, description: str) -> bytes:
        fb = self.fb
        sg = fb.SubGraphT()
        sg.tensors = self.tensors
        sg.inputs = np.asarray([self.index[n] for n in self.g.inputs], dtype=np.int32)
        sg.outputs = np.asarray([self.index[n] for n in self.g.outputs], dtype=np.int32)
        sg.operators = self.ops
        sg.name = self.g.name
        m = fb.ModelT()
        m.version = 3
        m.description = description
        m.subgraphs = [sg]
        codes = []
        for name in self.opcodes:  # dicts keep insertion order == opcode index
            c = fb.OperatorCodeT()
            c.builtinCode = getattr(fb.BuiltinOperator, name)
            c.deprecatedBuiltinCode = min(c.builtinCode, 127)
            c.version = _VERSIONS.get(name, _EXTRA_VERSIONS.get(name, 1))
            codes.append(c)
        m.operatorCodes = codes
        m.buffers = [_AlignedBuffer(fb, d) for d in self.buffers]
        b = self.flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


class _AlignedBuffer:
    """A schema Buffer whose data vector starts at a 16-byte boundary (as TFLite's converter writes it:
    int32 bias and int8 SIMD loads on the target read it in place)."""

    def __init__(self, fb, data: bytes | None):
        self.fb, self.data = fb, data

    def Pack(self, builder):
        fb = self.fb
        vec = None
        if self.data is not None:
            n = len(self.data)
            builder.StartVector(1, n, 16)
            builder.head -= n
            builder.Bytes[builder.head:builder.head + n] = self.data
            vec = builder.EndVector()
        fb.BufferStart(builder)
        if vec is not None:
            fb.BufferAddData(builder, vec)
        return fb.BufferEnd(builder)


def _fused(w: _Writer, op: Op, out_name: str) -> int:
    """TFLite fused_activation_function for ``op``, checked against the clamp our graph carries."""
    act = op.attrs.get("activation")
    key = None if act is None else str(act).lower()
    if key not in _ACT:
        raise ExportError(f"export: op '{op.name}' has activation {act!r}, which TFLite cannot fuse")
    out = w.g.tensors[out_name]
    want = activation_range(key, out.scale, out.zero_point)
    have = (op.attrs.get("act_min", -128), op.attrs.get("act_max", 127))
    if tuple(int(v) for v in have) != want:
        raise ExportError(f"export: op '{op.name}' clamps to {have}, but TFLite's {_ACT[key]} on its output "
                         f"quantisation gives {want}")
    return getattr(w.fb.ActivationFunctionType, _ACT[key])


def _window_padding(w: _Writer, op: Op, x: int, in_shape, kernel, stride) -> tuple[int, str]:
    """(input tensor index, 'SAME'|'VALID') reproducing our explicit ``attrs['padding']``; inserts a PAD
    op in front when neither TFLite mode computes the same windows."""
    h, wd = in_shape[:2]
    t, b, l, r = op.attrs.get("padding", (0, 0, 0, 0))
    ho, wo = w.g.write_shape(op)[:2]
    if (t, b, l, r) == (0, 0, 0, 0):
        return x, "VALID"
    st, sb, sl, sr = same_padding((h, wd), kernel, stride)
    same_out = (-(-h // stride[0]), -(-wd // stride[1]))
    # SAME reads the same windows as ours if it starts at the same offset and gives the same output size
    # (padded taps add 0 in both, so how far the pad reaches past the last window does not matter)
    if w.padding == "same" or ((st, sl) == (t, l) and same_out == (ho, wo)):
        return x, "SAME"
    pb, pr = (ho - 1) * stride[0] + kernel[0] - h - t, (wo - 1) * stride[1] + kernel[1] - wd - l
    pb, pr = max(pb, 0), max(pr, 0)
    src = op.inputs[0]
    shape = (1, h + t + pb, wd + l + pr, in_shape[2])
    pads = w.const_int32(f"{op.name}/paddings", np.array([[0, 0], [t, pb], [l, pr], [0, 0]]))
    y = w.temp(src, f"/pad_for_{op.name}", shape)
    w.op("PAD", [x, pads], [y], "PadOptions", w.fb.PadOptionsT())
    return y, "VALID"


def _conv(w: _Writer, op: Op) -> None:
    fb, g = w.fb, w.g
    p = op.params
    if "weight" not in p:
        raise ExportError(f"export: op '{op.name}' has no int8 weights (quantise the graph first)")
    src = op.inputs[0]
    s_in = g.tensors[src].scale
    s_w = np.asarray(p["weight_scale"], dtype=np.float32)
    kh, kw = op.attrs["kernel"]
    stride = tuple(op.attrs["stride"])
    x, pad = _window_padding(w, op, w.activation(src), g.tensors[src].shape, (kh, kw), stride)
    wq = np.asarray(p["weight"], dtype=np.int8)
    cout = len(s_w)
    if op.kind == "depthwise_conv2d":
        wq = wq.reshape(1, kh, kw, cout)      # 1HWC
        wdim, code, opt_name = 3, "DEPTHWISE_CONV_2D", "DepthwiseConv2DOptions"
        opts = fb.DepthwiseConv2DOptionsT()
        opts.depthMultiplier = 1
    else:
        wdim, code, opt_name = 0, "CONV_2D", "Conv2DOptions"
        opts = fb.Conv2DOptionsT()
    wi = w._add_tensor(f"{op.name}/weight", wq.shape, fb.TensorType.INT8,
                       w._quant(s_w, np.zeros(cout), wdim), wq)
    bias_scale = np.float64(np.float32(s_in)) * s_w.astype(np.float64)
    bi = w.const_int32(f"{op.name}/bias", p["bias"], w._quant(bias_scale, np.zeros(cout), 0))
    opts.padding = getattr(fb.Padding, pad)
    opts.strideH, opts.strideW = stride
    opts.dilationHFactor = opts.dilationWFactor = 1
    opts.fusedActivationFunction = _fused(w, op, op.output)
    w.op(code, [x, wi, bi], [w.activation(op.output)], opt_name, opts)


def _fc(w: _Writer, op: Op) -> None:
    fb, g = w.fb, w.g
    p = op.params
    if "weight" not in p:
        raise ExportError(f"export: op '{op.name}' has no int8 weights (quantise the graph first)")
    src = op.inputs[0]
    s_w = np.asarray(p["weight_scale"], dtype=np.float32)
    wq = np.asarray(p["weight"], dtype=np.int8)
    n = wq.shape[0]
    wi = w._add_tensor(f"{op.name}/weight", wq.shape, fb.TensorType.INT8, w._quant(s_w, np.zeros(n), 0), wq)
    bias_scale = np.float64(np.float32(g.tensors[src].scale)) * s_w.astype(np.float64)
    bi = w.const_int32(f"{op.name}/bias", p["bias"], w._quant(bias_scale, np.zeros(n), 0))
    opts = fb.FullyConnectedOptionsT()
    opts.fusedActivationFunction = _fused(w, op, op.output)
    opts.keepNumDims = False
    w.op("FULLY_CONNECTED", [w.activation(src), wi, bi], [w.activation(op.output)],
         "FullyConnectedOptions", opts)


def _pool(w: _Writer, op: Op) -> None:
    fb, g = w.fb, w.g
    src = op.inputs[0]
    in_shape = g.tensors[src].shape
    if op.kind == "global_avg_pool":
        kernel, stride, x, pad = tuple(in_shape[:2]), (1, 1), w.activation(src), "VALID"
        out = w.activation(op.output, (1, 1, 1, g.tensors[op.output].shape[-1]))
    else:
        kernel, stride = tuple(op.attrs["kernel"]), tuple(op.attrs["stride"])
        if any(op.attrs.get("padding", (0, 0, 0, 0))):
            raise ExportError(f"export: padded avg_pool2d '{op.name}' has no TFLite equivalent (TFLite "
                             "averages over the valid taps of SAME windows only)")
        x, pad, out = w.activation(src), "VALID", w.activation(op.output)
    opts = fb.Pool2DOptionsT()
    opts.padding = getattr(fb.Padding, pad)
    opts.strideH, opts.strideW = stride
    opts.filterHeight, opts.filterWidth = kernel
    opts.fusedActivationFunction = _fused(w, op, op.output)
    w.op("AVERAGE_POOL_2D", [x], [out], "Pool2DOptions", opts)


def _tensor_shape(g: Graph, name: str) -> tuple[int, ...]:
    return (1, *g.tensors[name].shape)


def export_tflite(graph: Graph, *, padding: str = "exact", description: str | None = None) -> bytes:
    """The quantised ``graph`` as a TFLite flatbuffer (schema v3) that TFLite Micro runs.

    ``padding='exact'`` reproduces our windows bit-exactly (PAD ops where SAME differs);
    ``padding='same'`` uses TFLite SAME padding throughout (memory comparison only, see module doc).
    A ValueError names the op when something has no TFLite equivalent.
    """
    if padding not in ("exact", "same"):
        raise ExportError(f"export: padding must be 'exact' or 'same', got {padding!r}")
    if len(graph.inputs) != 1:
        raise ExportError(f"export: graph '{graph.name}' has {len(graph.inputs)} inputs; one is supported")
    w = _Writer(graph, padding)
    w.activation(graph.inputs[0])
    for op in graph.ops:
        if op.attrs.get("in_regions") is not None or "out_region" in op.attrs:
            raise ExportError(f"export: op '{op.name}' is part of a patch-based schedule; export the graph "
                             "before patching (TFLite has no region ops)")
        if op.kind in ("conv2d", "depthwise_conv2d"):
            _conv(w, op)
        elif op.kind == "fully_connected":
            _fc(w, op)
        elif op.kind in ("avg_pool2d", "global_avg_pool"):
            _pool(w, op)
        elif op.kind == "add":
            a, b = (w.activation(n) for n in op.inputs)
            opts = w.fb.AddOptionsT()
            opts.fusedActivationFunction = _fused(w, op, op.output)
            w.op("ADD", [a, b], [w.activation(op.output)], "AddOptions", opts)
        elif op.kind == "pad":
            t, b, l, r = op.attrs["padding"]
            pads = w.const_int32(f"{op.name}/paddings", np.array([[0, 0], [t, b], [l, r], [0, 0]]))
            w.op("PAD", [w.activation(op.inputs[0]), pads], [w.activation(op.output)], "PadOptions",
                 w.fb.PadOptionsT())
        elif op.kind == "reshape":
            shape = _tensor_shape(graph, op.output)
            new = w.const_int32(f"{op.name}/shape", np.array(shape))
            opts = w.fb.ReshapeOptionsT()
            opts.newShape = np.asarray(shape, dtype=np.int32)
            w.op("RESHAPE", [w.activation(op.inputs[0]), new], [w.activation(op.output)],
                 "ReshapeOptions", opts)
        elif op.kind in ("max_pool2d", "mean", "softmax"):  # ops of imported models
            from tinyengine.export.tflite_ops import write_op
            write_op(w, op, _fused)
        else:
            raise ExportError(f"export: op '{op.name}' of kind '{op.kind}' has no TFLite mapping")
    for name in graph.outputs:
        w.activation(name)
    return w.pack(description or f"{graph.name}: exported by tinyengine (int8, padding={padding})")


def tflite_summary(data: bytes) -> dict:
    """Parse a .tflite back: {'version', 'ops': [builtin names], 'tensors': [(name, shape, type)],
    'inputs', 'outputs', 'buffers'} (what the tests and ``tinyengine export`` print)."""
    fb, _ = _schema()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ExportError("not a TFLite flatbuffer (file identifier 'TFL3' missing)")
    m = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    tnames = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
    sg = m.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in m.operatorCodes]

    def _s(v):
        return v.decode() if isinstance(v, bytes) else v
    return {
        "version": m.version,
        "ops": [names[codes[o.opcodeIndex]] for o in sg.operators],
        "tensors": [(_s(t.name), tuple(int(d) for d in t.shape), tnames[t.type]) for t in sg.tensors],
        "inputs": [int(i) for i in sg.inputs],
        "outputs": [int(i) for i in sg.outputs],
        "buffers": len(m.buffers),
        "description": _s(m.description),
    }
