"""``install(app, engine)``: the probe in code you own.

Safe to leave in a service: without an output directory (argument or
``DESKPROF_PROBE_DIR``) it installs nothing, and once installed it can be switched off and
on at run time (``handle.disable()``, or ``deskprof probe off --dir DIR`` for every
process writing there). Under ``deskprof run`` the process is already instrumented, and
``install`` returns a handle on that probe instead of recording everything twice.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from deskprof.probe import autoinstrument
from deskprof.probe.asgi import wrap_starlette_app
from deskprof.probe.config import ProbeConfig
from deskprof.probe.recorder import Recorder, open_recorder, release_recorder
from deskprof.probe.sql import SqlHooks
from deskprof.probe.wsgi import wrap_flask_app

log = logging.getLogger("deskprof.probe")


class ProbeHandle:
    """What ``install`` returns: switch, flush and close the probe it installed."""

    def __init__(
        self,
        recorder: Recorder | None,
        config: ProbeConfig | None = None,
        *,
        owned: bool = True,
    ) -> None:
        self.recorder = recorder
        self.config = config
        self._owned = owned
        self._hooks: SqlHooks | None = None

    @property
    def out_dir(self) -> str | None:
        return self.recorder.out_dir if self.recorder else None

    @property
    def path(self) -> str | None:
        """This process's JSON-lines file."""
        return self.recorder.path if self.recorder else None

    @property
    def active(self) -> bool:
        return bool(self.recorder and self.recorder.active)

    def enable(self) -> None:
        """Record (a ``probe.off``/``probe.on`` control file in the directory wins)."""
        if self.recorder:
            self.recorder.enable()

    def disable(self) -> None:
        if self.recorder:
            self.recorder.disable()

    def flush(self) -> None:
        """Write what is buffered now (the flush thread does it every 0.25 s anyway)."""
        if self.recorder:
            self.recorder.flush()

    def stats(self) -> dict[str, Any]:
        """written / dropped / errors / buffered / bytes / active of this process."""
        return self.recorder.stats() if self.recorder else {}

    def close(self) -> None:
        """Stop listening, write everything left; the middleware becomes a pass-through."""
        if self._hooks is not None:
            self._hooks.remove()
            self._hooks = None
        if self.recorder is not None and self._owned:
            release_recorder(self.recorder)
            self._owned = False

    def __enter__(self) -> ProbeHandle:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _is_flask(app: Any) -> bool:
    return any(
        cls.__name__ == "Flask" and cls.__module__.startswith("flask") for cls in type(app).__mro__
    )


def _is_starlette(app: Any) -> bool:
    return any(
        cls.__name__ == "Starlette" and cls.__module__.startswith("starlette")
        for cls in type(app).__mro__
    )


def install(
    app: Any = None,
    engine: Any = None,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    keep_parameters: bool = False,
    sqlcommenter: bool = False,
    enabled: bool = True,
    max_bytes: int | None = None,
    max_records: int | None = None,
) -> ProbeHandle:
    """Instrument ``app`` (FastAPI/Starlette or Flask) and ``engine`` (SQLAlchemy).

    Either may be None. Records go to ``<out_dir>/probe-<pid>.jsonl``; ``out_dir``
    defaults to ``DESKPROF_PROBE_DIR``. The ``DESKPROF_PROBE_*`` environment can also
    turn on parameter values or sqlcommenter, start the probe off, and set the caps.
    Raises TypeError for an app it does not know; nothing it installs ever raises into
    the application.
    """
    if app is not None and not (_is_flask(app) or _is_starlette(app)):
        raise TypeError(
            f"deskprof.probe.install: {type(app).__qualname__} is neither a Starlette/FastAPI "
            "nor a Flask app"
        )
    auto = autoinstrument.recorder() if autoinstrument.config() is not None else None
    if auto is not None:
        log.info("deskprof probe: already instrumented by `deskprof run`; using that probe")
        return ProbeHandle(auto, autoinstrument.config(), owned=False)
    env = ProbeConfig.from_env()
    directory = os.fspath(out_dir) if out_dir is not None else env.out_dir
    if not directory:
        log.info("deskprof probe: no out_dir and no DESKPROF_PROBE_DIR; not installed")
        return ProbeHandle(None, owned=False)
    config = ProbeConfig(
        out_dir=directory,
        keep_parameters=keep_parameters or env.keep_parameters,
        sqlcommenter=sqlcommenter or env.sqlcommenter,
        enabled=enabled and env.enabled,
        max_bytes=env.max_bytes if max_bytes is None else max_bytes,
        max_records=env.max_records if max_records is None else max_records,
    )
    recorder = open_recorder(
        directory,
        max_records=config.max_records,
        max_bytes=config.max_bytes,
        enabled=config.enabled,
    )
    handle = ProbeHandle(recorder, config)
    try:
        if engine is not None:
            hooks = SqlHooks(
                recorder, keep_parameters=config.keep_parameters, sqlcommenter=config.sqlcommenter
            )
            hooks.listen(getattr(engine, "sync_engine", engine))  # AsyncEngine too
            handle._hooks = hooks
        if app is not None:
            if _is_flask(app):
                wrap_flask_app(app, recorder)
            else:
                wrap_starlette_app(app, recorder)
    except BaseException:
        handle.close()
        raise
    return handle
