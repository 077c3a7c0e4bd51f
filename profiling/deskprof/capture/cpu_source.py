"""The ``cpu`` source: py-spy on every target PID for the capture window."""

from __future__ import annotations

from typing import Any

from deskprof.capture.cpu import CpuRecorder
from deskprof.capture.sources import Source
from deskprof.capture.stacks import StackTable


class CpuSource(Source):
    name = "cpu"

    def __init__(self, options: Any) -> None:
        self.options = options
        self.recorders: list[CpuRecorder] = []

    def start(self, target: Any, writer: Any) -> None:
        for pid in target.pids:
            # --subprocesses follows uvicorn/gunicorn workers of a supervisor PID
            recorder = CpuRecorder(pid, writer.raw, self.options.cpu_rate, subprocesses=True)
            self.recorders.append(recorder.start())

    def stop(self) -> None:
        for recorder in self.recorders:
            recorder.stop()

    def collect(self, writer: Any, context: dict[str, Any]) -> list[str]:
        stacks: StackTable = context.setdefault("stacks", StackTable())
        frames, reasons = [], []
        anchors = writer.manifest.setdefault("clock", {}).setdefault("anchors", {})
        for recorder in self.recorders:
            result = recorder.result(stacks)
            frames.append(result.samples)
            anchors[f"py-spy:{recorder.pid}"] = {
                "ts_zero_ns": result.anchor_ns,
                "uncertainty_ms": result.anchor_uncertainty_ms,
                "note": "py-spy ts=0 taken as the wall-clock time just before it was spawned",
            }
            if result.partial_reason:
                reasons.append(result.partial_reason)
        if frames:
            import pandas as pd

            writer.write_table("samples", pd.concat(frames, ignore_index=True))
            writer.write_table("stacks", stacks.to_frame())
        writer.manifest.setdefault("sources", {})["cpu"] = {
            "tool": "py-spy record --nonblocking --idle --subprocesses --format chrometrace",
            "rate_hz": self.options.cpu_rate,
            "state": "leaf-frame classification (deskprof.capture.cpu.WAIT_LEAVES)",
        }
        return reasons
