"""Render a ``ReportDocument`` as Markdown, for a ticket, a pull request or a wiki.

Markdown cannot carry scripts or reliably inline images, so plots are written as PNG
files and the flame graph as a standalone HTML file in ``<name>_files/`` beside the
Markdown, linked relatively: the folder and the file travel together.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pandas as pd

from deskprof import __version__
from deskprof.analysis.finding_text import (
    NO_FINDINGS,
    FindingText,
    findings_text,
    format_number,
    heading,
)
from deskprof.reporting.document import ReportDocument


def _escape(value: Any, column: str = "") -> str:
    text = value if isinstance(value, str) else _format(value, column)
    return text.replace("|", "\\|").replace("\n", " ")


def _format(value: Any, column: str = "") -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_number(value, column)
    return str(value)


def pipe_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a GitHub-flavoured pipe table."""
    if frame is None or frame.empty:
        return "_(no rows)_\n"
    header = "| " + " | ".join(_escape(str(c)) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    columns = [str(c) for c in frame.columns]
    body = [
        "| " + " | ".join(_escape(v, c) for v, c in zip(row, columns, strict=True)) + " |"
        for row in frame.itertuples(index=False, name=None)
    ]
    return "\n".join([header, rule, *body]) + "\n"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "item"


def _finding_item(t: FindingText) -> str:
    """One ranked finding as a list item (lines joined by Markdown hard breaks)."""
    lines = [f"{t.rank}. **{t.severity_label}** `{t.kind}` · **{t.where}** · {t.saving}"]
    lines += [f"   {t.title}"]
    lines += [f"   Evidence: {t.evidence}"] if t.evidence else []
    lines += [f"   Fix: {t.fix}"] if t.fix else []
    return "  \n".join(lines)


def render_markdown(document: ReportDocument, path: Path) -> str:
    """The Markdown text; plots and flame graphs are written into ``<stem>_files/``."""
    assets = path.parent / f"{path.stem}_files"
    out = [
        f"# {document.title}",
        "",
        f"Generated {document.generated} by deskprof {__version__}. "
        "Secrets and query parameter values are redacted.",
        "",
    ]
    for section in document.sections:
        out += [f"## {section.title}", ""]
        if section.lead:
            out += ["**What to fix first**", ""]
            out += [f"{i}. {_escape(line)}" for i, line in enumerate(section.lead, start=1)]
            out.append("")
        out += [f"- **{key}**: {_escape(value)}" for key, value in section.facts]
        if section.facts:
            out.append("")
        out += [f"> {notice}" for notice in section.notices]
        if section.notices:
            out.append("")
        if section.findings or section.section_id.startswith("capture"):
            out += [f"### {heading(len(section.findings))}", ""]
            out += [_finding_item(t) for t in findings_text(section.findings)]
            if not section.findings:
                out.append(NO_FINDINGS)
            out.append("")
        if section.by_design:
            out += ["### Paid on purpose (not findings)", ""]
            out += [f"- {_escape(line)}" for line in section.by_design]
            out.append("")
        for table in section.tables:
            out += [f"### {table.title}", ""]
            if table.note:
                out += [f"_{table.note}_", ""]
            out += [pipe_table(table.frame), ""]
        for embed in section.embeds:
            name = f"{section.section_id}-{_slug(embed.title)}.html"
            assets.mkdir(parents=True, exist_ok=True)
            (assets / name).write_text(embed.html, encoding="utf-8")
            out += [f"### {embed.title}", "", f"[open the interactive view]({assets.name}/{name})"]
            out += ([f"_{embed.note}_"] if embed.note else []) + [""]
        for figure in section.figures:
            name = f"{section.section_id}-{_slug(figure.title)}.png"
            assets.mkdir(parents=True, exist_ok=True)
            (assets / name).write_bytes(base64.b64decode(figure.png_base64))
            out += [f"![{figure.title}]({assets.name}/{name})", ""]
            if figure.note:
                out += [f"_{figure.note}_", ""]
    return "\n".join(out).rstrip() + "\n"
