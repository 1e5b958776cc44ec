"""Reading a JSON file a user gave us: every way it can fail is one error of the caller's domain that
names the file (missing, unreadable, not UTF-8, not valid JSON with line and column, nested too deeply
to parse), never a traceback."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tinyml_errors import TinyMLError


def read_json(path: str | Path, error: type[TinyMLError] = TinyMLError, *, what: str | None = None,
              missing: str | None = None) -> Any:
    """The parsed content of ``path``; ``error`` (a TinyMLError subclass) otherwise. ``what`` names the
    file in messages (default: the path), ``missing`` says what to do when it does not exist."""
    label = what or str(path)
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{label}: no such file" + (f" ({missing})" if missing else "")) from None
    except json.JSONDecodeError as e:
        raise error(f"{label}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or getattr(e, "reason", e)
        raise error(f"{label}: cannot read the file ({why})") from None
    except RecursionError:
        raise error(f"{label}: JSON nested too deeply to read") from None
