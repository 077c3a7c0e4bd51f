"""What a report says, independent of how it is rendered.

Builders (``deskprof.reporting.build``) turn captures and experiment results into a
``ReportDocument``; renderers (``html``, ``markdown``) turn the document into a file.
Everything in a document has already been redacted (``deskprof.redact``), so a
renderer cannot leak what a builder dropped.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class Table:
    """A titled table; ``note`` says how its numbers were measured."""

    title: str
    frame: pd.DataFrame
    note: str = ""
    row_ids: list[str] = field(default_factory=list)  # anchors findings link to, per row


@dataclass
class Figure:
    """A plot embedded as PNG (base64), with the caption that says what it shows."""

    title: str
    png_base64: str
    note: str = ""

    @classmethod
    def from_matplotlib(cls, figure: Any, title: str, note: str = "", dpi: int = 90) -> Figure:
        """Render a matplotlib Figure (or an Axes' figure) to PNG and close it."""
        import matplotlib.pyplot as plt

        fig = getattr(figure, "figure", figure)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        return cls(title, base64.b64encode(buffer.getvalue()).decode("ascii"), note)


@dataclass
class Embed:
    """A self-contained HTML document (the interactive flame graph) shown in an iframe."""

    title: str
    html: str
    note: str = ""
    element_id: str = "flamegraph"


@dataclass
class Section:
    """One part of the report: a capture, or an experiment."""

    section_id: str
    title: str
    lead: list[str] = field(default_factory=list)  # numbered lines read first (summary)
    facts: list[tuple[str, str]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    by_design: list[str] = field(default_factory=list)  # costs paid on purpose, one line each
    # per finding (same order): the query rows and the flame graph search it links to
    finding_links: list[dict[str, Any]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    embeds: list[Embed] = field(default_factory=list)


@dataclass
class ReportDocument:
    title: str
    generated: str
    sections: list[Section] = field(default_factory=list)
