"""Safe serialisation of the graph IR: one ``.npz`` file, no pickle (format ``tinyml-graph/1``).

A ``tinynas search`` hands its int8 model to ``tinyengine gen`` in this format; a search folder received
from someone else must not be able to run code when it is read, so the loader uses
``np.load(..., allow_pickle=False)`` and rebuilds the graph from plain data only.

Layout of the ``.npz`` archive (every member a plain NumPy array):

* ``graph.json``: uint8 array, the UTF-8 JSON ``{"format": "tinyml-graph/1", "name", "inputs",
  "outputs", "tensors": [{"name", "shape", "itemsize", "scale", "zero_point"}], "ops": [{"name",
  "kind", "inputs", "output", "role", "block", "attrs", "params": [key, ...]}]}``. Attribute values are
  JSON numbers, strings, booleans, null and lists; lists are read back as tuples (the IR's convention).
* ``op{i}/{key}``: the array ``params[key]`` of op ``i`` (int8 weights, int32 bias/mult/shift, float32
  scales and float weights), dtype kept.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from tinyengine.ir.graph import OP_KINDS, Graph, Op, Tensor
from tinyml_errors import ModelImportError, OutputError

FORMAT = "tinyml-graph/1"
_META = "graph.json"
_DTYPES = ("int8", "uint8", "int16", "int32", "int64", "float32", "float64", "bool")


def _plain(v, where: str):
    """An attribute value as JSON-able data (tuples -> lists, NumPy scalars -> Python numbers)."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, (tuple, list)):
        return [_plain(x, where) for x in v]
    raise OutputError(f"{where}: cannot save a value of type {type(v).__name__} in {FORMAT}")


def _tuples(v):
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def save_graph(graph: Graph, path: str | Path) -> Path:
    """Write ``graph`` (shapes, quantisation, params) to ``path`` (``.npz``); returns the path."""
    path = Path(path)
    ops, arrays = [], {}
    for i, op in enumerate(graph.ops):
        where = f"graph {graph.name}: op {i} '{op.name}'"
        attrs = {k: _plain(v, f"{where} attrs['{k}']") for k, v in op.attrs.items()}
        for k, a in op.params.items():
            a = np.asarray(a)
            if a.dtype.name not in _DTYPES:
                raise OutputError(f"{where}: params['{k}'] has dtype {a.dtype}, {FORMAT} takes {', '.join(_DTYPES)}")
            arrays[f"op{i}/{k}"] = a
        ops.append({"name": op.name, "kind": op.kind, "inputs": list(op.inputs), "output": op.output,
                    "role": op.role, "block": op.block, "attrs": attrs, "params": list(op.params)})
    meta = {"format": FORMAT, "name": graph.name, "inputs": list(graph.inputs), "outputs": list(graph.outputs),
            "tensors": [{"name": t.name, "shape": list(t.shape), "itemsize": t.itemsize,
                         "scale": None if t.scale is None else float(t.scale),
                         "zero_point": None if t.zero_point is None else int(t.zero_point)}
                        for t in graph.tensors.values()],
            "ops": ops}
    arrays[_META] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    tmp.replace(path)
    return path


def load_graph(path: str | Path) -> Graph:
    """Read a graph written by ``save_graph``. Nothing in the file is executed (no pickle); a file that
    is not in this format, truncated or inconsistent gives a ModelImportError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ModelImportError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            if _META not in z.files:
                raise ModelImportError(f"{path}: not a {FORMAT} file (no {_META} member)")
            meta = json.loads(z[_META].tobytes().decode())
            arrays = {k: z[k] for k in z.files if k != _META}
    except ModelImportError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, UnicodeDecodeError) as e:
        raise ModelImportError(f"{path}: not a readable {FORMAT} file (corrupt or truncated: "
                               f"{type(e).__name__}: {e})") from None
    try:
        return _from_meta(meta, arrays, path)
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, ModelImportError):
            raise
        raise ModelImportError(f"{path}: malformed {FORMAT} content ({type(e).__name__}: {e})") from None


def _from_meta(meta, arrays: dict, path: Path) -> Graph:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ModelImportError(f"{path}: format {got!r}, expected {FORMAT!r}")
    tensors = {}
    for t in meta["tensors"]:
        tensors[str(t["name"])] = Tensor(str(t["name"]), tuple(int(d) for d in t["shape"]), int(t["itemsize"]),
                                         None if t["scale"] is None else float(t["scale"]),
                                         None if t["zero_point"] is None else int(t["zero_point"]))
    ops = []
    for i, o in enumerate(meta["ops"]):
        if o["kind"] not in OP_KINDS:
            raise ModelImportError(f"{path}: op {i} '{o['name']}' has unknown kind {o['kind']!r} "
                                   f"(this version knows {', '.join(OP_KINDS)})")
        params = {}
        for k in o["params"]:
            key = f"op{i}/{k}"
            if key not in arrays:
                raise ModelImportError(f"{path}: op {i} '{o['name']}': array {key} is missing")
            params[str(k)] = arrays[key]
        ops.append(Op(str(o["name"]), str(o["kind"]), tuple(str(x) for x in o["inputs"]), str(o["output"]),
                      {str(k): _tuples(v) for k, v in o["attrs"].items()}, str(o["role"]),
                      None if o["block"] is None else int(o["block"]), params))
    g = Graph(str(meta["name"]), tensors, ops, [str(x) for x in meta["inputs"]], [str(x) for x in meta["outputs"]])
    for op in g.ops:
        for t in (*op.inputs, op.output):
            if t not in g.tensors:
                raise ModelImportError(f"{path}: op '{op.name}' uses tensor '{t}', which the file does not define")
    try:
        g.validate()
    except ValueError as e:
        raise ModelImportError(f"{path}: {e}") from None
    return g
