"""Every notebook under notebooks/ runs top to bottom against the reference service.

One test per ``notebooks/*.ipynb`` (collected by glob, so a new notebook is tested the
day it is committed), executed with papermill on the kernel of the Python running the
tests, with small CI parameters injected. The notebook-level metadata
``nb.metadata["deskprof"]`` steers the run:

- ``ci_parameters``: papermill parameters for CI (short durations, small data), injected
  on top of ``ci=True``;
- ``requires``: services beyond the defaults: ``"postgresql"`` (the notebook gets a seeded
  test database as ``database_url``, or is skipped naming PostgreSQL), ``"redis"`` (the
  test Redis as ``redis_url``);
- ``timeout_s``: the whole notebook's limit (default 300 s).

Executed copies (outputs included, even of a failed run) are written to
``test-artifacts/notebooks/``; generated data (the seeded SQLite file, capture bundles)
goes to ``test-artifacts/notebooks/data`` (``OPENDESK_DATA_DIR``), not the user's data/.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "test-artifacts" / "notebooks"
KERNEL = "python3"  # ipykernel's native kernel: the interpreter running the tests
DEFAULT_TIMEOUT_S = 300
KNOWN_REQUIREMENTS = {"postgresql": "notebook_postgres", "redis": "redis_url"}
PARAMETER_FOR = {"postgresql": "database_url", "redis": "redis_url"}

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def notebook_settings(path: Path) -> dict:
    """``metadata.deskprof`` of a notebook ({} when absent)."""
    notebook = nbformat.read(path, as_version=4)
    return dict(notebook.metadata.get("deskprof") or {})


def _params() -> list:
    out = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        timeout = int(notebook_settings(path).get("timeout_s", DEFAULT_TIMEOUT_S))
        out.append(pytest.param(path, id=path.stem, marks=pytest.mark.timeout(timeout + 60)))
    return out


def ci_parameters(settings: dict, services: dict[str, str]) -> dict:
    """What papermill injects: ``ci=True``, the notebook's ``ci_parameters``, and one
    parameter per required service (``database_url``, ``redis_url``)."""
    parameters = {"ci": True, **(settings.get("ci_parameters") or {})}
    for requirement, url in services.items():
        parameters[PARAMETER_FOR[requirement]] = url
    return parameters


@pytest.mark.parametrize("path", _params())
def test_notebook_runs_top_to_bottom(
    path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    import papermill

    settings = notebook_settings(path)
    requires = list(settings.get("requires") or [])
    unknown = sorted(set(requires) - set(KNOWN_REQUIREMENTS))
    assert not unknown, (
        f"{path.name} requires {', '.join(unknown)}; the harness provides "
        f"{', '.join(KNOWN_REQUIREMENTS)}"
    )
    # each fixture skips with the reason (naming the service) when it is not there
    services = {r: request.getfixturevalue(KNOWN_REQUIREMENTS[r]) for r in requires}
    parameters = ci_parameters(settings, services)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("OPENDESK_DATA_DIR", str(ARTIFACTS / "data"))
    monkeypatch.setenv("MPLBACKEND", "agg")
    output = ARTIFACTS / path.name
    timeout = int(settings.get("timeout_s", DEFAULT_TIMEOUT_S))
    started = time.monotonic()
    try:
        papermill.execute_notebook(
            str(path),
            str(output),
            parameters=parameters,
            kernel_name=KERNEL,
            cwd=str(NOTEBOOKS),
            execution_timeout=timeout,
            progress_bar=False,
        )
    finally:
        elapsed = time.monotonic() - started
        _record(path.stem, elapsed, parameters)
        print(f"{path.name}: {elapsed:.1f} s with {parameters}; executed copy: {output}")


def _record(name: str, seconds: float, parameters: dict) -> None:
    """test-artifacts/notebooks/durations.json: each notebook's last CI run time."""
    file = ARTIFACTS / "durations.json"
    try:
        durations = json.loads(file.read_text())
    except (OSError, ValueError):
        durations = {}
    shown = {k: ("<url>" if k.endswith("_url") else v) for k, v in parameters.items()}
    durations[name] = {"seconds": round(seconds, 1), "parameters": shown}
    file.write_text(json.dumps(durations, indent=2, sort_keys=True) + "\n")
