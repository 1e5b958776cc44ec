"""Per-op arithmetic of the IR: MACs, parameters (as published) and flash bytes of one op."""
from __future__ import annotations

from tinyengine.ir.graph import Graph, Op

BIAS_BYTES = 4
REQUANT_BYTES = 8  # int32 multiplier + int32 shift per output channel


def op_macs(graph: Graph, op: Op) -> int:
    if op.kind == "stream_segment":  # fused row-streamed ops: their members' MACs, each row once
        return sum(op_macs(graph, m) for m in op.attrs["stream"].members)
    if op.kind in ("conv2d", "conv2d_add"):  # conv2d_add: a pointwise conv fused with an ADD
        ho, wo, cout = graph.write_shape(op)  # a region writer computes only its region
        _, kh, kw, cin = op.weight_shape
        return ho * wo * cout * kh * kw * cin
    if op.kind == "depthwise_conv2d":
        ho, wo, c = graph.write_shape(op)
        kh, kw, _ = op.weight_shape
        return ho * wo * c * kh * kw
    if op.kind == "fully_connected":
        o, i = op.weight_shape
        return o * i
    return 0


def op_params(op: Op, *, folded: bool = False) -> int:
    """Parameters of the float model as PyTorch counts them (conv weights + BatchNorm weight and bias,
    classifier weights + bias: the convention MCUNet/OFA publish), or with BN folded into one bias
    per output channel (``folded=True``: what the int8 model stores)."""
    if op.weight_shape is None:
        return 0
    per_channel = 1 if folded or op.kind == "fully_connected" else 2
    return _weights(op) + per_channel * _out_channels(op)


def _weights(op: Op) -> int:
    n = 1
    for d in op.weight_shape:
        n *= d
    return n


def _out_channels(op: Op) -> int:
    ws = op.weight_shape
    return ws[2] if op.kind == "depthwise_conv2d" else ws[0]


def op_flash(op: Op) -> int:
    """Bytes of flash for one op's constants: int8 weights (int16 when ``gen --pw-weights`` chose them for
    the op: ``attrs["pw_weights"]``) + int32 bias + per-channel requant."""
    if op.weight_shape is None:
        return 0
    wbytes = 2 if op.attrs.get("pw_weights") == "int16" else 1
    return wbytes * _weights(op) + _out_channels(op) * (BIAS_BYTES + REQUANT_BYTES)
