"""Stopping the child processes deskprof starts (py-spy, Locust, a launched target)."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_gracefully(
    process: subprocess.Popen | None,
    sig: int = signal.SIGTERM,
    timeout_s: float = 15.0,
    *,
    kill_group: bool = False,
) -> None:
    """Send ``sig`` (py-spy and Locust write their output on SIGINT), wait, then kill.

    ``kill_group`` kills the whole process group on timeout, for children started with
    ``start_new_session=True`` that have children of their own.
    """
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        if kill_group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        process.wait()
