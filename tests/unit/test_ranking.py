"""Ranking that means what it says: severity from the figure the list is ranked by (total
saving as a share of the capture's request time), and deliberate costs (password hashing,
compression, TLS) recognised as "by design" rather than proposed for a rewrite."""

from __future__ import annotations

from deskprof.analysis.deliberate import deliberate_cost
from deskprof.analysis.finding import Finding, Thresholds, grade, rank


def _finding(kind: str, saving: float, requests: int, severity: str = "low") -> Finding:
    return Finding(kind, severity, "GET /x", kind, [{}], saving, "fix", requests)


def test_severity_follows_the_total_saving_so_no_high_ranks_below_a_low() -> None:
    big = _finding("n_plus_one", 2.0, 500, severity="low")  # 1000 ms of 10 s: 10%
    small = _finding("slow_query", 50.0, 2, severity="high")  # 100 ms: 1%
    tiny = _finding("missing_index", 0.1, 10, severity="high")  # 1 ms
    memory = _finding("memory_peak", 0.0, 0, severity="high")
    ranked = rank(grade([tiny, small, memory, big], 10_000.0, Thresholds()))
    assert [f.kind for f in ranked] == ["n_plus_one", "slow_query", "missing_index", "memory_peak"]
    assert [f.severity for f in ranked] == ["high", "medium", "low", "medium"]
    assert big.evidence[0]["share_of_all_request_time"] == 0.1
    order = {"high": 0, "medium": 1, "low": 2}
    timed = [order[f.severity] for f in ranked if f.estimated_saving_ms > 0]
    assert timed == sorted(timed)


def test_without_request_time_the_detectors_severities_stand() -> None:
    finding = _finding("slow_query", 5.0, 3, severity="high")
    assert grade([finding], 0.0, Thresholds())[0].severity == "high"


def test_deliberate_costs_are_named_from_frames_and_source_lines(tmp_path) -> None:
    auth = tmp_path / "auth.py"
    auth.write_text("def login(body, user):\n    return bcrypt.checkpw(body, user)\n")
    assert deliberate_cost({f"login ({auth}:2)": 90, "render (app/views.py:3)": 10}) == (
        "password hashing"
    )
    assert deliberate_cost({"pbkdf2_hmac (<built-in>)": 8, "x (a.py:1)": 2}) == "password hashing"
    assert deliberate_cost({"compress (zlib)": 6, "x (a.py:1)": 4}) == "compression"
    # a minority of the hot spot, or words that only contain the names: not by design
    assert deliberate_cost({"checkpw (bcrypt/__init__.py:3)": 40, "loop (a.py:1)": 60}) == ""
    assert deliberate_cost({"compress_report (app/reports.py:9)": 10}) == ""


def test_a_function_that_writes_a_csv_is_an_export_by_design(tmp_path) -> None:
    """A streaming export's own CPU (building rows, formatting dates, writerow) is what
    the endpoint is for, whichever of its lines the samples fall on."""
    export = tmp_path / "export.py"
    export.write_text(
        "import csv\n\ndef stream(rows, out):\n    writer = csv.writer(out)\n"
        "    for row in rows:\n        writer.writerow([iso(v) for v in row])\n\n"
        "def other(rows):\n    return sum(rows)\n"
    )
    leaves = {f"stream ({export}:6)": 30, f"stream ({export}:5)": 40}
    assert deliberate_cost(leaves, f"stream ({export})") == "CSV serialization"
    assert deliberate_cost({f"other ({export}:9)": 10}, f"other ({export})") == ""
    # a helper the export calls per cell (a date formatter) is the export's work too
    helper = f"iso ({tmp_path / 'dates.py'})"
    assert deliberate_cost({}, helper, [f"stream ({export}:6)"]) == "CSV serialization"
    assert deliberate_cost({}, helper, [f"other ({export}:9)"]) == ""
