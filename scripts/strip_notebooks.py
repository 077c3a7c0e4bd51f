"""Strip outputs, execution counts and run metadata from notebooks before commit.

    .venv/bin/python scripts/strip_notebooks.py            # every notebooks/*.ipynb
    .venv/bin/python scripts/strip_notebooks.py FILE...    # these
    .venv/bin/python scripts/strip_notebooks.py --check    # exit 1 if any needs it

Keeps cell tags (``parameters``) and the notebook-level ``deskprof`` metadata the test
harness reads; drops what papermill and Jupyter add when running (``papermill``,
``execution``, widget state).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
RUN_METADATA = ("papermill", "execution", "widgets", "collapsed", "scrolled")


def strip(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook without outputs and run metadata (modified in place and returned)."""
    for key in RUN_METADATA:
        notebook.metadata.pop(key, None)
    for cell in notebook.cells:
        for key in RUN_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if dirty")
    args = parser.parse_args(argv)
    paths = args.paths or sorted((ROOT / "notebooks").glob("*.ipynb"))
    dirty = []
    for path in paths:
        if path.suffix != ".ipynb":
            continue  # so `strip_notebooks.py notebooks/*` can be given the README too
        try:
            before = path.read_text(encoding="utf-8")
            notebook = strip(nbformat.reads(before, as_version=4))
        except (OSError, UnicodeDecodeError, nbformat.reader.NotJSONError) as exc:
            print(f"{path}: not a readable notebook ({type(exc).__name__}); fix or remove it")
            return 2
        after = nbformat.writes(notebook) + "\n"
        if after != before:
            dirty.append(path)
            if not args.check:
                path.write_text(after, encoding="utf-8")
    for path in dirty:
        print(f"{'needs stripping' if args.check else 'stripped'}: {path}")
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
