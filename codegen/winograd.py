"""Winograd F(2x2, 3x3) for int8 convolutions, kept in integers.

The textbook transform is ``Y = A^T [(G g G^T) . (B^T d B)] A`` with a G that holds halves. Codegen
uses ``G' = 2 G`` instead, so the pre-transformed weights ``U = G' g G'^T = 4 G g G^T`` are int32 and
``Y = A^T [U . V] A / 4`` is exact (the true result is an integer). ``U`` is stored per output channel
as (out_c, 4, 4, in_c): the layout ``te_conv_winograd3x3_s8`` reads (one 4x4 tile position, all input
channels contiguous). ``winograd_conv_reference`` is the same algorithm in NumPy, for tests.
"""
from __future__ import annotations

import numpy as np

from tinyml_errors import LoweringError

# F(2x2, 3x3) matrices (Lavin & Gray); G2 is 2 * G so that every entry is an integer.
BT = np.array([[1, 0, -1, 0],
               [0, 1, 1, 0],
               [0, -1, 1, 0],
               [0, 1, 0, -1]], dtype=np.int64)
G2 = np.array([[2, 0, 0],
               [1, 1, 1],
               [1, -1, 1],
               [0, 0, 2]], dtype=np.int64)
AT = np.array([[1, 1, 1, 0],
               [0, 1, -1, -1]], dtype=np.int64)
U_SCALE = 4  # U = U_SCALE * G g G^T


def transform_weights(w_ohwi: np.ndarray) -> np.ndarray:
    """int8 OHWI (out_c, 3, 3, in_c) weights -> int32 U = G' g G'^T in layout (out_c, 4, 4, in_c)."""
    w = np.asarray(w_ohwi)
    if w.ndim != 4 or w.shape[1:3] != (3, 3):
        raise LoweringError(f"winograd: weights must be OHWI with a 3x3 kernel, got shape {w.shape}")
    g = w.astype(np.int64)
    # U[o, i, j, c] = sum_{y, x} G2[i, y] * g[o, y, x, c] * G2[j, x]
    u = np.einsum("iy,oyxc,jx->oijc", G2, g, G2)
    if np.abs(u).max(initial=0) > np.iinfo(np.int32).max:
        raise LoweringError("winograd: transformed weights do not fit int32")
    return np.ascontiguousarray(u.astype(np.int32))


def winograd_conv_reference(x: np.ndarray, x_zp: int, u: np.ndarray, padding: tuple[int, int, int, int],
                            out_hw: tuple[int, int]) -> np.ndarray:
    """int64 accumulators (no bias) of a 3x3 stride-1 conv of (H, W, C) int8 ``x`` computed from ``U``.

    ``padding`` is (top, bottom, left, right); taps outside the input contribute 0 (x - x_zp padded
    with zeros), exactly like the direct convolution. Returns (out_h, out_w, out_c).
    """
    ho, wo = out_hw
    h, w, c = x.shape
    pt, _, pl, _ = padding
    th, tw = (ho + 1) // 2, (wo + 1) // 2  # 2x2 output tiles
    # Input covering every tile's 4x4 window, zeros outside the real input.
    xs = np.zeros((2 * th + 2, 2 * tw + 2, c), dtype=np.int64)
    ys, xs0 = max(0, pt), max(0, pl)
    hh, ww = min(h, xs.shape[0] - pt), min(w, xs.shape[1] - pl)
    xs[ys:ys + hh, xs0:xs0 + ww] = x[:hh, :ww].astype(np.int64) - x_zp
    # Tiles d[ty, tx, 4, 4, c] (stride 2, overlapping by 2).
    d = np.lib.stride_tricks.sliding_window_view(xs, (4, 4), axis=(0, 1))[::2, ::2]  # (th, tw, c, 4, 4)
    v = np.einsum("ia,tscab,jb->tsijc", BT, d, BT)                 # B^T d B per channel
    m = np.einsum("tsijc,oijc->tsoij", v, u.astype(np.int64))       # sum over input channels
    y = np.einsum("pi,tsoij,qj->tspqo", AT, m, AT)                   # A^T M A: (th, tw, 2, 2, out_c)
    if np.any(y % U_SCALE):
        raise AssertionError("winograd: A^T M A is not a multiple of 4 (bad U)")
    y = (y // U_SCALE).transpose(0, 2, 1, 3, 4).reshape(2 * th, 2 * tw, -1)
    return y[:ho, :wo]
