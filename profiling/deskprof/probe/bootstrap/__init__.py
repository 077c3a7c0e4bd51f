"""The directory ``deskprof run`` puts first on ``PYTHONPATH`` (it holds ``sitecustomize``).

A package only so that it ships with deskprof; Python never imports it by this name in
the target: it imports ``sitecustomize`` from this directory at start-up.
``launch_environment`` is the one place that says what a process needs in its
environment to start with the probe in it (``deskprof run`` and ``deskprof capture
--launch`` both use it); :func:`probe_environment` builds its configuration from typed
settings (``deskprof run``'s options, an experiment arm's launch).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from deskprof.probe.config import ENV_DIR, ENV_PKG_PATH, ProbeConfig

BOOTSTRAP_DIR = os.path.dirname(os.path.abspath(__file__))
# the directory holding the deskprof package, for a target interpreter without it
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(BOOTSTRAP_DIR)))


def launch_environment(config: ProbeConfig, env: Mapping[str, str]) -> dict[str, str]:
    """``env`` plus the ``DESKPROF_PROBE_*`` settings of ``config``, this directory first on
    ``PYTHONPATH`` (so every Python process started with it, spawned workers included,
    loads the probe) and where deskprof lives. ``config.out_dir`` must be set."""
    if not config.out_dir:
        raise ValueError("launch_environment needs config.out_dir")
    result = dict(env)
    result.update(config.to_env())
    paths = [p for p in result.get("PYTHONPATH", "").split(os.pathsep) if p]
    if BOOTSTRAP_DIR not in paths:
        paths.insert(0, BOOTSTRAP_DIR)
    result["PYTHONPATH"] = os.pathsep.join(paths)
    result[ENV_PKG_PATH] = PACKAGE_ROOT
    return result


def launch_env_delta(config: ProbeConfig, extra: Mapping[str, str]) -> dict[str, str]:
    """Only what :func:`launch_environment` adds or changes on top of this process's
    environment plus ``extra``: what a launched command needs to start with the probe."""
    base = {**os.environ, **extra}
    full = launch_environment(config, base)
    return {key: value for key, value in full.items() if base.get(key) != value}


def default_out_dir(env: Mapping[str, str]) -> Path:
    """Where the probe writes when no directory is given: ``$DESKPROF_PROBE_DIR`` of
    ``env``, else a new ``data/probe/<UTC time>``."""
    if env.get(ENV_DIR):
        return Path(env[ENV_DIR])
    from deskprof import paths

    return paths.run_dir("probe")


def probe_environment(
    env: Mapping[str, str],
    *,
    out: str | Path | None = None,
    keep_parameters: bool = False,
    sqlcommenter: bool = False,
    off: bool = False,
    max_bytes: int | None = None,
) -> dict[str, str]:
    """``env`` plus what the probe in a command's processes needs, writing to ``out``
    (created; default :func:`default_out_dir`): parameter values kept or only their types,
    SQLCommenter comments, started switched ``off``, and a cap of ``max_bytes`` per process
    file (default ``DEFAULT_MAX_BYTES``). DeskprofError in one line when the directory
    cannot be made."""
    from deskprof.errors import DeskprofError
    from deskprof.probe.config import DEFAULT_MAX_BYTES

    directory = (Path(out) if out else default_out_dir(env)).resolve()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeskprofError(
            f"cannot create the probe directory {directory}: {exc.strerror}"
        ) from exc
    config = ProbeConfig(
        out_dir=str(directory),
        keep_parameters=keep_parameters,
        sqlcommenter=sqlcommenter,
        enabled=not off,
        max_bytes=DEFAULT_MAX_BYTES if max_bytes is None else max_bytes,
        max_records=ProbeConfig.from_env(env).max_records,
    )
    return launch_environment(config, env)
