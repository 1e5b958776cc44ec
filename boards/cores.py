"""Facts about the Cortex-M cores of the boards, in one table: the core names a board file may use, and
the rough timing figures used where nothing was measured (each use says it is an estimate).

* ``CPI_ESTIMATE``: cycles per instruction of our int8 kernels, to turn the shipped instruction-count
  latency model into cycles on a real board without a calibration of its own. Cortex-M4 issues one
  instruction per cycle except loads (2) and taken branches (2-4): about 1.25 on these kernels; the
  M7's dual issue brings it under 1. Replaced by ``tinyengine calibrate`` on the board.
* ``CYCLES_PER_MAC``: the search's analytic fallback when no kernel model applies: cycles per MAC of
  CMSIS-NN-style int8 kernels (M7 dual issue + SMLAD ~1.0; M4/M33 with DSP ~1.6; M55 Helium ~0.5;
  cores without DSP ~5.0), plus ``CYCLES_PER_LAYER`` per op (call, loop set-up, requantisation tails).
"""
from __future__ import annotations

CORES = ("cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")

CPI_ESTIMATE = {"cortex-m4": 1.25, "cortex-m7": 0.8, "cortex-m33": 1.2, "cortex-m55": 0.8, "cortex-m3": 1.3}

CYCLES_PER_MAC = {"cortex-m0plus": 5.0, "cortex-m3": 5.0, "cortex-m4": 1.6, "cortex-m7": 1.0,
                  "cortex-m33": 1.6, "cortex-m55": 0.5}
NO_DSP_CYCLES_PER_MAC = 5.0
CYCLES_PER_LAYER = 2000
