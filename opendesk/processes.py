"""Child processes that die with their parent.

``serve`` starts helpers (a Redis server, the notification worker). If ``serve`` itself
is killed without a chance to clean up, Linux's parent-death signal still stops them,
so nothing is left listening on the machine.
"""

from __future__ import annotations

import ctypes
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen`` (None where prctl does not exist)."""
    if not sys.platform.startswith("linux"):
        return None

    def _preexec() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return _preexec


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so ``finally`` blocks run (uvicorn re-raises the
    signal it caught once it has shut down, after restoring the previous handler)."""

    def _raise(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)
