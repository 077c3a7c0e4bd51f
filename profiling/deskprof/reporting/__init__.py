"""Shareable findings: captures and experiments as one self-contained HTML (or Markdown)
file that a colleague opens without Python.

    report(["data/captures/baseline", "data/experiments/eager"], "data/findings/x.html")
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from deskprof.bundle.reader import Capture
from deskprof.errors import DeskprofError
from deskprof.experiment.result import ExperimentResult
from deskprof.reporting.build import build_report
from deskprof.reporting.document import ReportDocument
from deskprof.reporting.html import render_html
from deskprof.reporting.markdown import render_markdown

FORMATS = ("html", "md")


def report(
    inputs: list[Capture | ExperimentResult | str | Path] | Capture | ExperimentResult | str | Path,
    out: str | Path,
    *,
    format: str | None = None,
    title: str = "deskprof findings",
    explain_url: str | Mapping[str, str] | None = None,
    app_packages: tuple[str, ...] = (),
) -> Path:
    """Write the report of ``inputs`` to ``out`` (format from the suffix unless given);
    returns the path written. ``app_packages``: see :func:`build_report`."""
    items = inputs if isinstance(inputs, list) else [inputs]
    target = Path(out)
    chosen = format or ("md" if target.suffix.lower() in (".md", ".markdown") else "html")
    if chosen not in FORMATS:
        raise DeskprofError(f"unknown report format {chosen!r}; choose html or md")
    document = build_report(items, title=title, explain_url=explain_url, app_packages=app_packages)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        text = render_html(document) if chosen == "html" else render_markdown(document, target)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise DeskprofError(f"cannot write the report to {target}: {exc.strerror}") from exc
    return target


__all__ = ["FORMATS", "ReportDocument", "build_report", "render_html", "render_markdown", "report"]
