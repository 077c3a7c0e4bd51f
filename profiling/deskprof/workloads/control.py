"""Trial windows: how an experiment drives one long-lived Locust process per arm.

Starting Locust and logging its users in costs seconds; paying that for every trial and
warm-up made short experiments mostly start-up. Instead the runner starts one Locust
process per arm, which logs in, writes ``ready.json`` and idles, and then, for every
trial, drops a small control file into the process's directory: ``trial-007.json``
(a ``Window``: when to start, the discarded warm-up at its beginning, the measured
seconds, the arrival rate). The generator sends load for that window only, tags each
record with the window's label (and whether it fell in the warm-up, by its intended
start), waits for the window's requests to be answered (or records them as failed after
``drain_s``), flushes its records, and writes ``trial-007.done``.

Files are written whole and renamed into place, so a reader never sees half of one.
Standard library only: the runner (no gevent) and the locustfile both import this.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

READY = "ready.json"
CONTROL_ENV = "DESKPROF_CONTROL"  # "1": the locustfile waits for windows
LATE = "no response within {drain_s:g} s after the trial window ended"


@dataclass(frozen=True)
class Window:
    """One stretch of load: ``warmup_s`` discarded, then ``seconds`` measured."""

    label: str
    start_ns: int
    warmup_s: float
    seconds: float
    rate: float = 0.0  # arrivals per second (open loop); 0: closed-loop users
    drain_s: float = 30.0

    @property
    def measure_start_ns(self) -> int:
        return self.start_ns + int(self.warmup_s * 1e9)

    @property
    def end_ns(self) -> int:
        return self.measure_start_ns + int(self.seconds * 1e9)

    def tag(self, intended_ns: int) -> dict | None:
        """The record fields for a request intended at ``intended_ns``; None outside."""
        if not self.start_ns <= intended_ns < self.end_ns:
            return None
        return {"window": self.label, "warmup": intended_ns < self.measure_start_ns}

    def arrivals(self) -> list[int]:
        """Intended send times (epoch ns) of the open-loop arrivals: ``rate`` per second
        over warm-up and measured part, the first at ``start_ns``."""
        if self.rate <= 0:
            return []
        total_s = self.warmup_s + self.seconds
        count = int(total_s * self.rate + 1e-9)
        return [self.start_ns + int(k / self.rate * 1e9) for k in range(count)]


def _write_atomic(path: Path, body: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(body), encoding="utf-8")
    os.replace(tmp, path)


def write_window(directory: Path, window: Window) -> Path:
    """Hand ``window`` to the generator watching ``directory``."""
    path = Path(directory) / f"{window.label}.json"
    _write_atomic(path, asdict(window))
    return path


def read_window(path: Path) -> Window:
    return Window(**json.loads(Path(path).read_text(encoding="utf-8")))


def pending_windows(directory: Path, seen: set[str]) -> list[Path]:
    """Control files not handled yet, oldest first."""
    paths = [
        p
        for p in Path(directory).glob("*.json")
        if p.name != READY and not p.name.startswith(".") and p.stem not in seen
    ]
    return sorted(paths, key=lambda p: (p.stat().st_mtime_ns, p.name))


def done_path(directory: Path, label: str) -> Path:
    return Path(directory) / f"{label}.done"


def write_done(directory: Path, label: str, facts: dict) -> None:
    _write_atomic(done_path(directory, label), facts)


def write_ready(directory: Path, facts: dict) -> None:
    _write_atomic(Path(directory) / READY, facts)
