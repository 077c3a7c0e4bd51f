"""``deskprof check`` on real captures of the reference service: the example budgets pass
on every fix and fail on the first version, one line per breach; relative budgets call
an A/A pair no regression and the first version against the fixed one a regression."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from opendesk.redis_server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
BUDGETS = ROOT / "examples" / "budgets.toml"


def _deskprof(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deskprof", *args],
        capture_output=True, text=True, timeout=240, check=False, cwd=ROOT,
    )  # fmt: skip


def _capture(seeded: str, work: Path, name: str, fixes: str, redis_url: str) -> Path:
    database = work / f"{name}.sqlite3"
    shutil.copy(seeded.removeprefix("sqlite:///"), database)
    port = free_port()
    launch = (
        f"env OPENDESK_DATABASE_URL=sqlite:///{database} OPENDESK_REDIS_URL={redis_url} "
        f"OPENDESK_FIXES={fixes} {sys.executable} -m opendesk serve --port {port}"
    )
    bundle = work / name
    proc = _deskprof(
        "capture", "--url", f"http://127.0.0.1:{port}", "--launch", launch, "--sources", "sql",
        "--duration", "8", "--users", "3", "--workload", "ticket_list", "--out", str(bundle),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return bundle


@pytest.fixture(scope="module")
def captures(tmp_path_factory, seeded_sqlite: str, redis_url: str) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("budgets")
    return {
        name: _capture(seeded_sqlite, work, name, fixes, redis_url)
        for name, fixes in (("first", "none"), ("fixed", "all"), ("fixed_again", "all"))
    }


def test_the_example_budgets_pass_when_fixed_and_fail_on_the_first_version(
    captures, tmp_path
) -> None:
    passed = _deskprof("check", str(captures["fixed"]), "--budgets", str(BUDGETS))
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.strip().splitlines()[-1].startswith("PASS")
    report = tmp_path / "check.md"
    failed = _deskprof(
        "check", str(captures["first"]), "--budgets", str(BUDGETS), "--report", str(report)
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    breaches = [line for line in failed.stdout.splitlines() if line.startswith("BREACH")]
    assert any("GET /tickets  queries_per_request" in line for line in breaches), breaches
    assert failed.stdout.strip().splitlines()[-1].startswith("FAIL")
    assert "| **breach** | `GET /tickets` | queries_per_request |" in report.read_text()


def test_relative_budgets_see_no_regression_in_an_a_a_pair_but_one_in_the_first_version(
    captures,
) -> None:
    same = _deskprof(
        "check", str(captures["fixed_again"]), "--budgets", str(BUDGETS),
        "--baseline", str(captures["fixed"]),
    )  # fmt: skip
    assert same.returncode == 0, same.stdout + same.stderr
    worse = _deskprof(
        "check", str(captures["first"]), "--budgets", str(BUDGETS),
        "--baseline", str(captures["fixed"]),
    )  # fmt: skip
    assert worse.returncode == 1
    regressions = [line for line in worse.stdout.splitlines() if "regression" in line]
    assert any("GET /tickets  p95_ms" in line for line in regressions), worse.stdout


def test_a_bad_budgets_file_is_one_line_and_exit_2(captures, tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[endpoints."*"]\np95 = 100\n')
    proc = _deskprof("check", str(captures["fixed"]), "--budgets", str(bad))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "unknown metric 'p95'" in proc.stderr
