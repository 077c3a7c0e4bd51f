"""What the experiment notebooks used to write by hand: arms, fix sets, servers, clients.

Each helper is one step a notebook takes against the reference service or a staging one:
an arm as a :class:`~deskprof.experiment.Variant`, "every fix but this one", a run
directory for the experiment, a server started for a few checks and stopped after them,
a private Redis, an HTTP client logged in as a seeded user, a change applied for a block.
"""

from __future__ import annotations

import atexit
import shlex
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deskprof import paths
from deskprof.errors import DeskprofError

if TYPE_CHECKING:
    import httpx
    import pandas as pd

    from deskprof.capturing.target import Target
    from deskprof.experiment import Variant
    from deskprof.lab import LabTarget, ReferenceLaunch

#: the password of every seeded user (``opendesk.seed.DEMO_PASSWORD``)
SEEDED_PASSWORD = "opendesk"


def fix_names() -> list[str]:
    """Every fix the reference service knows, in ``opendesk.config.FIX_NAMES`` order."""
    from opendesk.config import FIX_NAMES

    return list(FIX_NAMES)


def every_fix_but(*left_out: str, known: Iterable[str] | None = None) -> str:
    """``OPENDESK_FIXES`` with every fix on except ``left_out``: the baseline of an
    experiment that measures one fix on an otherwise fixed service (so the other
    problems do not drown the one measured). DeskprofError naming an unknown fix."""
    names = list(known) if known is not None else fix_names()
    unknown = sorted(set(left_out) - set(names))
    if unknown:
        raise DeskprofError(f"unknown fix name(s): {', '.join(unknown)}; known: {', '.join(names)}")
    kept = [name for name in names if name not in left_out]
    return ",".join(kept) or "none"


def arm(target: LabTarget, name: str, **env: str) -> Variant:
    """An experiment arm for ``target``: the reference service launched per arm (extra
    ``env`` on top of its own, e.g. ``OPENDESK_REDIS_URL``), or the running staging
    service at its URL and PIDs (``env`` ignored: it runs with its own)."""
    from deskprof.experiment import Variant

    if target.launch is not None:
        return target.launch.variant(name, **env)
    return Variant.running(target.url, name=name, pids=list(target.pids))


def experiment_dir(label: str) -> Path:
    """A new ``data/experiments/<UTC time>-<label>`` (not created) for ``Experiment(out=...)``."""
    return paths.run_dir("experiments", label or "experiment")


def findings_table(findings: Iterable[Any], columns: Iterable[str] | None = None) -> pd.DataFrame:
    """Findings as a table, one row each (``Finding.to_dict()``), limited to ``columns``
    (default: kind, severity, endpoint, title); empty with those columns when none."""
    import pandas as pd

    shown = list(columns or ["kind", "severity", "endpoint", "title"])
    table = pd.DataFrame([f.to_dict() for f in findings])
    return table.reindex(columns=shown)


def ratio_text(row: Any) -> str:
    """A verdict row's ratio and CI as the checks print it: ``ratio 0.52 [0.48, 0.57]``."""
    return f"ratio {row['ratio']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}]"


def verdict_rows(verdicts: pd.DataFrame, endpoint: str) -> pd.DataFrame:
    """The verdict table of one endpoint (``"(all)"`` for every request pooled), one row
    per metric (the index)."""
    return verdicts[verdicts["endpoint"].eq(endpoint)].set_index("metric")


# --- servers and services a notebook starts for a few checks --------------------------------


def private_redis() -> str:
    """The URL of a Redis server of this kernel's own (``opendesk.redis_server``), stopped
    when the kernel exits: INFO counts then see only this notebook's traffic."""
    from opendesk.redis_server import EmbeddedRedis

    server = EmbeddedRedis().start()
    atexit.register(server.stop)
    return server.url


def notebook_database_url(size: str, label: str) -> str:
    """A SQLite URL of this notebook's own (``data/opendesk-<size>-<label>.sqlite3``), for
    notebooks that write (comments, e-mails) and must not change the shared data set."""
    return f"sqlite:///{(paths.data_dir() / f'opendesk-{size}-{label}.sqlite3').resolve()}"


def start_server(launch: ReferenceLaunch, log_name: str, *, probe_label: str = "") -> Target:
    """Start ``launch`` (under ``deskprof run`` writing to ``data/probe/<time>-<label>``
    when ``probe_label`` is given) and wait until it answers; it is stopped when the kernel
    exits, or earlier with ``.stop()``. Its log is ``data/<log_name>``."""
    from deskprof.capturing.target import Target

    command = launch.command
    if probe_label:
        probe = paths.run_dir("probe", probe_label)
        deskprof_run = f"{shlex.quote(sys.executable)} -m deskprof run --out {probe}"
        command = f"{deskprof_run} -- {command}"
    paths.data_dir().mkdir(parents=True, exist_ok=True)
    server = Target.launch(launch.url, command, dict(launch.env), paths.data_dir() / log_name)
    atexit.register(server.stop)
    return server


@contextmanager
def running(launch: ReferenceLaunch, log_name: str) -> Iterator[str]:
    """``with lab.running(launch, "x.log") as url:`` the service runs inside the block
    and is stopped after it, even when the block fails."""
    server = start_server(launch, log_name)
    try:
        yield launch.url
    finally:
        server.stop()


def login_headers(http: httpx.Client, email: str, password: str = SEEDED_PASSWORD) -> dict:
    """The ``Authorization`` header of ``email`` (``POST /auth/login``); DeskprofError
    with the status when the login is refused."""
    answer = http.post("/auth/login", json={"email": email, "password": password})
    if answer.status_code != 200:
        raise DeskprofError(f"login of {email} refused: HTTP {answer.status_code}")
    return {"Authorization": f"Bearer {answer.json()['token']}"}


@contextmanager
def logged_in(
    url: str,
    email: str,
    *,
    timeout_s: float = 60,
    transport: httpx.BaseTransport | None = None,
) -> Iterator[httpx.Client]:
    """``with lab.logged_in(url, email) as http:`` an HTTP client for ``url`` logged in
    as the seeded user ``email`` (password ``opendesk``): every request carries the
    bearer token; closed after the block. ``transport`` replaces the network (tests)."""
    import httpx

    with httpx.Client(base_url=url, timeout=timeout_s, transport=transport) as http:
        http.headers.update(login_headers(http, email))
        yield http


def redis_stats(url: str) -> dict[str, int]:
    """``keyspace_hits`` and ``keyspace_misses`` of the Redis at ``url`` (INFO stats)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        stats = client.info("stats")
    finally:
        client.close()
    return {key: int(stats.get(key, 0)) for key in ("keyspace_hits", "keyspace_misses")}


def cache_hit_ratio(
    before: dict[str, int], after: dict[str, int], reads: int, keys_per_read: int = 2
) -> dict[str, float]:
    """The report cache's hit ratio from Redis INFO taken before and after ``reads``
    cached reads. A cached read is ``keys_per_read`` GETs: the generation key (a miss
    until the first write, so one miss per read when nothing writes) and the entry; the
    entries' misses are the misses beyond one per read. Returns hits, misses,
    entry_misses and ratio (hits over hits plus entry misses)."""
    hits = after["keyspace_hits"] - before["keyspace_hits"]
    misses = after["keyspace_misses"] - before["keyspace_misses"]
    extra = (keys_per_read - 1) * reads
    entry_misses = max(misses - extra, 0)
    ratio = hits / max(hits + entry_misses, 1)
    return {"hits": hits, "misses": misses, "entry_misses": entry_misses, "ratio": ratio}


# --- changes applied outside the experiment -------------------------------------------------


def migration_commands(database_url: str, migration: str = "indexes") -> tuple[str, str]:
    """The reference ``opendesk migrate <migration> apply`` and ``revert`` commands for
    ``database_url``, as an experiment's change takes them."""
    migrate = f"env OPENDESK_DATABASE_URL={shlex.quote(database_url)} "
    migrate += f"{shlex.quote(sys.executable)} -m opendesk migrate {shlex.quote(migration)}"
    return f"{migrate} apply", f"{migrate} revert"


@contextmanager
def applied(apply_command: str, revert_command: str) -> Iterator[None]:
    """Apply a change for the block and revert it after, even when the block fails."""
    from deskprof.experiment.variants import run_change

    run_change(apply_command, "apply")
    try:
        yield
    finally:
        run_change(revert_command, "revert")


__all__ = [
    "SEEDED_PASSWORD",
    "applied",
    "arm",
    "cache_hit_ratio",
    "every_fix_but",
    "experiment_dir",
    "findings_table",
    "fix_names",
    "logged_in",
    "login_headers",
    "migration_commands",
    "notebook_database_url",
    "private_redis",
    "ratio_text",
    "redis_stats",
    "running",
    "start_server",
    "verdict_rows",
]
