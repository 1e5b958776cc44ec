"""Weights of ``te_conv_pointwise_w16_s8`` (firmware/src/te_pointwise_w16.c; ``gen --pw-weights``): the
int8 (out_c, 1, 1, in_c) weights widened to int16 and stored in the order the kernel's 2 x 2 tile reads
them -- per pair of output channels (a, b) and group of four input channels the words
(a0 | a2 << 16), (a1 | a3 << 16), (b0 | b2 << 16), (b1 | b3 << 16); an odd last channel alone, two words
a group -- as int32 words (word-aligned for the kernel's LDRD)."""
from __future__ import annotations

import numpy as np

from codegen.stem import stem_weights


def pw16_weights(w_ohwi: np.ndarray) -> np.ndarray:
    """(out_c, 1, 1, in_c) int8, in_c a multiple of 4 -> 1-D int32 words in the kernel's layout."""
    w = np.asarray(w_ohwi)
    if w.dtype != np.int8 or w.ndim != 4 or w.shape[1:3] != (1, 1) or w.shape[3] % 4:
        raise ValueError(f"pw16 weights: expected (out_c, 1, 1, in_c) int8 with in_c a multiple of 4, got "
                         f"{w.dtype} {w.shape}")
    rows = stem_weights(w)                                   # (out_c, 2G): per group (w0|w2, w1|w3)
    co, n = rows.shape
    pairs = co // 2
    head = rows[:2 * pairs].reshape(pairs, 2, n // 2, 2).transpose(0, 2, 1, 3).reshape(-1)
    return np.concatenate([head, rows[2 * pairs:].reshape(-1)]).astype(np.int32)
