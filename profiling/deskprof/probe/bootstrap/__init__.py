"""The directory ``deskprof run`` puts first on ``PYTHONPATH`` (it holds ``sitecustomize``).

A package only so that it ships with deskprof; Python never imports it by this name in
the target: it imports ``sitecustomize`` from this directory at start-up.
``launch_environment`` is the one place that says what a process needs in its
environment to start with the probe in it (``deskprof run`` and ``deskprof capture
--launch`` both use it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from deskprof.probe.config import ENV_PKG_PATH, ProbeConfig

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
