"""Committed notebooks are clean: no outputs, no execution counts, and a first code cell
tagged ``parameters`` so papermill (and staging runs) can set them.

Strip outputs with ``.venv/bin/python scripts/strip_notebooks.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stripped_and_parametrised(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code cell"
    assert "parameters" in code[0].metadata.get("tags", []), (
        f"{path.name}: the first code cell must be tagged 'parameters' (papermill)"
    )
    dirty = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
    assert not dirty, (
        f"{path.name}: code cells {dirty} hold outputs or execution counts; run "
        "scripts/strip_notebooks.py"
    )
    assert "papermill" not in notebook.metadata, f"{path.name} is an executed copy"


# --- notebooks are lessons, not code: the library does the work -------------------------------

ALLOWED_IMPORTS = {"deskprof", "deskprof.lab"}
MAX_CELL_LINES = 15


def cell_code(source: str) -> str:
    """A code cell's source as Python: IPython magics (``%``, ``%%``) and shell escapes
    (``!``) become blank lines, so ``ast`` parses the rest and line numbers stay."""
    lines = source.splitlines()
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


def rule_breaks(source: str) -> list[str]:
    """What one code cell does that a notebook must not: import anything but ``deskprof``
    and ``deskprof.lab`` (as ``import deskprof`` / ``from deskprof import lab``), define a
    function or class, or run over ``MAX_CELL_LINES`` lines."""
    found = []
    if len(source.splitlines()) > MAX_CELL_LINES:
        found.append(f"{len(source.splitlines())} lines (at most {MAX_CELL_LINES})")
    for node in ast.walk(ast.parse(cell_code(source))):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name not in ALLOWED_IMPORTS]
        elif isinstance(node, ast.ImportFrom):
            names = {f"{node.module}.{a.name}" for a in node.names}
            if node.level or node.module != "deskprof" or not names <= ALLOWED_IMPORTS:
                spelled = ", ".join(a.name for a in node.names)
                found.append(f"from {'.' * node.level}{node.module or ''} import {spelled}")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            kind = {ast.ClassDef: "class"}.get(type(node), "def")
            found.append(f"{kind} {node.name}")
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import deskprof\nfrom deskprof import lab\n", []),
        ("%matplotlib inline\n!ls\nimport deskprof", []),
        ("import pandas as pd", ["import pandas"]),
        ("from deskprof.analysis import detect_all", ["from deskprof.analysis import detect_all"]),
        ("from deskprof import lab, schema", ["from deskprof import lab, schema"]),
        ("from . import lab", ["from . import lab"]),
        ("if x:\n    import httpx", ["import httpx"]),
        ("def arm():\n    pass", ["def arm"]),
        ("async def go():\n    pass", ["def go"]),
        ("class Probe:\n    pass", ["class Probe"]),
        ("x = 1\n" * 16, ["16 lines (at most 15)"]),
        ("x = 1\n" * 15, []),
    ],
)
def test_the_notebook_rules_catch_each_break(source: str, expected: list[str]) -> None:
    assert rule_breaks(source) == expected


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_imports_only_deskprof_and_defines_nothing(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    breaks = {
        i: rule_breaks(cell.source)
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
    }
    breaks = {i: found for i, found in breaks.items() if found}
    assert not breaks, (
        f"{path.name}: cells break the notebook rules (import only deskprof and "
        f"deskprof.lab, no def or class, at most {MAX_CELL_LINES} lines; move code into "
        f"deskprof.lab): {breaks}"
    )
