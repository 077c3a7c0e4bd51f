"""No import circles in deskprof, and no private names shared across analysis modules.

Each module is imported as the first deskprof import of a fresh interpreter state: a
circle that a test run hides (because some other module happened to be imported first)
fails here with the ImportError a user would see. One subprocess imports them all,
clearing ``deskprof.*`` from ``sys.modules`` between modules, so the test stays fast.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import deskprof

SKIP = {"deskprof.__main__", "deskprof.probe.bootstrap.sitecustomize"}
ANALYSIS = Path(deskprof.__file__).parent / "analysis"

_IMPORT_EACH = """
import importlib, json, sys, traceback
failed = {}
for name in json.loads(sys.argv[1]):
    for key in [k for k in sys.modules if k == "deskprof" or k.startswith("deskprof.")]:
        del sys.modules[key]
    try:
        importlib.import_module(name)
    except ImportError:
        failed[name] = traceback.format_exc(limit=-3)
print(json.dumps(failed))
"""


def _modules() -> list[str]:
    found = pkgutil.walk_packages(deskprof.__path__, "deskprof.")
    return sorted(m.name for m in found if m.name not in SKIP)


@pytest.mark.slow  # a few seconds: make test runs it, make test-fast does not
def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    modules = _modules()
    assert "deskprof.analysis.findings" in modules and "deskprof.bundle.frames" in modules
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, json.dumps(modules)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    failed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not failed, "\n".join(f"{name}:\n{tb}" for name, tb in failed.items())


def _private_imports(path: Path) -> list[str]:
    """``from deskprof.x import _y`` (and ``import deskprof.x._y``) in one source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("deskprof"):
            found += [
                f"{path.name}:{node.lineno}: from {node.module} import {alias.name}"
                for alias in node.names
                if alias.name.startswith("_")
            ]
        elif isinstance(node, ast.Import):
            found += [
                f"{path.name}:{node.lineno}: import {alias.name}"
                for alias in node.names
                if alias.name.startswith("deskprof")
                and any(part.startswith("_") for part in alias.name.split("."))
            ]
    return found


def test_analysis_modules_import_no_private_names_from_each_other() -> None:
    files = sorted(ANALYSIS.rglob("*.py"))
    assert any(f.parent.name == "detectors" for f in files)
    offending = [line for path in files for line in _private_imports(path)]
    assert offending == []


def test_the_private_import_check_sees_one(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("from deskprof.analysis.sqltext import _leaves\nimport deskprof._x\n")
    assert len(_private_imports(source)) == 2
