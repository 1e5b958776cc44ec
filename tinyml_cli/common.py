"""What both command lines share: one line for a user's mistake, a traceback only for a bug."""
from __future__ import annotations

import sys
from typing import Callable

from tinyml_errors import TinyMLError


def run_command(prog: str, cmd: str, fn: Callable[[], int]) -> int:
    """Run one subcommand. A :class:`TinyMLError` (a problem with the input, the board, the files...) is
    printed as one line and its exit status returned; Ctrl-C says how to carry on (exit 130); any other
    exception is a bug in this program and propagates with its traceback."""
    try:
        return fn()
    except TinyMLError as e:
        print(f"{prog} {cmd}: error: {e}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        print(f"{prog} {cmd}: interrupted (run the same command again to resume where it can)", file=sys.stderr)
        return 130
