"""One self-contained HTML document per flame graph, and its notebook display.

The page inlines everything it needs (d3, d3-flame-graph, our script and style, the data),
so it opens from disk, from an e-mail attachment or inside the report with no network.
In Jupyter it is shown in an ``<iframe srcdoc>``: its scripts run in their own document,
untouched by (and not touching) the notebook's own JavaScript and CSS.
"""

from __future__ import annotations

import html
import json
import os
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

VENDORED_SCRIPTS = ("d3.min.js", "d3-flamegraph.umd.min.js")
OWN_SCRIPT = "deskprof-flame.js"
STYLE = "deskprof-flame.css"
TEMPLATE = "flamegraph.html"
_PLACEHOLDER = re.compile(r"\{\{(TITLE|SUBTITLE|MODE|STYLE|DATA|SCRIPTS)\}\}")


@cache
def asset(name: str) -> str:
    """The text of a file in ``deskprof/views/assets`` (package data)."""
    return resources.files("deskprof.views").joinpath("assets", name).read_text("utf-8")


def _inline_script(source: str) -> str:
    # "</script" inside a script would end it early; "<\/" means the same to JavaScript.
    return "<script>\n" + source.replace("</script", "<\\/script") + "\n</script>"


def embed_json(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&``
    can close the element or start a comment (they become ``\\u003c``... escapes)."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_document(*, mode: str, title: str, subtitle: str, data: dict[str, Any]) -> str:
    """The whole page: ``mode`` is ``profile`` or ``diff``; ``data`` is what
    ``deskprof-flame.js`` reads (see :mod:`deskprof.views.flamegraph`)."""
    scripts = [asset(name) for name in VENDORED_SCRIPTS] + [asset(OWN_SCRIPT)]
    replacements = {
        "TITLE": html.escape(title),
        "SUBTITLE": html.escape(subtitle),
        "MODE": html.escape(mode),
        "STYLE": asset(STYLE),
        "DATA": embed_json({**data, "mode": mode}),
        "SCRIPTS": "\n".join(_inline_script(s) for s in scripts),
    }
    # One pass: text substituted in (data, scripts) is never scanned for placeholders.
    return _PLACEHOLDER.sub(lambda m: replacements[m[1]], asset(TEMPLATE))


class HtmlView:
    """A rendered flame graph: shows itself in a notebook and saves itself as a file.

    ``html`` is the standalone document; ``height`` the iframe height in the notebook."""

    def __init__(self, html_document: str, *, height: int = 640) -> None:
        self.html = html_document
        self.height = height

    def _repr_html_(self) -> str:
        return (
            f'<iframe srcdoc="{html.escape(self.html, quote=True)}" '
            f'style="width:100%;height:{self.height}px;border:1px solid #ddd" '
            'sandbox="allow-scripts" loading="lazy"></iframe>'
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the standalone HTML file; returns its path."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(self.html, encoding="utf-8")
        return out

    def __len__(self) -> int:
        return len(self.html)
