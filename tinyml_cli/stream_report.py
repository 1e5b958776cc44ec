"""``tinyengine analyze --stream``: the fused segments, their line buffers and the peak with and without."""
from __future__ import annotations

from rich.table import Table

from boards.units import format_size


def print_stream(console, an, san) -> None:
    """``an``: the layer-by-layer analysis; ``san``: the streamed one (tinyengine.analyze_stream)."""
    t = Table(title="fused streaming segments (row by row; intermediates in rings of rows)")
    for col, just in (("segment", "left"), ("ops", "right"), ("line buffers (rows x W x C)", "left"),
                      ("work", "right"), ("output", "left"), ("row calls", "right"), ("est. +insn", "right"), ("saves", "right")):
        t.add_column(col, justify=just)
    g = san.graph
    for s in san.segments:
        rings = ", ".join(f"{name} {r}x{g.tensors[name].shape[1]}x{g.tensors[name].shape[2]} = {b:,} B"
                          for name, (r, b) in s.rings.items())
        t.add_row(s.name, str(len(s.ops)), rings, f"{s.work_bytes:,}",
                  f"over '{s.inplace_of}'" if s.inplace_of else "own buffer",
                  f"{s.row_calls} (vs {s.layer_calls})", f"+{s.overhead_insn / 1e6:.2f}M", f"{s.saved_bytes:,} B")
    console.print(t)
    p, sp = an.plan, san.plan
    console.print(f"[bold]streamed[/] {len(san.segments)} segments: [bold]peak SRAM[/] "
                  f"{format_size(sp.peak_sram)} ({sp.peak_sram:,} B, peak at {g.ops[sp.peak_step].name}), "
                  f"{p.peak_sram / sp.peak_sram:.2f}x lower than without ({p.peak_sram:,} B)   extra MACs "
                  f"+{san.macs - an.macs} (each row computed once); estimated instruction overhead "
                  f"+{sum(s.overhead_insn for s in san.segments) / 1e6:.1f}M (Cortex-M4 fit, "
                  "tinyengine/passes/stream.py)")
