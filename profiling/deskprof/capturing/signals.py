"""How a capture stops when told to: SIGTERM and SIGHUP like Ctrl-C, and never twice.

While capturing, SIGINT, SIGTERM and SIGHUP end the window the same way (raised as
:class:`Interrupted`, a ``KeyboardInterrupt``), so every source, the load generator and a
launched target are stopped and what was captured is written, marked partial with the
signal's name. Once stopping has begun, further signals are noted and ignored: a second
Ctrl-C a moment after the first must not lose the tables being written.

Handlers can be set only from the main thread; elsewhere (a notebook running a capture
in a thread) the process's own handling is left as it is.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any

SIGNALS = tuple(
    s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None
)
NAMES = {signal.SIGINT: "Ctrl-C"}


class Interrupted(KeyboardInterrupt):
    """The capture was told to stop by ``signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def what(self) -> str:
        return NAMES.get(self.signum, signal.Signals(self.signum).name)


def signal_name(exc: BaseException) -> str:
    return exc.what if isinstance(exc, Interrupted) else "Ctrl-C"


def exit_code(signum: int | None) -> int:
    """The shell's convention: 128 + the signal number (130 for Ctrl-C)."""
    return 128 + (signum or signal.SIGINT)


class StopSignals:
    """Install on entry, restore on exit; ``shield()`` once stopping has begun."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.ignored = 0
        self._previous: dict[int, Any] = {}
        self._active = threading.current_thread() is threading.main_thread()

    def __enter__(self) -> StopSignals:
        if self._active:
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._interrupt)
        return self

    def _interrupt(self, signum: int, _frame: FrameType | None) -> None:
        self.received = self.received or signum
        raise Interrupted(signum)

    def _ignore(self, signum: int, _frame: FrameType | None) -> None:
        self.received = self.received or signum
        self.ignored += 1
        if self.ignored == 1:
            print(
                f"deskprof: {NAMES.get(signum, signal.Signals(signum).name)} ignored: "
                "stopping already, writing what was captured",
                file=sys.stderr,
                flush=True,
            )

    def shield(self) -> None:
        """From now on every stop signal is noted and ignored."""
        if self._active:
            for signum in SIGNALS:
                signal.signal(signum, self._ignore)

    def __exit__(self, *_exc: object) -> None:
        if self._active:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
