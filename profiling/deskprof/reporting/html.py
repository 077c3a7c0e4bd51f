"""Render a ``ReportDocument`` as one self-contained HTML file.

No network: styles are inline, plots are PNG data URIs and the flame graph is its own
self-contained document inside a sandboxed ``<iframe srcdoc>``, so the file opens from
disk, from an e-mail attachment or from a ticket, with no Python and no server.
"""

from __future__ import annotations

import json
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup, escape

from deskprof import __version__
from deskprof.analysis.finding_text import NO_FINDINGS, findings_text, format_number, heading
from deskprof.reporting.document import ReportDocument

MAX_EVIDENCE_ROWS = 20

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("deskprof.reporting", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def frame_html(frame: pd.DataFrame, row_ids: list[str] | None = None) -> Markup:
    """A DataFrame as an escaped HTML table (numbers formatted for reading); ``row_ids``
    gives each body row an ``id`` a finding can link to."""
    if frame is None or frame.empty:
        return Markup('<p class="note">(no rows)</p>')
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_numeric_dtype(shown[column]) and not pd.api.types.is_bool_dtype(
            shown[column]
        ):
            shown[column] = shown[column].map(lambda v, c=str(column): format_number(v, c))
    html = shown.to_html(index=False, escape=True, classes="data", border=0)
    if row_ids:
        head, _, body = html.partition("<tbody>")
        rows = body.split("<tr>")
        for i, row_id in enumerate(row_ids[: len(rows) - 1], start=1):
            rows[i] = f' id="{escape(row_id)}">' + rows[i]
        body = "<tr".join([rows[0], *rows[1:]]) if len(rows) > 1 else body
        html = f"{head}<tbody>{body}"
    return Markup(html)


def total_ms(finding: dict[str, Any]) -> str:
    """A finding's total saving over its capture, what the list is ranked by."""
    per = float(finding.get("estimated_saving_ms") or 0.0)
    return f"{per * max(int(finding.get('affected_requests') or 0), 1):.3f}"


def _cell(value: Any, key: str = "") -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_number(value, key)
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)[:400]
    return str(value)


def evidence_table(rows: list[dict[str, Any]]) -> Markup:
    """Evidence rows (dicts) as a table with the union of their keys as columns."""
    shown = rows[:MAX_EVIDENCE_ROWS]
    keys: list[str] = []
    for row in shown:
        keys.extend(k for k in row if k not in keys)
    frame = pd.DataFrame([{k: _cell(row.get(k, ""), k) for k in keys} for row in shown])
    html = frame_html(frame)
    if len(rows) > MAX_EVIDENCE_ROWS:
        html += Markup(f'<p class="note">{len(rows) - MAX_EVIDENCE_ROWS} more rows not shown</p>')
    return html


def render_html(document: ReportDocument) -> str:
    """The report as one HTML page; findings are worded by ``finding_text`` (escaped by
    the template) and their evidence shown as a table."""
    template = _ENV.get_template("report.html.j2")
    return template.render(
        doc=document,
        version=__version__,
        frame_html=frame_html,
        evidence_table=evidence_table,
        findings_text=findings_text,
        findings_heading=heading,
        total_ms=total_ms,
        no_findings=NO_FINDINGS,
    )
