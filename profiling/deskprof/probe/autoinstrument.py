"""``deskprof run``: instrument an unmodified application from ``sitecustomize``.

``bootstrap()`` reads the settings ``deskprof run`` put in the environment and registers
post-import hooks; nothing else happens until the application imports SQLAlchemy (then
the probe listens on the ``Engine`` and ``Pool`` classes, i.e. every engine), Starlette or
FastAPI (every app's middleware stack is wrapped when it is built) or Flask (every app's
``wsgi_app`` is wrapped). The recorder, and its flush thread, start on the first of these,
so helper processes that never touch them leave no file.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING

from deskprof.probe import importhook
from deskprof.probe.config import ProbeConfig

if TYPE_CHECKING:
    from deskprof.probe.recorder import Recorder

_CONFIG: ProbeConfig | None = None
_RECORDER: Recorder | None = None
_SQL_HOOKS: object | None = None
_LOCK = threading.Lock()


def bootstrap(env: Mapping[str, str] | None = None) -> bool:
    """Register the import hooks when ``DESKPROF_PROBE_DIR`` is set; True if it was."""
    global _CONFIG
    config = ProbeConfig.from_env(env)
    if not config.out_dir or _CONFIG is not None:
        return False
    _CONFIG = config
    importhook.when_imported("sqlalchemy", _instrument_sqlalchemy)
    importhook.when_imported("starlette.applications", _instrument_starlette)
    importhook.when_imported("fastapi.applications", _instrument_fastapi)
    importhook.when_imported("flask.app", _instrument_flask)
    return True


def config() -> ProbeConfig | None:
    """The settings of this process's ``deskprof run`` probe, None when there is none."""
    return _CONFIG


def recorder() -> Recorder | None:
    """The process-wide recorder of ``deskprof run`` (created on first use)."""
    global _RECORDER
    if _CONFIG is None or not _CONFIG.out_dir:
        return None
    from deskprof.probe.recorder import open_recorder

    with _LOCK:
        if _RECORDER is None:
            _RECORDER = open_recorder(
                _CONFIG.out_dir,
                max_records=_CONFIG.max_records,
                max_bytes=_CONFIG.max_bytes,
                enabled=_CONFIG.enabled,
            )
        return _RECORDER


def _instrument_sqlalchemy(module: ModuleType) -> None:
    global _SQL_HOOKS
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    from deskprof.probe.sql import SqlHooks

    rec = recorder()
    if rec is None or _SQL_HOOKS is not None or _CONFIG is None:
        return
    hooks = SqlHooks(
        rec, keep_parameters=_CONFIG.keep_parameters, sqlcommenter=_CONFIG.sqlcommenter
    )
    hooks.listen(Engine, Pool)
    _SQL_HOOKS = hooks


def _instrument_starlette(module: ModuleType) -> None:
    from deskprof.probe.asgi import patch_starlette_class

    rec = recorder()
    if rec is not None:
        patch_starlette_class(module.Starlette, rec)


def _instrument_fastapi(module: ModuleType) -> None:
    from deskprof.probe.asgi import patch_starlette_class

    rec = recorder()
    if rec is not None:
        patch_starlette_class(module.FastAPI, rec)


def _instrument_flask(module: ModuleType) -> None:
    from deskprof.probe.wsgi import patch_flask_class

    rec = recorder()
    if rec is not None:
        patch_flask_class(module.Flask, rec)
