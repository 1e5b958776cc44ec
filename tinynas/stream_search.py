"""What a ``tinynas search --stream`` folder records about fused streaming (read by ``tinyengine gen``).

With ``--stream`` every SRAM check of the search counts the peak with fused streaming execution
(``tinyengine.cost.batch_costs`` / ``fast_costs`` with ``stream=True``), so the winner may fit only
when it runs streamed. Its ``arch.json`` says so in ``meta``: ``stream`` (true) and ``sram_limit`` (the
model's SRAM limit in bytes); ``codegen.search_folder.searched_stream`` reads them back.
"""
from __future__ import annotations

from tinynas.constraints import Constraints


def stream_meta(cons: Constraints) -> dict:
    """The architecture meta keys of a search under ``cons`` (none when it did not count streaming)."""
    if not cons.stream:
        return {}
    return {"stream": True, "sram_limit": int(cons.sram_bytes)}
