"""Run an experiment: bring both arms up, follow the plan trial by trial, summarise.

For each trial of the plan: switch arms if needed (leave the old, enter the new: a
change is reverted/applied), run a discarded warm-up after a switch, reset the declared
state, then drive the workload (Locust via ``deskprof.capturing.workload``; open loop at a
fixed arrival rate by default, so latency counts from the intended start) for the trial's
seconds while psutil watches the arm's processes. After the last trial the probe's
records are joined to the requests, every arm is left as it was found, and the result is
written. Ctrl-C or an arm that dies keeps the trials so far, marked partial.

A built-in scenario runs in one long-lived Locust process per arm, started with the arm
and stopped with it, idle between trials and handed each trial as a window (see
``deskprof.workloads.control``): no Locust start or log-in per trial. The warm-up after a
switch is the first part of the trial's window, discarded by intended start (its own
window before the reset when the design resets state). CPU and RSS are measured from the
start of the measured part until the window's last request is answered. A custom
locustfile cannot follow windows: it gets a new Locust process per trial and warm-up.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from deskprof import paths
from deskprof.bundle.writer import git_revision, host_facts
from deskprof.capturing.workload import ControlledLoad, WorkloadRun, WorkloadSpec, read_workload
from deskprof.errors import DeskprofError, OptionError
from deskprof.experiment.design import ARMS, BASELINE, CANDIDATE, Design
from deskprof.experiment.measure import (
    ALL,
    TRIAL_COLUMNS,
    ResourceMonitor,
    add_probe_metrics,
    probe_per_request,
    summarize_trial,
    wait_for_probe_flush,
)
from deskprof.experiment.result import ExperimentResult, verdict_table
from deskprof.experiment.stats import DEFAULT_THRESHOLD
from deskprof.experiment.variants import Arm, Variant, check_pair, start_arm

DEFAULT_RATE = 5.0  # requests/s: well below what the first version serves on one worker
PLAN_KEYS = ["trial", "block", "position", "arm", "pair"]
REQUEST_COLUMNS = ["trial", "arm", "name", "method", "intended_ns", "start_ns", "end_ns"]
REQUEST_COLUMNS += ["latency_ns", "status", "error", "request_id"]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Experiment:
    """Baseline vs candidate under one workload; ``run()`` returns an ExperimentResult.

    ``workload`` is a scenario name (``ticket_list``, ``mixed``...), a locustfile path or a
    ``WorkloadSpec``; a name runs open loop at ``rate`` requests/s. ``endpoints`` limits
    the verdict table (names or shell patterns). ``capture_arms`` takes one deskprof
    capture of each arm afterwards (for a differential flame graph and a query diff).
    """

    baseline: Variant
    candidate: Variant
    workload: WorkloadSpec | str = "mixed"
    rate: float = DEFAULT_RATE
    trial_s: float = 10.0
    design: Design = field(default_factory=Design)
    endpoints: list[str] | None = None
    threshold: float = DEFAULT_THRESHOLD
    out: Path | str | None = None
    label: str = ""
    capture_arms: bool = False
    allow_remote_load: bool = False
    progress: Callable[[str], None] | None = _stderr

    def spec(self) -> WorkloadSpec:
        if isinstance(self.workload, WorkloadSpec):
            spec = self.workload
        else:
            spec = WorkloadSpec(scenario=self.workload, rate=self.rate)
        spec.allow_remote = spec.allow_remote or self.allow_remote_load
        return spec

    def validate(self) -> None:
        if not 1 <= self.trial_s <= 3600:
            raise OptionError("{trial_s} must be between 1 and 3600", "trial_s")
        if not 0 <= self.threshold < 1:
            raise OptionError("{threshold} is a fraction: 0.02 means 2%", "threshold")
        self.design.validate()
        check_pair(self.baseline, self.candidate)
        spec = self.spec()
        for variant in (self.baseline, self.candidate):
            spec.validate(variant.url or "http://127.0.0.1")

    def say(self, line: str) -> None:
        if self.progress is not None:
            self.progress(line)

    def config(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "deskprof_revision": git_revision(Path(__file__).resolve().parent),
            "host": host_facts(),
            "baseline": self.baseline.describe(),
            "candidate": self.candidate.describe(),
            "workload": self.spec().describe(),
            "trial_s": self.trial_s,
            "design": self.design.describe(),
            "threshold": self.threshold,
            "endpoints": self.endpoints,
            "statistics": "ratio of trial medians, expanded bootstrap percentile 95% CI "
            "(pairs of adjacent trials when blocked); Wilcoxon signed-rank / Mann-Whitney U",
        }

    def _out_dir(self) -> Path:
        path = Path(self.out) if self.out is not None else paths.run_dir("experiments", self.label)
        if path.exists() and any(path.iterdir()):
            raise OptionError(f"{path} already holds files; choose a new {{out}} directory", "out")
        return path

    def run(self) -> ExperimentResult:
        """Run every trial of the plan; the result is saved under ``out`` and returned."""
        self.validate()
        out = self._out_dir()
        raw = out / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        config = self.config()
        plan = self.design.plan()
        spec = self.spec()
        arms: dict[str, Arm] = {}
        loads: dict[str, ControlledLoad] = {}
        summaries: list[pd.DataFrame] = []
        requests: list[pd.DataFrame] = []
        partial: list[str] = []
        active: Arm | None = None
        try:
            try:
                for role, variant in ((BASELINE, self.baseline), (CANDIDATE, self.candidate)):
                    arms[role] = start_arm(role, variant, raw, self.say)
            except DeskprofError:
                if not any(p.is_file() for p in out.rglob("*")):
                    shutil.rmtree(out, ignore_errors=True)  # nothing worth keeping
                raise
            for arm in arms.values():  # both arms start from the state without any change
                arm.leave()
            loads = self._start_loads(spec, arms, raw, len(plan))
            config["urls"] = {role: arm.url for role, arm in arms.items()}
            for row in plan.itertuples(index=False):
                arm = arms[row.arm]
                if active is not arm:
                    if active is not None:
                        active.leave()
                    arm.enter()
                    active = arm
                if row.arm in loads:
                    measured = self._windowed(loads[row.arm], arm, row)
                else:
                    if row.warmup:
                        warmup_raw = raw / f"warmup-{row.trial:03d}"
                        self._drive(spec, arm, self.design.warmup_s, warmup_raw)
                    if self.design.reset is not None:
                        self.design.reset(arm)
                    measured = self._per_process(spec, arm, raw / f"trial-{row.trial:03d}")
                summary, records = self._summarize(arm, row, *measured)
                summaries.append(summary)
                requests.append(records)
                if not arm.alive():
                    partial.append(f"{row.arm} target exited during trial {row.trial}")
                    break
            if self.capture_arms and not partial:
                config["captures"] = self._capture_arms(arms, spec, out, active)
                active = None
        except KeyboardInterrupt:
            partial.append(f"interrupted (Ctrl-C) after {len(summaries)} of {len(plan)} trials")
        except DeskprofError as exc:
            if len(arms) < len(ARMS):
                raise  # nothing measured yet: the one-line error is the whole story
            partial.append(f"stopped after {len(summaries)} of {len(plan)} trials: {exc}")
        finally:
            if active is not None:
                try:
                    active.leave()
                except DeskprofError as exc:
                    partial.append(str(exc))
            for load in loads.values():
                load.stop()
            for arm in arms.values():
                arm.stop()
        return self._finish(out, config, plan, summaries, requests, arms, partial)

    def _drive(self, spec: WorkloadSpec, arm: Arm, seconds: float, raw: Path) -> pd.DataFrame:
        run = WorkloadRun(spec, arm.url, seconds, raw).start()
        run.wait(seconds + 60)
        return read_workload(raw)

    def _start_loads(
        self, spec: WorkloadSpec, arms: dict[str, Arm], raw: Path, trials: int
    ) -> dict[str, ControlledLoad]:
        """One long-lived Locust per arm for a built-in scenario; none for a locustfile."""
        if not spec.is_builtin:
            self.say(
                "workload is a custom locustfile: it cannot follow trial windows, so every "
                "trial and warm-up starts its own Locust process (a few seconds each)"
            )
            return {}
        per_trial_s = self.trial_s + self.design.warmup_s + 30
        loads = {
            role: ControlledLoad(
                spec, arm.url, raw / f"load-{role}", max_s=trials * per_trial_s + 3600
            )
            for role, arm in arms.items()
        }
        started: dict[str, ControlledLoad] = {}
        try:
            for role, load in loads.items():
                started[role] = load.launch()
            for load in loads.values():
                load.wait_ready()
        except BaseException:
            for load in started.values():
                load.stop()
            raise
        return loads

    def _windowed(self, load: ControlledLoad, arm: Arm, row: Any) -> tuple:
        """One trial as a window of the arm's long-lived generator: (records, CPU s, RSS)."""
        warmup_s = self.design.warmup_s if row.warmup else 0.0
        if warmup_s and self.design.reset is not None:  # warm up, then reset, then measure
            load.wait_done(load.window(f"warmup-{row.trial:03d}", 0.0, warmup_s=warmup_s))
            warmup_s = 0.0
        if self.design.reset is not None:
            self.design.reset(arm)
        window = load.window(f"trial-{row.trial:03d}", self.trial_s, warmup_s=warmup_s)
        time.sleep(max(0.0, (window.measure_start_ns - time.time_ns()) / 1e9))
        monitor = ResourceMonitor(arm.all_pids()).start()
        load.wait_done(window)
        cpu_s, peak_rss = monitor.stop()
        return load.records(window), cpu_s, peak_rss

    def _per_process(self, spec: WorkloadSpec, arm: Arm, raw: Path) -> tuple:
        """One trial as its own Locust process: (records, CPU s, RSS)."""
        monitor = ResourceMonitor(arm.all_pids()).start()
        records = self._drive(spec, arm, self.trial_s, raw)
        cpu_s, peak_rss = monitor.stop()
        return records, cpu_s, peak_rss

    def _summarize(
        self, arm: Arm, row: Any, records: pd.DataFrame, cpu_s: float, peak_rss: float
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        summary = summarize_trial(records, cpu_s=cpu_s, peak_rss_bytes=peak_rss)
        for key in reversed(PLAN_KEYS):
            summary.insert(0, key, getattr(row, key))
        summary.insert(5, "variant", arm.name)
        records = records.assign(trial=row.trial, arm=row.arm)[REQUEST_COLUMNS]
        whole = summary[summary["endpoint"] == ALL]
        count, p50, errors = (
            (int(whole["requests"].iloc[0]), whole["p50_ms"].iloc[0], int(whole["errors"].iloc[0]))
            if len(whole)
            else (0, float("nan"), 0)
        )
        self.say(
            f"trial {row.trial + 1}/{self.design.trials()} block {row.block} {row.arm:<9} "
            f"{count:5d} requests, p50 {p50:7.1f} ms, errors {errors}"
        )
        return summary, records

    def _capture_arms(
        self, arms: dict[str, Arm], spec: WorkloadSpec, out: Path, active: Arm | None
    ) -> dict[str, str]:
        from deskprof.capturing.session import CaptureOptions, CaptureSession

        paths: dict[str, str] = {}
        for role in ARMS:
            arm = arms[role]
            pids = arm.target.pids if arm.target is not None else arm.pids
            if not pids:
                self.say(f"{role}: no PIDs known, not captured (give pids= for URL arms)")
                continue
            if active is not arm:
                if active is not None:
                    active.leave()
                arm.enter()
                active = arm
            options = CaptureOptions(
                url=arm.url,
                pids=list(pids),
                duration_s=self.trial_s,
                workload=spec,
                out=out / "captures" / role,
                label=f"{self.label}-{role}",
                progress=self.progress,
            )
            paths[role] = str(CaptureSession(options).run().path)
        if active is not None:
            active.leave()
        return paths

    def _finish(
        self,
        out: Path,
        config: dict[str, Any],
        plan: pd.DataFrame,
        summaries: list[pd.DataFrame],
        requests: list[pd.DataFrame],
        arms: dict[str, Arm],
        partial: list[str],
    ) -> ExperimentResult:
        columns = [*PLAN_KEYS, "variant", *TRIAL_COLUMNS]
        trials = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame()
        measured = pd.concat(requests, ignore_index=True) if requests else pd.DataFrame()
        trials = trials.reindex(columns=columns)
        if not measured.empty:
            wait_for_probe_flush()
            per_request = pd.concat(
                [probe_per_request(arm.probe_dir) for arm in arms.values()], ignore_index=True
            )
            trials = add_probe_metrics(trials, measured, per_request)[columns]
        if len(summaries) < len(plan) and not partial:
            partial.append(f"{len(summaries)} of {len(plan)} trials ran")
        verdicts = verdict_table(trials, threshold=self.threshold, endpoints=self.endpoints)
        config["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        result = ExperimentResult(
            trials=trials,
            verdicts=verdicts,
            config=config,
            requests=measured,
            status="partial" if partial else "complete",
            partial_reasons=partial,
        )
        result.save(out)
        self.say(f"result {out} ({result.status}{': ' + '; '.join(partial) if partial else ''})")
        return result


def flush_redis(url: str) -> Callable[[Any], None]:
    """A ``Design.reset`` for cold-cache experiments: FLUSHDB on ``url`` before each trial."""
    import redis

    def flush_redis_db(_arm: Any) -> None:
        client = redis.Redis.from_url(url, socket_timeout=10)
        try:
            client.flushdb()
        finally:
            client.close()

    flush_redis_db.__name__ = f"flush_redis({url})"
    return flush_redis_db
