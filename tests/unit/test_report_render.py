"""The report renderers and the redaction every report goes through."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from deskprof.redact import scrub_sql, scrub_text, scrub_value
from deskprof.reporting.document import Embed, Figure, ReportDocument, Section, Table
from deskprof.reporting.html import render_html
from deskprof.reporting.markdown import pipe_table, render_markdown

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    "text",
    [
        f"postgresql://opendesk:{SECRET}@db.internal/opendesk",
        f"password={SECRET}",
        f"api_key: {SECRET}",
        f"Authorization: Bearer {SECRET}xyz123",
        f'{{"token": "{SECRET}"}}',
    ],
)
def test_scrub_text_masks_credentials(text):
    assert SECRET not in scrub_text(text)


def test_scrub_text_keeps_ordinary_prose():
    assert scrub_text("GET /tickets took 12 ms over 40 requests") == (
        "GET /tickets took 12 ms over 40 requests"
    )


def test_scrub_sql_replaces_literals_but_keeps_names_and_placeholders():
    sql = "SELECT t1.id FROM tickets t1 WHERE t1.title = 'it''s secret' AND t1.id > 42 AND x = ?"
    expected = "SELECT t1.id FROM tickets t1 WHERE t1.title = ? AND t1.id > ? AND x = ?"
    assert scrub_sql(sql) == expected


def test_scrub_value_drops_parameter_values_unless_kept():
    evidence = {"statement": "SELECT 1 WHERE a = 'x'", "parameters": '["alice@example.com"]'}
    scrubbed = scrub_value(evidence)
    assert scrubbed["parameters"] == "(redacted)"
    assert "'x'" not in scrubbed["statement"]
    kept = scrub_value(evidence, keep_parameters=True)
    assert kept["parameters"] == '["alice@example.com"]'


def _document() -> ReportDocument:
    finding = {
        "kind": "n_plus_one",
        "severity": "high",
        "endpoint": "GET /tickets",
        "title": "12 queries per request from one call site",
        "evidence": [{"fingerprint": "SELECT * FROM users WHERE id = ?", "repeats": 12}],
        "estimated_saving_ms": 33.5,
        "fix": "eager-load with selectinload",
    }
    table = Table("Endpoints", pd.DataFrame({"endpoint": ["GET /tickets"], "p50_ms": [12.25]}))
    png = Figure("tiny", "iVBORw0KGgo=")
    flame = Embed("CPU flame graph", '<!DOCTYPE html><script>var a = "<b>";</script>')
    section = Section(
        "capture-1", "Capture: baseline", facts=[("status", "complete")], findings=[finding],
        tables=[table], figures=[png], embeds=[flame], notices=["partial: target exited"],
    )  # fmt: skip
    return ReportDocument("deskprof report", "2026-11-24 12:00 UTC", [section])


def test_html_is_self_contained_and_escapes_the_embedded_document():
    html = render_html(_document())
    assert "<script src" not in html and "<link" not in html
    assert 'data-kind="n_plus_one"' in html
    assert 'srcdoc="&lt;!DOCTYPE html&gt;' in html  # the flame graph is an escaped srcdoc
    assert "12.2" in html and "partial: target exited" in html


def test_markdown_writes_assets_beside_the_file(tmp_path):
    out = tmp_path / "demo.md"
    text = render_markdown(_document(), out)
    assert "`n_plus_one`" in text and "| endpoint | p50_ms |" in text
    assert (tmp_path / "demo_files" / "capture-1-cpu-flame-graph.html").exists()
    assert (tmp_path / "demo_files" / "capture-1-tiny.png").exists()


def test_pipe_table_escapes_pipes():
    frame = pd.DataFrame({"a": ["x|y"], "b": [1.0]})
    assert "x\\|y" in pipe_table(frame)


def test_explain_plans_and_request_labels_lose_their_values():
    from deskprof.redact import request_name

    plan = "Seq Scan on tickets  Filter: ((title)::text ~~* '%SECRET-XYZ-123%'::text)"
    scrubbed = scrub_value({"plan": plan, "filter": plan, "plan_kind": "analyzed"})
    assert "SECRET-XYZ-123" not in json.dumps(scrubbed)
    assert scrubbed["plan_kind"] == "analyzed"
    assert request_name("GET /tickets?q=SECRET&page=2") == "GET /tickets?q=***&page=***"
    assert request_name("/articles?token=abc") == "/articles?token=***"
    assert request_name("GET /tickets/{id}") == "GET /tickets/{id}"


def test_capture_facts_say_how_requests_met_and_samples_were_attributed():
    from deskprof.reporting.build import _requests_text, _samples_text

    integrity = {
        "requests": {"workload_answered": 480, "matched": 476, "probe_seen": 490, "probe_only": 14},
        "samples": {"task": 30, "stack": 50, "time": 15, "none": 5, "note": "..."},
    }
    assert _requests_text(integrity) == (
        "476 of 480 answered matched to the probe's records (99.2%); "
        "490 recorded by the probe, 14 of them not from the workload"
    )
    assert _samples_text(integrity) == (
        "100 samples: by task 30%, by handler on the stack 50%, by time window 15%, "
        "not attributed 5%"
    )
    # idle threads belong to no request: the share is of the on-CPU samples when counted
    integrity["samples"]["on_cpu"] = {"task": 1, "stack": 2, "time": 0, "none": 1}
    assert _samples_text(integrity) == (
        "4 on-CPU samples: by task 25%, by handler on the stack 50%, by time window 0%, "
        "not attributed 25%"
    )
    assert _requests_text({}).startswith("not reconciled")
    assert _samples_text({"samples": {"task": 0, "note": "x"}}) == "no CPU samples"
