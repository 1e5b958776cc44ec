"""Peak SRAM and flash of the zoo models from our planner, beside the figures MCUNet published.

    .venv/bin/python benchmarks/memory_vs_published.py [--json out.json]

Columns: our arena (in-place depthwise/add, input image and kernel scratch counted), our arena with
in-place off, TinyEngine's peak from its code generator (run by the reference's authors, where
known) and from the MCUNet README, TF-Lite Micro's published SRAM; flash: ours (int8 weights +
int32 bias + requant, no code) vs TinyEngine's (whole firmware). Ratios < 1 mean ours is smaller.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search_spaces.zoo import load_zoo, zoo_names  # noqa: E402
from tinyengine.analyze import analyze  # noqa: E402
from tinyengine.planner import PlanOptions  # noqa: E402


def _num(v):
    try:
        return float(str(v).split("(")[0])
    except ValueError:
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    rows = []
    hdr = (f"{'model':15s} {'R':>4s} {'MACs':>8s} | {'ours':>9s} {'no-inpl':>9s} {'TE codegen':>10s} "
           f"{'TE README':>9s} {'TFLM':>6s} | {'ours/TE':>7s} {'ours/TFLM':>9s} | {'flash':>8s} {'TE flash':>8s}")
    print(hdr)
    print("-" * len(hdr))
    for name in zoo_names():
        arch = load_zoo(name)
        a = analyze(arch)
        b = analyze(arch, PlanOptions(inplace_depthwise=False, inplace_add=False))
        pub = arch.meta.get("published", {})
        te_code = _num(pub.get("tinyengine_codegen_peak_B", "")) if pub.get("tinyengine_codegen_peak_B") else None
        te_readme = _num(pub.get("tinyengine_sram_kB", ""))
        te_old = _num(pub.get("tinyengine_sram_kB_old_readme", ""))
        if "suspect" in str(pub.get("tinyengine_sram_kB", "")) and te_old:
            te_readme = te_old  # the current README's figure is flagged as suspect in the source
        tflm = _num(pub.get("tflm_sram_kB", ""))
        te_ref = te_code if te_code else (te_readme * 1024 if te_readme else None)
        te_flash = _num(pub.get("tinyengine_flash_kB", ""))
        row = {"model": name, "resolution": arch.resolution, "macs": a.macs, "ours_peak_B": a.peak_sram,
               "ours_no_inplace_B": b.peak_sram, "tinyengine_codegen_peak_B": te_code,
               "tinyengine_readme_kB": te_readme, "tflm_kB": tflm,
               "ratio_vs_tinyengine": a.peak_sram / te_ref if te_ref else None,
               "ratio_vs_tflm": a.peak_sram / (tflm * 1024) if tflm else None,
               "ours_flash_B": a.flash_bytes, "tinyengine_flash_kB": te_flash}
        rows.append(row)
        f = lambda v, d=1: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
        print(f"{name:15s} {arch.resolution:4d} {a.macs / 1e6:7.1f}M | {a.peak_sram / 1024:7.1f}KB "
              f"{b.peak_sram / 1024:7.1f}KB {f(te_code and te_code / 1024):>8s}KB {f(te_readme, 0):>7s}KB "
              f"{f(tflm, 0):>4s}KB | {f(row['ratio_vs_tinyengine'], 2):>7s} {f(row['ratio_vs_tflm'], 2):>9s} | "
              f"{a.flash_bytes / 1024:6.0f}KB {f(te_flash, 0):>6s}KB")
    print("\nTE codegen: TinyEngine's generated peak (PEAK_MEM), known for mcunet-in3 and mcunet-vww1;"
          " ours/TE uses it where known, else the README figure (the older README's where the current"
          " one is flagged suspect: mcunet-in0/in1). Flash: ours excludes code.")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
