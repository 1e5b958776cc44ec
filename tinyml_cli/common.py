"""What both command lines share: one line for a user's mistake, a traceback only for a bug."""
from __future__ import annotations

import sys
from typing import Callable

from tinyml_errors import TinyMLError


def run_command(prog: str, cmd: str, fn: Callable[[], int], *, interrupted: str | None = None) -> int:
    """Run one subcommand. A :class:`TinyMLError` (a problem with the input, the board, the files...) is
    printed as one line and its exit status returned; so are a file that cannot be read or written
    (OSError, named) and an input nested too deeply to parse; Ctrl-C says how to carry on (exit 130).
    Any other exception is a bug in this program and propagates with its traceback."""
    def fail(msg: str, status: int = 2) -> int:
        print(f"{prog} {cmd}: {msg}", file=sys.stderr)
        return status

    try:
        return fn()
    except TinyMLError as e:
        return fail(f"error: {e}", e.exit_status)
    except OSError as e:  # a file we were given that cannot be read or written
        where = f"{e.filename}: " if e.filename else ""
        return fail(f"error: {where}{e.strerror or e}")
    except RecursionError:
        return fail("error: an input file is nested too deeply to read (JSON nesting of thousands of "
                    "levels); check the file")
    except KeyboardInterrupt:
        return fail(interrupted or "interrupted; run the same command again to redo it", 130)
