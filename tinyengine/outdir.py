"""Output folders a command owns: nothing a user already has is overwritten, stale files of ours go.

A command that writes a folder (``tinyengine gen --out``, ``tinynas search --out``) first *claims* it:

- a folder that does not exist is created (and is then the command's);
- an empty folder is taken;
- a folder holding this command's manifest (``.tinyml-manifest.json``: every file the command wrote,
  with its SHA-256) is taken when every file in it is one the manifest lists, unchanged;
- anything else stops the command with one line naming a file it did not write (or one changed since
  it wrote it). ``--force`` writes anyway, but files the command did not write are never deleted.

When the command has written its files it *commits* them: the manifest is rewritten, and files of an
earlier run that this run no longer writes are removed when they still hold what we wrote (never a
file a user changed or added). A command that fails before writing anything *abandons* a folder it
created, so a bad input leaves no empty folder behind.

A command whose files are not known in advance (the search, which resumes from its own state) claims
with ``in_progress=True``: until it commits, files the manifest does not list are taken as the
interrupted run's own state.

Output *files* (``--json F``, ``--plot F``) are checked up front with :func:`check_output_file`.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from tinyml_errors import OutputError

MANIFEST = ".tinyml-manifest.json"
FORMAT = "tinyml-outdir/1"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(root: Path, ignore: tuple[str, ...]) -> list[str]:
    """Every file under ``root`` (relative POSIX paths), without the manifest and the ignored top-level
    folders (build outputs that tools other than ours write, e.g. ``build/`` and ``.pio/``)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if rel_dir == Path("."):
            dirnames[:] = [d for d in dirnames if d not in ignore]
        for f in filenames:
            rel = (rel_dir / f).as_posix()
            if rel != MANIFEST:
                out.append(rel)
    return sorted(out)


@dataclass
class OutputDir:
    """A claimed output folder (see the module doc); :meth:`commit` or :meth:`abandon` it."""

    root: Path
    tool: str
    created: bool
    previous: dict[str, str]                      # what the manifest listed (ours, as we wrote it)
    foreign: dict[str, str] = field(default_factory=dict)  # files not ours at claim time (only with force)
    ignore: tuple[str, ...] = ()

    def _write_manifest(self, files: dict[str, str], in_progress: bool) -> None:
        data = {"format": FORMAT, "tool": self.tool, "in_progress": in_progress, "files": files}
        try:
            (self.root / MANIFEST).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        except OSError as e:
            raise OutputError(f"{self.root}: cannot write {MANIFEST} ({e.strerror})") from None

    def commit(self, written: Iterable[str | Path] | None = None) -> list[str]:
        """Record what this run wrote (``written``; None: every file now in the folder that was not a
        foreign file left as it was) and remove stale files of ours. Returns the removed paths."""
        root = self.root.resolve()
        if written is None:
            now = _files(self.root, self.ignore)
            mine = [f for f in now if not (f in self.foreign and sha256(self.root / f) == self.foreign[f])]
        else:
            mine = sorted({Path(p).resolve().relative_to(root).as_posix() for p in written})
        files = {rel: sha256(self.root / rel) for rel in mine if (self.root / rel).is_file()}
        removed = []
        for rel, digest in self.previous.items():
            p = self.root / rel
            if rel not in files and p.is_file() and sha256(p) == digest:
                p.unlink()
                removed.append(rel)
                d = p.parent
                while d != self.root and d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
                    d = d.parent
        self._write_manifest(files, in_progress=False)
        return removed

    def abandon(self) -> None:
        """After a failure: remove the folder if this claim created it and nothing but the manifest is in it."""
        try:
            if self.created and self.root.is_dir() and [p.name for p in self.root.iterdir()] == [MANIFEST]:
                (self.root / MANIFEST).unlink()
                self.root.rmdir()
        except OSError:
            pass  # something appeared meanwhile: keep the folder rather than hide the original error


def _read_manifest(root: Path, flag: str) -> dict | None:
    m = root / MANIFEST
    if not m.exists():
        return None
    try:
        data = json.loads(m.read_text())
        if not (isinstance(data, dict) and data.get("format") == FORMAT and isinstance(data.get("tool"), str)
                and isinstance(data.get("files"), dict)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in data["files"].items())):
            raise ValueError("not a manifest of ours")
    except (OSError, ValueError, RecursionError) as e:
        raise OutputError(f"{flag} {root}: {MANIFEST} cannot be read ({e}); delete it to start over, or "
                          "choose a new folder") from None
    return data


def claim(path: str | Path, tool: str, *, force: bool = False, flag: str = "--out",
          ignore: tuple[str, ...] = (), in_progress: bool = False) -> OutputDir:
    """Claim ``path`` as ``tool``'s output folder (see the module doc); an OutputError otherwise."""
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise OutputError(f"{flag} {root}: exists and is not a folder (give a new or empty folder)")
    created = False
    if not root.exists():
        try:
            root.mkdir(parents=True)
        except OSError as e:
            raise OutputError(f"{flag} {root}: cannot create the folder ({e.strerror})") from None
        created = True
    elif not os.access(root, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {root}: the folder is not writable")
    man = None if created else _read_manifest(root, flag)
    if man is not None and man["tool"] != tool and not force:
        raise OutputError(f"{flag} {root}: holds the output of `{man['tool']}`, not `{tool}`; choose another "
                          "folder, or add --force to write over it (files we did not write are kept)")
    previous = dict(man["files"]) if man is not None and man["tool"] == tool else {}
    resuming = bool(man is not None and man["tool"] == tool and man.get("in_progress"))
    foreign: dict[str, str] = {}
    problems: list[str] = []
    for rel in ([] if created else _files(root, ignore)):
        if rel in previous:
            if sha256(root / rel) != previous[rel]:
                if resuming:  # rewritten by the interrupted run itself (a resumable run rewrites its state)
                    continue
                problems.append(f"{root / rel} was changed after `{tool}` wrote it")
                foreign[rel] = sha256(root / rel)
                del previous[rel]  # no longer ours: never removed
        elif not resuming:
            problems.append(f"{root / rel} was not written by `{tool}`")
            foreign[rel] = sha256(root / rel)
    if problems and not force:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise OutputError(f"{flag} {root}: {problems[0]}{more}; choose a new or empty folder, or add --force "
                          "to overwrite (files we did not write are never deleted)")
    od = OutputDir(root, tool, created, previous, foreign, ignore)
    od._write_manifest(previous, in_progress=in_progress or resuming)
    return od


def check_output_file(path: str | Path, flag: str) -> Path:
    """An output file's path, checked before any work: not a folder, and its folder exists or can be
    made and is writable. Creates the missing parent folders."""
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{flag} {p}: is a folder; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"{flag} {p}: {parent} is not a folder")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{flag} {p}: cannot create the folder {parent} ({e.strerror})") from None
    if not os.access(parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise OutputError(f"{flag} {p}: not writable")
    return p


def write_output(path: str | Path, data: str | bytes, flag: str) -> None:
    """Write an output file; an OutputError naming it instead of an OSError."""
    p = Path(path)
    try:
        if isinstance(data, bytes):
            p.write_bytes(data)
        else:
            p.write_text(data)
    except OSError as e:
        raise OutputError(f"{flag} {p}: cannot write ({e.strerror})") from None


__all__ = ["MANIFEST", "OutputDir", "claim", "check_output_file", "write_output"]
