"""The manifest's overhead estimates: py-spy's CPU over the capture, memray's note."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

import psutil
import pytest

from deskprof.bundle.writer import BundleWriter
from deskprof.capturing.cpu_source import (
    CpuSource,
    SamplerMeter,
    process_cpu_seconds,
    sampler_overhead,
)
from deskprof.capturing.memory_source import BENCHMARK, overhead_estimate

SECOND = 1_000_000_000


def _meter(pid, start_cpu, end_cpu, seconds, start_ns=SECOND):
    return SamplerMeter(pid, start_cpu, start_ns, end_cpu, start_ns + int(seconds * SECOND))


def test_cpu_seconds_over_capture_seconds_summed_over_pyspy_processes():
    meters = [_meter(11, 0.5, 1.5, 10.0), _meter(12, 0.2, 0.7, 5.0)]
    estimate = sampler_overhead(meters, rate_hz=100)
    assert estimate["rate_hz"] == 100
    assert estimate["cpu_s"] == pytest.approx(1.5)
    assert estimate["capture_s"] == pytest.approx(10.0)  # the longest window
    assert estimate["cpu_fraction"] == pytest.approx(0.15)  # 1.5 s of CPU over 10 s
    # 100 Hz x 10 s + 100 Hz x 5 s = 1500 ticks for 1.5 s of CPU: 1 ms per tick
    assert estimate["us_per_tick"] == pytest.approx(1000.0)
    assert estimate["startup_cpu_s"] == pytest.approx(0.7)  # CPU before sampling began
    assert estimate["per_process"]["11"] == {
        "cpu_s": 1.0,
        "window_s": 10.0,
        "cpu_fraction": 0.1,
        "startup_cpu_s": 0.5,
    }
    assert estimate["per_process"]["12"]["cpu_fraction"] == pytest.approx(0.1)


def test_an_unreadable_pyspy_process_is_listed_and_left_out_of_the_sums():
    meters = [_meter(11, 0.5, 1.5, 10.0), SamplerMeter(12, 0.2, SECOND, None, 0)]
    estimate = sampler_overhead(meters, rate_hz=50)
    assert "error" in estimate["per_process"]["12"]
    assert estimate["cpu_s"] == pytest.approx(1.0)
    assert estimate["us_per_tick"] == pytest.approx(1.0 / 500 * 1e6)


def test_no_measurable_pyspy_process_says_so_instead_of_a_number():
    estimate = sampler_overhead([SamplerMeter(12)], rate_hz=100)
    assert "error" in estimate and "cpu_fraction" not in estimate


def test_a_clock_that_did_not_advance_is_not_a_division_by_zero():
    estimate = sampler_overhead([_meter(11, 0.1, 0.1, 0.0)], rate_hz=100)
    assert "error" in estimate


def test_cpu_of_a_real_busy_process_is_read_and_none_once_it_is_gone():
    spin = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass"
    child = subprocess.Popen([sys.executable, "-c", spin])
    try:
        meter = SamplerMeter.begin(child.pid)
        assert meter.start_cpu_s is not None and meter.process is not None
        time.sleep(0.3)
        meter.end()
        assert meter.end_cpu_s is not None and meter.end_cpu_s > meter.start_cpu_s
        assert meter.end_ns > meter.start_ns
    finally:
        child.wait(timeout=30)
    assert process_cpu_seconds(meter.process) is None
    assert sampler_overhead([meter], rate_hz=100)["cpu_s"] > 0


def test_process_cpu_counts_live_children():
    spin = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    parent_code = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-c', {spin!r}])\n"
        "time.sleep(5)\np.wait()"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    try:
        process = psutil.Process(parent.pid)
        deadline = time.monotonic() + 10
        while not process.children() and time.monotonic() < deadline:
            time.sleep(0.02)
        (child,) = process.children()
        while child.cpu_times().user + child.cpu_times().system < 0.2:
            time.sleep(0.02)
        own = process.cpu_times()
        assert process_cpu_seconds(process) >= own.user + own.system + 0.2
    finally:
        parent.kill()
        parent.wait()


def test_cpu_source_writes_its_estimate_before_reading_pyspy_files(tmp_path):
    source = CpuSource(SimpleNamespace(cpu_rate=100))
    source.meters = [_meter(11, 0.5, 0.75, 5.0)]
    writer = BundleWriter(tmp_path / "bundle")
    source.collect(writer, {"start_ns": 0, "end_ns": 1})
    cpu = writer.manifest["overhead"]["cpu"]
    assert cpu["cpu_fraction"] == pytest.approx(0.05) and cpu["rate_hz"] == 100


def test_memory_estimate_adds_write_rates_and_cites_the_benchmark_for_its_mode():
    estimate = overhead_estimate("full", [(10_000_000, 5.0), (4_000_000, 2.0), (0, 0.0)])
    assert estimate["mode"] == "full"
    assert estimate["bytes_written"] == 14_000_000
    assert estimate["bytes_per_s"] == 2_000_000 + 2_000_000
    assert estimate["tracked_s"] == 5.0
    assert estimate["benchmark"] == BENCHMARK["full"]
    assert f"x{BENCHMARK['full']['p50_ratio']}" in estimate["note"]
    assert "--memray-mode full" in estimate["note"]


def test_memory_estimate_without_a_benchmark_for_the_mode_says_so():
    estimate = overhead_estimate("native", [(1, -1.0)])  # detach before attach: clamped
    assert estimate["benchmark"] is None and "no benchmark figure" in estimate["note"]
    assert estimate["tracked_s"] == 0.0 and estimate["bytes_per_s"] == 0
