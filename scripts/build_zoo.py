"""Regenerate search_spaces/zoo/*.json from the public MCUNet net.config files (run once, by hand).

    python scripts/build_zoo.py ../shared/reference-models
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from search_spaces.reference import load_mcunet_json  # noqa: E402
from search_spaces.space import SearchSpace  # noqa: E402

ZOO = {  # our name: (file stem, net_id in published_numbers.csv)
    "mcunet-in0": "mcunet-10fps_imagenet", "mcunet-in1": "mcunet-5fps_imagenet",
    "mcunet-in2": "mcunet-256kb-1mb_imagenet", "mcunet-in3": "mcunet-320kb-1mb_imagenet",
    "mcunet-in4": "mcunet-512kb-2mb_imagenet", "mcunet-vww1": "mcunet-5fps_vww_RECONSTRUCTED",
    "mbv2-w0.35": "mbv2-w0.35-r144_imagenet", "proxyless-w0.3": "proxyless-w0.3-r176_imagenet",
}
KEEP = {"MACs_M": "macs_M", "params_M": "params_M", "README_SRAM_kB(TinyEngine F746; mcunet README HEAD)":
        "tinyengine_sram_kB", "oldREADME_TE_SRAM_kB(tinyml/mcunet README old ver.)": "tinyengine_sram_kB_old_readme",
        "README_Flash_kB": "tinyengine_flash_kB", "top1_int8": "top1_int8",
        "oldREADME_TFLM_SRAM_kB": "tflm_sram_kB", "codegen_PEAK_MEM_B(TinyEngine HEAD; run here)":
        "tinyengine_codegen_peak_B", "dataset": "dataset"}


def main(ref_dir: str) -> None:
    ref = Path(ref_dir)
    rows = {r["net_id"]: r for r in csv.DictReader(open(ref / "published_numbers.csv"))}
    space = SearchSpace()
    out = Path(__file__).resolve().parents[1] / "search_spaces" / "zoo"
    out.mkdir(exist_ok=True)
    for name, stem in ZOO.items():
        arch = load_mcunet_json(ref / f"{stem}.json", name=name)
        widths = (arch.stem_channels, arch.first_channels, *(s.out_channels for s in arch.stages))
        wm = next((w for w in space.width_choices if space.widths(w) == widths), None)
        meta = {"source": f"{stem}.json (MCUNet net.config, converted)"}
        meta["published"] = {v: rows[name][k] for k, v in KEEP.items() if rows.get(name, {}).get(k)}
        arch = type(arch)(**{**arch.__dict__, "width_mult": wm, "meta": meta})
        arch.save(out / f"{name}.json")
        print(name, arch.summary(), "W=", wm)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/reference-models")
