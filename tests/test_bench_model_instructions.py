"""benchmarks/model_instructions.py's bookkeeping: the per-layer before/after comparison (slower layers
flagged) and the code size read from a GNU ld map."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("model_instructions", ROOT / "benchmarks" / "model_instructions.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(insn: dict[str, float], code: int | None = None) -> dict:
    layers = [{"index": i, "name": n, "kernel": "te_add_s8" if n.endswith("add") else "te_conv_pointwise_s8",
               "macs": 0 if n.endswith("add") else 1000, "out_bytes": 100, "instructions": v}
              for i, (n, v) in enumerate(insn.items())]
    r = {"model": "m", "dsp": True, "macs": 2000, "instructions": sum(insn.values()), "layers": layers}
    if code is not None:
        r["code_bytes"] = code
    return r


def test_compare_flags_slower_layers_only():
    m = _bench()
    base = [_run({"a": 1000.0, "b": 2000.0, "b.add": 500.0}, 100)]
    now = [_run({"a": 1100.0, "b": 1500.0, "b.add": 500.0}, 140)]
    text = "\n".join(m.compare(base, now))
    assert "a " in text and "SLOWER" in text
    flagged = [ln for ln in text.splitlines() if ln.endswith("SLOWER")]
    assert len(flagged) == 1 and flagged[0].split()[0] == "a"
    assert "slower than the baseline: a" in text
    assert "code 100 -> 140 bytes" in text
    # per kernel type: pointwise 3000 -> 2600 instructions over 2000 MACs
    assert any("conv_pointwise_s8" in ln and "1.50" in ln and "1.30" in ln for ln in text.splitlines())
    assert "slower than the baseline: b" in "\n".join(m.compare(now, base))
    assert "slower than the baseline: none" in "\n".join(m.compare(base, base))


def test_compare_sums_the_layers_a_fused_layer_covers():
    m = _bench()
    base = [_run({"b": 2000.0, "b.add": 500.0})]
    now = _run({"b": 2400.0})
    now["layers"][0]["covers"] = ["b", "b.add"]
    text = "\n".join(m.compare(base, [now]))
    assert "SLOWER" not in text and "b+b.add" in text


def test_code_bytes_from_a_map():
    m = _bench()
    mp = """Discarded input sections
 .text.unused   0x00000000       0x40 obj/03_te_gemm.o
Linker script and memory map
 .text          0x00000100       0x20 obj/01_model.o
 .text.te_model_invoke
                0x00000120      0x1a4 obj/01_model.o
 .text.te_add_s8
                0x000002c4       0x90 obj/03_te_elementwise.o
 .text.main     0x00000354       0x30 obj/00_main.o
 .rodata        0x00000400      0x100 obj/01_model.o
"""
    assert m.code_bytes(mp, ["01_model.o", "03_te_elementwise.o"]) == 0x20 + 0x1A4 + 0x90
    assert m.code_bytes(mp, ["00_main.o"]) == 0x30
