"""The project's error classes: one base for every problem a user can cause or fix.

``TinyMLError`` is what the command lines catch and print as one line (exit status 2 for a bad
input, or the status a subclass names). Anything else that escapes is a bug and is shown as one.
Each domain has its own subclass, so a caller can tell a bad board name from a model that does not
fit. This module is layer 0: it imports nothing of ours, and every package may import it.
"""

from __future__ import annotations


class TinyMLError(Exception):
    """A problem with what the user asked for or gave us (named, with where and what to do)."""

    exit_status = 2


class UsageError(TinyMLError):
    """A command-line value that makes no sense (a negative count, an unknown device, ...)."""


class UnitsError(TinyMLError):
    """A size or duration string that cannot be parsed (``320KB``, ``200ms``)."""


class ArchError(TinyMLError):
    """A malformed or impossible architecture description (our JSON or an MCUNet net.config)."""


class BoardError(TinyMLError):
    """A board name that does not exist, or a board file that is malformed."""


class ModelImportError(TinyMLError):
    """A model file (.tflite, .onnx, PyTorch, saved int8 graph) that cannot be read or uses what we lack."""


class GraphError(TinyMLError):
    """A graph that breaks the IR's rules (shapes, missing quantisation, unknown op)."""


class PlanError(TinyMLError):
    """The memory planner or a planning pass cannot place the graph as asked."""


class LoweringError(TinyMLError):
    """The graph or plan cannot be turned into kernel calls (unsupported op, missing quantisation...)."""


class LatencyError(TinyMLError):
    """A latency model or probe record that cannot be used (named, with the reason)."""


class ExportError(TinyMLError):
    """A model that cannot be written to another runtime's format."""


class DeployError(TinyMLError):
    """Building, flashing or emulating firmware failed, or a tool it needs is missing."""


class ProbeError(TinyMLError):
    """A request to a device failed; the message names the port and the command."""


class DatasetError(TinyMLError):
    """A dataset that cannot be found or read, or whose layout is wrong."""


class SearchError(TinyMLError):
    """No sub-network satisfies the constraints, or saved search state does not match the run."""


class OutputError(TinyMLError):
    """An output path we refuse to write (not ours, not writable, a file where a folder should be)."""


class StateError(TinyMLError):
    """Saved state (checkpoint, progress file) that cannot be read; the message says what to do."""
