"""Committed notebooks are clean: no outputs, no execution counts, and a first code cell
tagged ``parameters`` so papermill (and staging runs) can set them.

Strip outputs with ``.venv/bin/python scripts/strip_notebooks.py``.
"""

from __future__ import annotations

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
