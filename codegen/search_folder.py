"""Checks for ``tinyengine gen SEARCH_DIR``: the folder's int8 model and its ``arch.json`` must come from
the same search, and options that only apply to a model we quantise ourselves are refused."""
from __future__ import annotations

from pathlib import Path

from search_spaces.arch import ArchConfig, ArchError
from tinyengine.ir.graph import Graph, build_graph
from tinyml_errors import UsageError

# options of `tinyengine gen` that a search folder's already trained and quantised model cannot use
QUANTISE_OPTIONS = (("weights", "--weights"), ("calib", "--calib"), ("calib_data", "--calib-data"))


def refuse_quantise_options(folder: Path, **given) -> None:
    """A UsageError for the first of --weights/--calib/--calib-data that was given (not None)."""
    for key, flag in QUANTISE_OPTIONS:
        if given.get(key) is not None:
            raise UsageError(f"{flag} {given[key]}: does not apply to the search folder {folder} (its int8 model "
                             "is already trained and quantised); drop it, or give the architecture JSON "
                             f"({folder / 'arch.json'}) as MODEL to quantise other weights")


def _layers(graph: Graph) -> list[tuple]:
    return [(o.kind, tuple(graph.tensors[o.output].shape), o.attrs.get("weight_shape")) for o in graph.ops]


def check_graph_matches_arch(graph: Graph, arch: ArchConfig, arch_file: Path, graph_file: Path) -> None:
    """An ArchError naming the first differing layer when ``graph`` is not the network ``arch`` describes."""
    want, have = _layers(build_graph(arch)), _layers(graph)
    for i, (w, h) in enumerate(zip(want, have)):
        if w != h:
            raise ArchError(f"{arch_file} does not describe {graph_file} (layer {i}: {w[0]} {w[1]} in the "
                            f"architecture, {h[0]} {h[1]} in the int8 model): the two come from different "
                            "searches; re-run the search or copy both files from one search folder")
    if len(want) != len(have):
        raise ArchError(f"{arch_file} does not describe {graph_file} ({len(want)} layers in the architecture, "
                        f"{len(have)} in the int8 model): the two come from different searches")


def searched_stream(arch: ArchConfig) -> tuple[bool, int | None]:
    """(relies on fused streaming, the search's SRAM limit in bytes) from a search's ``arch.json`` meta
    (``tinynas search --stream`` writes them, ``tinynas.stream_search``)."""
    meta = arch.meta or {}
    return bool(meta.get("stream", False)), meta.get("sram_limit")


def refuse_unstreamed(folder: Path, peak: int, limit: int | None) -> None:
    """A UsageError when ``--no-stream`` asks for a layer-by-layer plan whose peak exceeds the SRAM limit
    the folder's ``tinynas search --stream`` run searched under."""
    if limit is not None and peak > limit:
        raise UsageError(f"--no-stream: {folder} was searched with --stream (its SRAM limit {limit:,} B "
                         f"counts fused streaming); without streaming its peak is {peak:,} B, over that limit. "
                         "Drop --no-stream (gen streams a searched --stream folder by default)")
