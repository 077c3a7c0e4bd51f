"""The library never imports the command line.

``deskprof.cli`` is the edge: it parses arguments and calls the library. A library module
that imports it (at the top, or lazily inside a function) turns the dependency around:
the library then needs argparse namespaces and CLI error texts to do its work. Every
module of ``profiling/deskprof`` outside ``deskprof/cli/`` and ``deskprof/__main__.py``,
and the reference service ``opendesk``, is parsed with ``ast`` and checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "profiling" / "deskprof"
EDGE = {PACKAGE / "__main__.py"}


def module_name(path: Path) -> str:
    """``deskprof.experiment.variants`` for ``profiling/deskprof/experiment/variants.py``."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module an ``import`` or ``from ... import`` anywhere in ``source`` names
    (relative imports resolved against ``module``), with ``from X import y`` also as
    ``X.y`` (``y`` may be a submodule)."""
    found: set[str] = set()
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and getattr(node.func, "id", getattr(node.func, "attr", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


def imports_cli(names: set[str]) -> list[str]:
    return sorted(n for n in names if n == "deskprof.cli" or n.startswith("deskprof.cli."))


def library_files() -> list[Path]:
    files = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in EDGE or (PACKAGE / "cli") in path.parents:
            continue
        files.append(path)
    return files


def test_the_walk_sees_the_library_and_skips_the_cli() -> None:
    files = library_files()
    names = {module_name(p) for p in files}
    assert {"deskprof", "deskprof.experiment.variants", "deskprof.lab"} <= names
    assert not any(n.startswith("deskprof.cli") for n in names)
    assert "deskprof.__main__" not in names


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("import deskprof.cli.run", "deskprof.lab", ["deskprof.cli.run"]),
        (
            "def f():\n    from deskprof.cli.run import x\n",
            "deskprof.lab",
            ["deskprof.cli.run", "deskprof.cli.run.x"],
        ),
        ("from deskprof import cli", "deskprof.lab", ["deskprof.cli"]),
        (
            "from ..cli import run",
            "deskprof.experiment.variants",
            ["deskprof.cli", "deskprof.cli.run"],
        ),
        ("from . import cli", "deskprof", ["deskprof.cli"]),
        ("import_module('deskprof.cli.run')", "deskprof.lab", ["deskprof.cli.run"]),
        ("from deskprof import client, paths", "deskprof.lab", []),
        ("import deskprof.clients", "deskprof.lab", []),
    ],
)
def test_the_check_catches_every_spelling(source: str, module: str, expected: list[str]) -> None:
    is_package = module == "deskprof"
    assert imports_cli(imported_modules(source, module, is_package)) == expected


@pytest.mark.parametrize("path", library_files(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_library_module_imports_the_cli(path: Path) -> None:
    names = imported_modules(
        path.read_text(), module_name(path), is_package=path.name == "__init__.py"
    )
    assert not imports_cli(names), (
        f"{module_name(path)} imports {', '.join(imports_cli(names))}: the library must not "
        "depend on deskprof.cli; move what it needs into the library and have the CLI call it"
    )


def test_the_reference_service_does_not_import_the_cli() -> None:
    offenders = {}
    for path in sorted((ROOT / "opendesk").rglob("*.py")):
        names = imports_cli(imported_modules(path.read_text(), "opendesk.x"))
        if names:
            offenders[str(path.relative_to(ROOT))] = names
    assert not offenders, f"opendesk imports deskprof's CLI: {offenders}"


def test_probe_environment_takes_typed_settings(tmp_path: Path) -> None:
    from deskprof.probe.bootstrap import BOOTSTRAP_DIR, probe_environment
    from deskprof.probe.config import ProbeConfig

    env = probe_environment({"PYTHONPATH": "/x"}, out=tmp_path / "p", max_bytes=1024, off=True)
    assert (tmp_path / "p").is_dir()
    assert env["PYTHONPATH"].split(":")[:2] == [BOOTSTRAP_DIR, "/x"]
    config = ProbeConfig.from_env(env)
    assert config.out_dir == str((tmp_path / "p").resolve())
    assert config.max_bytes == 1024 and not config.enabled and not config.keep_parameters
