"""Small models the firmware tests share: fast to build, a small input for QEMU's slow UART (~15 KB/s)."""
from __future__ import annotations

import numpy as np

from search_spaces.space import SearchSpace


def small_arch(name: str):
    """A seeded sub-network of the search space: 32..64 px x 1 channel, 3x3 kernels on the stride-2
    blocks; about 14 KB of arena and 270 KB of weights (fits an STM32F405's 128 KB SRAM)."""
    space = SearchSpace(num_classes=10, in_channels=1)
    rng = np.random.default_rng(13)
    g = space.sample_genes(rng, 1)
    k = g.kernel_idx[0].copy()
    for s, stride in enumerate(space.strides):
        if stride == 2:
            k[s, 0] = space.kernel_choices.index(3)
    r = int(rng.integers(32, 65))
    return space.build(0.3, r, k, g.expand_idx[0], g.depth[0], name=name)
