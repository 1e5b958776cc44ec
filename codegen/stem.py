"""Weights of the stem kernel (``te_conv_stem_s8``, firmware/src/te_stem.c): OHWI int8 weights, each
output channel's row zero-padded to Kp (a multiple of 4) and widened to int16 pairs in the order the
kernel's SMLADs meet the im2col column -- per group of four k the words (w0 | w2 << 16) and
(w1 | w3 << 16) -- stored as int32 words (word-aligned for the kernel's paired loads)."""
from __future__ import annotations

import numpy as np


def stem_weights(w_ohwi: np.ndarray) -> np.ndarray:
    """(out_c, kh, kw, in_c) int8 -> (out_c, Kp / 2) int32 in the stem kernel's layout."""
    w = np.asarray(w_ohwi)
    if w.dtype != np.int8 or w.ndim != 4:
        raise ValueError(f"stem weights: expected (out_c, kh, kw, in_c) int8, got {w.dtype} {w.shape}")
    rows = w.reshape(w.shape[0], -1).astype(np.int32)
    rows = np.pad(rows, ((0, 0), (0, -rows.shape[1] % 4)))
    g = rows.reshape(rows.shape[0], -1, 4)                  # (out_c, groups, 4)
    lo = np.stack([g[:, :, 0], g[:, :, 1]], axis=2)          # lanes 0 of the two words: w0, w1
    hi = np.stack([g[:, :, 2], g[:, :, 3]], axis=2)          # lanes 1: w2, w3
    words = (lo & 0xFFFF) | ((hi & 0xFFFF) << 16)            # uint32 values in int64
    return words.reshape(rows.shape[0], -1).astype(np.uint32).view(np.int32)
