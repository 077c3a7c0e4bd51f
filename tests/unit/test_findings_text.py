"""The words of a finding, said once: the command line, Markdown and HTML all show the
pieces ``deskprof.analysis.finding_text`` makes."""

from __future__ import annotations

from deskprof.analysis.finding import Finding
from deskprof.analysis.finding_text import (
    NO_FINDINGS,
    evidence_summary,
    finding_text,
    heading,
    plain_text,
    skip_line,
)
from deskprof.cli.findings import render_text
from deskprof.reporting.document import ReportDocument, Section
from deskprof.reporting.html import render_html
from deskprof.reporting.markdown import render_markdown

CHURN = Finding(
    "connection_churn", "medium", "", "Connection churn: 1.00 new connections per request",
    [{"connects_per_request": 1.0, "plan": "long", "note": "x" * 200}], 2.5, "Keep a pool", 9,
)  # fmt: skip
SKIPS = [
    {"detector": "cpu_hotspot", "reason": "no samples, stacks in this capture"},
    {"detector": "missing_index", "statement": "fp1", "reason": "syntax error"},
]


def test_pieces_of_a_finding_and_of_its_dict_agree() -> None:
    text = finding_text(CHURN, 1)
    assert text == finding_text(CHURN.to_dict(), 1)
    assert text.where == "(all endpoints)" and text.severity_label == "MEDIUM"
    assert text.saving == "≈ 22.5 ms in total (2.50 ms per request x 9 requests)"
    assert "plan=" not in text.evidence and text.evidence.startswith("connects_per_request=1;")
    assert text.evidence.endswith("...")
    assert evidence_summary([]) == ""


def test_skip_lines_say_not_run_and_not_checked() -> None:
    assert skip_line(SKIPS[0]) == "not run: cpu_hotspot: no samples, stacks in this capture"
    assert skip_line(SKIPS[1]) == "not checked: missing_index: fp1: syntax error"


def test_cli_markdown_and_html_show_the_same_words(tmp_path) -> None:
    text = finding_text(CHURN, 1)
    printed = render_text([CHURN], SKIPS)
    assert printed == plain_text([CHURN], SKIPS)
    assert printed.startswith(heading(1) + ":")
    assert "1. [MEDIUM] connection_churn · (all endpoints)" in printed and "fix: " in printed
    assert printed.rstrip().endswith(skip_line(SKIPS[1]))
    section = Section("capture-1", "Capture", findings=[CHURN.to_dict()])
    document = ReportDocument("r", "now", [section])
    markdown = render_markdown(document, tmp_path / "r.md")
    page = render_html(document)
    for words in (heading(1), text.where, text.saving, text.title, text.fix):
        assert words in printed and words in markdown and words in page, words
    assert f"Evidence: {text.evidence}" in markdown


def test_no_findings_reads_the_same_everywhere(tmp_path) -> None:
    assert plain_text([], []) == NO_FINDINGS + "\n"
    document = ReportDocument("r", "now", [Section("capture-1", "Capture")])
    assert NO_FINDINGS in render_markdown(document, tmp_path / "r.md")
    assert NO_FINDINGS in render_html(document)
