"""Instructions per inference and per MAC, per layer and per kernel, for whole zoo models (random
weights) on the emulated Cortex-M4 (QEMU mps2-an386).

Method: ``tinyengine gen`` writes each model's project; a small firmware links the generated model with
a hooks header (``-DTE_HOOKS_HEADER``) whose ``TE_LAYER_BEGIN/END`` read SysTick around every kernel
call. QEMU runs with ``-icount shift=6``: every instruction advances virtual time by 64 ns and SysTick
counts 40 ns ticks, so instructions = ticks * 40 / 64 (the empty begin/end pair is measured and
subtracted). The output bytes are compared with the NumPy reference, so a figure is only reported for
a bit-exact run. Each model is built twice: with the Cortex-M DSP path (-DTE_USE_DSP: SXTB16/SMLAD)
and with the portable C path on the same core, side by side.

QEMU counts instructions, not cycles. The "x bound" column is insn/MAC divided by 0.5, the rate of
SMLAD doing two 16-bit MACs per instruction with no other work.

Code size: the kernels and the generated model are compiled to separate objects and linked with a map
file; "code" is the .text their objects contribute to the linked firmware (after --gc-sections), in bytes.

``--baseline F`` (a JSON written by an earlier ``--json``) prints, per layer and per kernel type, the
baseline's instructions next to today's and flags every layer that got slower (more than 0.5 %%).

Usage: .venv/bin/python benchmarks/model_instructions.py [--models mcunet-vww1 mcunet-in0 ...] [--json F]
       [--baseline F] [--pw-weights int8|int16|auto]
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codegen.generate import generate  # noqa: E402
from search_spaces.zoo import load_model  # noqa: E402
from tinyengine.kernels.pw_weights import CODE_RESERVE_BYTES  # noqa: E402
from tinyengine.numerics.reference import run_graph  # noqa: E402

RT = ROOT / "firmware" / "qemu"
SHIFT = 6
INSN_PER_TICK = 40 / 2**SHIFT
M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]
DEFAULT_MODELS = ("mcunet-vww1", "mcunet-in0", "mcunet-in1", "proxyless-w0.3")

HOOKS_H = r"""
#include <stdint.h>
#include "timer.h"
extern uint64_t bench_t0, bench_ticks[];
#define TE_LAYER_BEGIN(i) do { bench_t0 = timer_ticks(); } while (0)
#define TE_LAYER_END(i) do { bench_ticks[(i)] = timer_ticks() - bench_t0; } while (0)
"""

MAIN_C = r"""
#include <stdint.h>
#include "model.h"
#include "timer.h"
#include "uart.h"

uint64_t bench_t0, bench_ticks[TE_NUM_LAYERS];
static const int8_t input[TE_INPUT_BYTES] = {%(input)s};

int main(void)
{
    static int8_t out[TE_OUTPUT_BYTES];
    timer_init();
    uint64_t a = timer_ticks();
    uint64_t b = timer_ticks();
    uart_puts("EMPTY ");
    uart_put_u64(b - a);
    uart_puts("\n");
    uint64_t t0 = timer_ticks();
    int rc = te_model_run(input, out);
    uint64_t t1 = timer_ticks();
    uart_puts("TOTAL ");
    uart_put_u64(t1 - t0);
    uart_puts(" RC ");
    uart_put_i32(rc);
    uart_puts("\nOUT ");
    for (int i = 0; i < TE_OUTPUT_BYTES; i++) uart_put_hex8((uint8_t)out[i]);
    uart_puts("\n");
    for (int i = 0; i < TE_NUM_LAYERS; i++) {
        uart_puts("L ");
        uart_put_u32((uint32_t)i);
        uart_puts(" ");
        uart_put_u64(bench_ticks[i]);
        uart_puts("\n");
    }
    return rc;
}
"""


def _tool(name: str, pkg: str) -> str:
    path = shutil.which(name)
    if path is None:
        sys.exit(f"{name} not found: install the Debian package {pkg}")
    return path


def measure(model: str, proj, work: Path, dsp: bool) -> dict:
    """Build and run one generated project; per-layer instructions (reference-checked)."""
    low = proj.lowering
    src = proj.root / "src"
    (work / "bench_hooks.h").write_text(HOOKS_H)
    x = proj.reference_input.reshape(-1)
    (work / "main.c").write_text(MAIN_C % {"input": ",".join(map(str, x.tolist()))})
    elf = work / ("fw_dsp.elf" if dsp else "fw_c.elf")
    c_files = [work / "main.c", src / "model.c", src / "weights.c", *(proj.root / k for k in proj.kernel_sources),
               *(RT / f for f in ("startup.c", "uart.c", "semihost.c", "timer.c"))]
    gcc = _tool("arm-none-eabi-gcc", "gcc-arm-none-eabi")
    cflags = ["-std=c99", "-O2", *M4, "-DTE_USE_DSP" if dsp else "-DTE_NO_DSP", "-ffunction-sections",
              "-fdata-sections", f"-I{src}", f"-I{RT}", f"-I{work}", "-DTE_HOOKS_HEADER=\"bench_hooks.h\""]
    objdir = work / ("obj_dsp" if dsp else "obj_c")
    objdir.mkdir(exist_ok=True)
    objs = []
    for i, f in enumerate(c_files):
        o = objdir / f"{i:02d}_{Path(f).stem}.o"
        r = subprocess.run([gcc, *cflags, "-c", str(f), "-o", str(o)], capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"{model}: firmware build failed ({f}):\n{r.stderr[-3000:]}")
        objs.append(o)
    mapf = elf.with_suffix(".map")
    cmd = [gcc, *M4, *map(str, objs), "-nostartfiles", "-specs=nano.specs", f"-L{RT}", "-T", "mps2-an386.ld",
           "-Wl,--gc-sections", f"-Wl,-Map={mapf}", "-o", str(elf)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"{model}: firmware link failed:\n{r.stderr[-3000:]}")
    code = code_bytes(mapf.read_text(), [o.name for o in objs[1:2] + objs[3:3 + len(proj.kernel_sources)]])
    r = subprocess.run([_tool("qemu-system-arm", "qemu-system-arm"), "-M", "mps2-an386", "-nographic",
                        "-semihosting-config", "enable=on,target=native", "-icount", f"shift={SHIFT}",
                        "-kernel", str(elf)], capture_output=True, text=True, timeout=900)
    if r.returncode:
        raise RuntimeError(f"{model}: QEMU exit {r.returncode}\n{r.stdout[-2000:]}")
    empty = int(re.search(r"EMPTY (\d+)", r.stdout).group(1))
    total = int(re.search(r"TOTAL (\d+)", r.stdout).group(1))
    got = np.frombuffer(bytes.fromhex(re.search(r"OUT ([0-9a-f]*)", r.stdout).group(1)), np.int8)
    want = np.asarray(run_graph(low.graph, proj.reference_input)[low.graph.outputs[0]], np.int8).reshape(-1)
    if not np.array_equal(got, want):
        raise RuntimeError(f"{model}: QEMU output differs from the NumPy reference")
    ticks = {int(i): int(t) for i, t in re.findall(r"L (\d+) (\d+)", r.stdout)}
    layers = [{"index": o.index, "name": o.name, "kernel": o.kernel, "macs": o.macs,
               "specialised": bool(o.specialisation and o.specialisation.specialised),
               "out_bytes": o.out_bytes,
               "instructions": max(0.0, (ticks[o.index] - empty) * INSN_PER_TICK),
               **({"covers": low.graph.ops[o.index].attrs["covers"]}  # a fused op: the layers it replaces
                  if "covers" in low.graph.ops[o.index].attrs else {})} for o in low.ops]
    return {"model": model, "dsp": dsp, "macs": low.macs, "instructions": total * INSN_PER_TICK,
            "code_bytes": code, "layers": layers}


_MAP_TEXT = re.compile(r"^ (\.text\S*)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)$", re.M)


def code_bytes(map_text: str, obj_names: list[str]) -> int:
    """.text bytes the named objects contribute to the linked image (GNU ld map; a long section name
    sits on its own line, its address/size/file on the next)."""
    text = re.sub(r"^ (\.text\S*)\n\s+(0x)", r" \1 \2", map_text, flags=re.M)
    # only the output part of the map (after the discarded-sections list)
    text = text.split("Linker script and memory map", 1)[-1]
    names = set(obj_names)
    return sum(int(m.group(3), 16) for m in _MAP_TEXT.finditer(text)
               if Path(m.group(4)).name in names and int(m.group(2), 16) != 0)


def per_kernel(run: dict) -> dict[str, dict]:
    agg: dict[str, dict] = defaultdict(lambda: {"n": 0, "macs": 0, "instructions": 0.0, "out_bytes": 0})
    for lay in run["layers"]:
        a = agg[lay["kernel"]]
        a["n"] += 1
        a["macs"] += lay["macs"]
        a["instructions"] += lay["instructions"]
        a["out_bytes"] += lay["out_bytes"]
    return dict(agg)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    ap.add_argument("--json", help="write every per-layer figure here")
    ap.add_argument("--baseline", help="a JSON of an earlier --json run: per-layer and per-kernel before/after")
    ap.add_argument("--pw-weights", choices=("int8", "int16", "auto"), default="int8",
                    help="tinyengine gen --pw-weights: int16 pointwise weights in flash (default int8)")
    ap.add_argument("--specialize", choices=("off", "auto", "all"), default="off",
                    help="per-layer specialised kernels (tinyengine gen --specialize); default off")
    ap.add_argument("--specialize-flash-limit", type=int, default=None, metavar="BYTES",
                    help="extra code bytes the specialised copies may take (default: the board's flash left)")
    args = ap.parse_args(argv)
    base = json.loads(Path(args.baseline).read_text()) if args.baseline else None
    results = []
    print("Emulated Cortex-M4 (QEMU mps2-an386, -icount shift=6), random weights, outputs equal the reference")
    hdr = (f"{'model':<16} {'kernel':<26} {'layers':>6} {'MACs':>12} {'insn DSP':>13} {'insn/MAC':>8} "
           f"{'x bound':>7} {'insn C':>13} {'insn/MAC':>8} {'C/DSP':>6}")
    lines = []
    for model in args.models:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            work = Path(d)
            # the benchmark firmware also keeps the input image in flash: auto leaves room for it
            arch = load_model(model)
            reserve = (CODE_RESERVE_BYTES + arch.resolution ** 2 * arch.in_channels
                       if args.pw_weights == "auto" else None)
            opts = dict(seed=0, pw_weights=args.pw_weights, pw_reserve=reserve, specialize=args.specialize,
                        specialize_flash_limit=args.specialize_flash_limit)
            proj = generate(model, "qemu-m4", work / "proj", **opts)
            if args.specialize != "off" and args.specialize_flash_limit is None:
                # this harness keeps the input image in flash (main.c): the copies get what is left
                budget = json.loads((work / "proj" / "lowering.json").read_text())["specialize"]["flash_budget"]
                opts["specialize_flash_limit"] = max(0, budget - proj.reference_input.size - 4096)
                proj = generate(model, "qemu-m4", work / "proj", force=True, **opts)
            dsp, c = measure(model, proj, work, True), measure(model, proj, work, False)
            for r in (dsp, c):
                r.update(pw_weights=args.pw_weights, weight_bytes=proj.lowering.weight_bytes)
        results += [dsp, c]
        kd, kc = per_kernel(dsp), per_kernel(c)
        for k in sorted(kd, key=lambda k: -kd[k]["instructions"]):
            a, b = kd[k], kc[k]
            work_n = a["macs"] if a["macs"] else a["out_bytes"]
            unit = "" if a["macs"] else " (per output byte)"
            bound = f"{a['instructions'] / work_n / 0.5:7.1f}" if a["macs"] else f"{'-':>7}"
            lines.append(f"{model:<16} {k.removeprefix('te_')[:26]:<26} {a['n']:>6} {a['macs']:>12,} "
                         f"{a['instructions']:>13,.0f} {a['instructions'] / work_n:>8.2f} {bound} "
                         f"{b['instructions']:>13,.0f} {b['instructions'] / work_n:>8.2f} "
                         f"{b['instructions'] / max(a['instructions'], 1):>6.2f}{unit}")
        lines.append(f"{model:<16} {'WHOLE MODEL':<26} {len(dsp['layers']):>6} {dsp['macs']:>12,} "
                     f"{dsp['instructions']:>13,.0f} {dsp['instructions'] / dsp['macs']:>8.2f} "
                     f"{dsp['instructions'] / dsp['macs'] / 0.5:>7.1f} {c['instructions']:>13,.0f} "
                     f"{c['instructions'] / c['macs']:>8.2f} {c['instructions'] / dsp['instructions']:>6.2f}"
                     f"   [{time.perf_counter() - t0:.0f} s]")
        print(lines[-1], flush=True)
    print()
    print(hdr)
    print("-" * len(hdr))
    print("\n".join(lines))
    print("x bound = (insn/MAC) / 0.5; C/DSP = portable-C instructions over DSP-path instructions.")
    for r in results:
        if r["dsp"]:
            print(f"{r['model']}: code (.text of the generated model + kernels, DSP build) {r['code_bytes']:,} bytes; "
                  f"weights, bias and requantisation in flash {r['weight_bytes']:,} bytes (--pw-weights "
                  f"{r['pw_weights']})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    if base is not None:
        print()
        print("\n".join(compare(base, results)))
    return 0


def _covers(layer: dict) -> list[str]:
    """Names of the baseline layers one layer stands for (a fused op carries them in "covers")."""
    return layer.get("covers") or [layer["name"]]


def compare(base: list[dict], results: list[dict], tol: float = 0.005) -> list[str]:
    """Per layer and per kernel type: baseline instructions vs today's (DSP path), slower layers flagged."""
    out = []
    for r in results:
        if not r["dsp"]:
            continue
        b = next((x for x in base if x["model"] == r["model"] and x["dsp"]), None)
        if b is None:
            out.append(f"{r['model']}: not in the baseline")
            continue
        by_name = {lay["name"]: lay for lay in b["layers"]}
        out.append(f"{r['model']} per layer, DSP path (baseline -> now)")
        out.append(f"  {'layer':<22} {'kernel':<28} {'MACs':>10} {'before':>12} {'after':>12} {'after/before':>12}")
        slower = []
        for lay in r["layers"]:
            names = _covers(lay)
            if not all(n in by_name for n in names):
                out.append(f"  {lay['name']:<22} {lay['kernel'][:28]:<28} (not in the baseline)")
                continue
            before = sum(by_name[n]["instructions"] for n in names)
            ratio = lay["instructions"] / max(before, 1.0)
            flag = "  SLOWER" if ratio > 1 + tol else ""
            if flag:
                slower.append(lay["name"])
            out.append(f"  {'+'.join(names)[:22]:<22} {lay['kernel'][:28]:<28} {lay['macs']:>10,} {before:>12,.0f} "
                       f"{lay['instructions']:>12,.0f} {ratio:>12.3f}{flag}")
        out.append(f"  slower than the baseline: {', '.join(slower) if slower else 'none'}")
        out.append(f"{r['model']} per kernel type (insn/MAC, or insn per output byte for kernels without MACs)")
        kb, kn = per_kernel(b), per_kernel(r)
        for k in sorted(set(kb) | set(kn), key=lambda k: -kb.get(k, kn.get(k))["instructions"]):
            def fig(a):
                if a is None:
                    return f"{'-':>22}"
                w = a["macs"] or a["out_bytes"]
                return f"{a['instructions']:>13,.0f} {a['instructions'] / w:>8.2f}"
            out.append(f"  {k.removeprefix('te_')[:30]:<30} {fig(kb.get(k))}  -> {fig(kn.get(k))}")
        cb = b.get("code_bytes")
        out.append(f"  WHOLE MODEL insn/MAC {b['instructions'] / b['macs']:.3f} -> {r['instructions'] / r['macs']:.3f} "
                   f"(x{r['instructions'] / r['macs'] / 0.5:.2f} the 0.5 bound); code "
                   f"{cb if cb is not None else '?'} -> {r.get('code_bytes')} bytes")
    return out


if __name__ == "__main__":
    sys.exit(main())
