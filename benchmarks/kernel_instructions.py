"""Instructions per kernel call on the emulated Cortex-M4 (QEMU mps2-an386), on mcunet-in3 / mcunet-vww1 layers.

Method: the kernels run from a firmware (firmware/test/qemu_driver.c) that reads SysTick right before
and right after each kernel call (firmware/qemu/timer.h; the reads are compiler barriers and the
kernels live in other translation units, so nothing can be hoisted across them). QEMU runs with
``-icount shift=6``: every instruction advances virtual time by 64 ns and SysTick counts 40 ns ticks,
so instructions = (ticks - empty-measurement ticks) * 40 / 64, to within one instruction. Every output
is also checked against the NumPy reference (CRC-32), so a timing is only reported for a correct run.

The firmware is built twice: with the DSP path (-mcpu=cortex-m4: SXTB16/SMLAD) and with -DTE_NO_DSP
(the portable C path on the same core). QEMU counts instructions, not cycles (every instruction counts
1; on a real M4 SMLAD and MLA are single-cycle, loads 1-2 cycles). The "x bound" column is the ratio to
0.5 instructions/MAC, the issue rate of two 16-bit MACs per SMLAD.

Usage: .venv/bin/python benchmarks/kernel_instructions.py [--json out.json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
import kernel_harness as T  # noqa: E402 - the C kernel conformance harness the tests use

K = T.K
SHIFT = 6
INSN_PER_TICK = 40 / 2**SHIFT
FLASH_CHUNK = 640 * 1024  # cases per firmware (1 MB flash minus code)


def _deployed_like():
    """Make the random cases look like deployed layers: effective scales 2^-14..2^-3 (per-channel
    conv requantisation: shift <= -2) and no fused clamp inside [-128, 127] (what PTQ gives ReLU6 and
    linear outputs: zero point -128, 6/scale > 255). The conformance tests use wider ranges."""
    quant = T._quant
    T._quant = lambda rng, n, scale_range=(2.0**-14, 2.0**-3): quant(rng, n, scale_range)
    T._act = lambda rng, out_zp: (-128, 127)


def bench_cases() -> list[tuple[str, str, "T.Case"]]:
    """(kernel, layer, case) on shapes of mcunet-in3 (176x176) and mcunet-vww1 (80x80) layers."""
    _deployed_like()
    rng = np.random.default_rng(2024)
    same = K.same_padding
    out = []

    def add(kernel, layer, case):
        out.append((kernel, layer, case))

    # pointwise (1x1 conv, the bulk of the MACs)
    for layer, (h, w, ci, co) in {
        "vww1 b1.expand": (40, 40, 8, 48),
        "in3 b6.expand": (22, 22, 24, 120),
        "in3 b9.project": (11, 11, 240, 40),
        "in3 b14.project": (6, 6, 288, 96),
        "vww1 b12.expand": (3, 3, 96, 480),
    }.items():
        add("pointwise", layer, T.pointwise_case(rng, h * w, ci, co))
    # im2col: the stems
    add("im2col", "vww1 stem 3x3/s2", T.im2col_case(rng, 80, 80, 3, 16, (3, 3), (2, 2), same((80, 80), (3, 3), (2, 2))))
    add("im2col", "in3 stem 3x3/s2", T.im2col_case(rng, 176, 176, 3, 16, (3, 3), (2, 2),
                                                   same((176, 176), (3, 3), (2, 2))))
    # Winograd vs im2col on regular 3x3 stride-1 convs
    for layer, (h, c) in {"3x3/s1 20x20x16->16": (20, 16), "3x3/s1 10x10x48->48": (10, 48)}.items():
        seed = int(rng.integers(1 << 30))
        add("im2col", layer, T.im2col_case(np.random.default_rng(seed), h, h, c, c, (3, 3), (1, 1), (1, 1, 1, 1)))
        add("winograd", layer, T.winograd_case(np.random.default_rng(seed), h, h, c, c, (1, 1, 1, 1)))
    # depthwise, in place as planned (k 3/5/7, stride 1/2), and two out-of-place
    for layer, (h, c, k, s) in {
        "vww1 b0.dw": (40, 16, 3, 1),
        "vww1 b1.dw": (40, 48, 3, 2),
        "in3 b4.dw": (44, 64, 5, 1),
        "in3 b5.dw": (44, 80, 5, 2),
        "in3 b9.dw": (11, 240, 7, 1),
        "vww1 b4.dw": (20, 48, 7, 2),
    }.items():
        add("dw in-place", f"{layer} {k}x{k}/s{s}", T.dw_case(rng, h, h, c, (k, k), (s, s),
                                                               same((h, h), (k, k), (s, s)), True))
    add("dw out-of-place", "vww1 b2.dw 3x3/s1", T.dw_case(rng, 20, 20, 48, (3, 3), (1, 1), (1, 1, 1, 1), False))
    add("dw out-of-place", "in3 b9.dw 7x7/s1", T.dw_case(rng, 11, 11, 240, (7, 7), (1, 1), (3, 3, 3, 3), False))
    # add, pooling, classifier
    add("add", "in3 b2.add 44x44x16", T.add_case(rng, 44 * 44 * 16, 1))
    add("avgpool", "in3 global 6x6x160", T.pool_case(rng, 6, 6, 160, (6, 6), (1, 1), (0, 0, 0, 0)))
    add("avgpool", "vww1 global 3x3x160", T.pool_case(rng, 3, 3, 160, (3, 3), (1, 1), (0, 0, 0, 0)))
    add("fc", "in3 classifier 160->1000", T.fc_case(rng, 160, 1000))
    add("fc", "vww1 classifier 160->2", T.fc_case(rng, 160, 2))
    return out


def _chunks(cases):
    cur, size = [], 0
    for c in cases:
        n = len(T.pack(c, 0))
        if cur and size + n > FLASH_CHUNK:
            yield cur
            cur, size = [], 0
        cur.append(c)
        size += n
    if cur:
        yield cur


def measure(cases, build: Path, tag: str, extra: list[str]) -> list[dict]:
    """Run ``cases`` on the emulated M4; per case: instructions (or raises on a wrong result)."""
    results = []
    for j, chunk in enumerate(_chunks(cases)):
        src = build / f"bench_cases_{j}.c"
        T.write_cases_c(T.pack_all(chunk), src)
        elf = T.build_firmware("mps2-an386", src, build / f"bench-{tag}-{j}.elf", extra)
        r = T.run_qemu("mps2-an386", elf, shift=SHIFT, timeout=600)
        if r.done != (len(chunk), 0):
            raise RuntimeError(f"{tag}: wrong results or crash (DONE {r.done}, exit {r.returncode})\n{r.output[-2000:]}")
        for i in range(len(chunk)):
            results.append({"ticks": r.lines[i]["ticks"], "insns": (r.lines[i]["ticks"] - r.overhead_ticks)
                            * INSN_PER_TICK})
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="write the measurements here")
    ap.add_argument("--build", default=str(ROOT / "firmware" / "build" / "bench"))
    args = ap.parse_args(argv)
    T.require_tool("qemu-system-arm", "qemu-system-arm")
    build = Path(args.build)
    build.mkdir(parents=True, exist_ok=True)
    rows = bench_cases()
    cases = [c for _, _, c in rows]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        f_dsp = ex.submit(measure, cases, build, "dsp", [])
        f_port = ex.submit(measure, cases, build, "portable", ["-DTE_NO_DSP"])
        dsp, port = f_dsp.result(), f_port.result()

    table = []
    hdr = (f"{'kernel':<16} {'layer':<26} {'MACs':>10} {'DSP insns':>11} {'insn/MAC':>8} {'x bound':>7} "
           f"{'portable':>11} {'insn/MAC':>8} {'DSP gain':>8}")
    print("Emulated Cortex-M4 (QEMU mps2-an386, -icount shift=6), instructions per kernel call")
    print(hdr)
    print("-" * len(hdr))
    for (kernel, layer, c), d, p in zip(rows, dsp, port):
        work = c.macs if c.macs else len(c.expected)
        unit = "MAC" if c.macs else "out"
        di, pi = d["insns"], p["insns"]
        row = dict(kernel=kernel, layer=layer, desc=c.desc, macs=c.macs, outputs=len(c.expected),
                   dsp_insns=round(di), portable_insns=round(pi), dsp_per_unit=di / work,
                   portable_per_unit=pi / work, unit=unit)
        table.append(row)
        bound = f"{di / work / 0.5:7.2f}" if c.macs else f"{'-':>7}"
        work_s = f"{c.macs:>10,}" if c.macs else f"{len(c.expected):>6,} out"
        print(f"{kernel:<16} {layer:<26} {work_s:>10} {di:>11,.0f} {di / work:>8.3f} {bound} "
              f"{pi:>11,.0f} {pi / work:>8.3f} {pi / di:>7.2f}x")
    print("insn/MAC for add/avgpool is per output element ('out'). x bound = (insn/MAC) / 0.5.")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
