"""The Jupyter edge: what a notebook's parameters cell needs to choose its target.

A notebook either starts the reference OpenDesk itself (``url`` empty: a seeded database
under ``data/``, the service launched by the capture and stopped after it) or attaches to
a running one, e.g. staging (``url`` and ``pids``). :func:`target_from_parameters` turns
the papermill parameters into a :class:`LabTarget` whose :meth:`~LabTarget.capture_kwargs`
go straight into :func:`deskprof.capturing.session.capture`, and whose
:meth:`~LabTarget.check` asserts what a notebook teaches on the reference service but
only reports it on staging (where the lesson may rightly not hold).

Nothing here starts servers: ``capture(launch=...)`` (``Target.launch``) and the
experiment runner (``Variant.launch`` / ``start_arm``) do; this module only says what to
launch, with which environment. :mod:`deskprof.lab.experiments` holds what experiment
notebooks do around an experiment (arms, fix sets, a server for a few checks, a logged-in
client), :mod:`deskprof.lab.evidence` the tables they read (probe output per arm,
connections per request, the outbox).

A notebook imports ``deskprof`` and ``from deskprof import lab`` only: the figures,
tables and classes it needs beyond the top-level names are reached here (``lab.explain``,
``lab.latency_ecdf``, ``lab.Design``, ``lab.DataFrame``...), loaded on first use
(:data:`REEXPORTS`).
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shlex
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deskprof import paths
from deskprof.errors import DeskprofError, first_line
from deskprof.lazy import lazy_getattr
from deskprof.redact import redact_url

if TYPE_CHECKING:
    import pandas as pd

    from deskprof.experiment import Variant

#: the launch command template ``Variant.launch`` fills (``{python}``, ``{port}``)
SERVE_TEMPLATE = "{python} -m opendesk serve --port {port} --workers {workers}"


def data_dir() -> Path:
    """Where generated data lives (``data/`` of the repository, or ``OPENDESK_DATA_DIR``):
    the same place ``python -m opendesk`` uses, whatever the notebook's working directory."""
    return paths.data_dir()


def capture_dir(label: str) -> Path:
    """A new bundle directory ``data/captures/<UTC time>-<label>`` (not created): pass it
    as ``capture(out=...)`` so a notebook's capture lands under ``data/`` even though the
    kernel runs in ``notebooks/``."""
    return paths.run_dir("captures", label or "capture")


# --- the reference database ---------------------------------------------------------------


def _sizes() -> dict[str, Any]:
    from opendesk.seed import SIZES

    return SIZES


def sqlite_path(size: str) -> Path:
    """The seeded SQLite file of ``size``: ``data/opendesk.sqlite3`` for ``demo`` (the
    file ``make demo`` fills, so it is seeded once for both), else
    ``data/opendesk-<size>.sqlite3``."""
    name = "opendesk.sqlite3" if size == "demo" else f"opendesk-{size}.sqlite3"
    return data_dir() / name


@contextmanager
def _seed_lock(database_url: str) -> Iterator[None]:
    """One seeder per database at a time (parallel notebook runs share the file)."""
    digest = hashlib.sha1(database_url.encode(), usedforsecurity=False).hexdigest()[:12]
    lock = data_dir() / f".seed-{digest}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def reference_database(
    size: str = "small", path: str | Path | None = None, *, database_url: str | None = None
) -> str:
    """The URL of a database seeded with the reference data set of ``size``, seeding it
    the first time (``opendesk.seed``; later calls reuse it when size and seed version
    match). SQLite by default, at ``path`` or :func:`sqlite_path`; PostgreSQL (or any
    other URL) when ``database_url`` is given."""
    if size not in _sizes():
        raise DeskprofError(f"unknown data size {size!r}; choose one of {', '.join(_sizes())}")
    if database_url and path is not None:
        raise DeskprofError("give either path (a SQLite file) or database_url, not both")
    if database_url:
        url = database_url
    else:
        file = Path(path).expanduser() if path is not None else sqlite_path(size)
        file.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{file.resolve()}"
    from sqlalchemy.exc import SQLAlchemyError

    from opendesk.config import Settings
    from opendesk.demo import ensure_seeded

    with _seed_lock(url):
        try:
            ensure_seeded(Settings(database_url=url), size)
        except SQLAlchemyError as exc:
            raise DeskprofError(
                f"cannot seed {redact_url(url)}: {first_line(exc)}; check the URL and that the "
                "database server answers"
            ) from None
    return url


# --- the reference service ----------------------------------------------------------------


def check_fixes(fixes: str) -> str:
    """``fixes`` as ``OPENDESK_FIXES`` takes it (``none``, ``all`` or a comma list), after
    checking every name; DeskprofError naming the unknown ones."""
    from opendesk.config import ConfigError, parse_fixes

    text = (fixes or "none").strip() or "none"
    try:
        parse_fixes(text)
    except ConfigError as exc:
        raise DeskprofError(str(exc)) from None
    return text


@dataclass(frozen=True)
class ReferenceLaunch:
    """How to start the reference OpenDesk: for ``capture(**launch.capture_kwargs())``
    (a fixed loopback port) or ``launch.variant()`` (the experiment runner picks a port)."""

    port: int
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def command(self) -> str:
        return SERVE_TEMPLATE.format(
            python=shlex.quote(sys.executable), port=self.port, workers=self.workers
        )

    def capture_kwargs(self) -> dict[str, Any]:
        """``url``, ``launch`` and ``launch_env`` for :func:`deskprof.capturing.session.capture`."""
        return {"url": self.url, "launch": self.command, "launch_env": dict(self.env)}

    def variant(self, name: str = "", *, probe: bool = True, **env: str) -> Variant:
        """An experiment arm running this service (extra ``env`` overrides, e.g.
        ``OPENDESK_FIXES="eager_loading"``)."""
        from deskprof.experiment import Variant

        command = SERVE_TEMPLATE.replace("{workers}", str(self.workers))
        return Variant.launch({**self.env, **env}, command=command, name=name, probe=probe)


def reference_launch(
    port: int | None = None,
    *,
    fixes: str = "none",
    database_url: str | None = None,
    workers: int = 1,
    size: str = "small",
    redis_url: str | None = None,
) -> ReferenceLaunch:
    """The reference OpenDesk with ``fixes`` on ``database_url`` (default: the seeded
    SQLite file of ``size``), ``workers`` uvicorn workers, on ``port`` (default: a free
    loopback port). Without ``redis_url``, ``serve`` starts its own embedded Redis."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise DeskprofError(f"workers must be a whole number of at least 1, not {workers!r}")
    if port is None:
        from opendesk.redis_server import free_port

        port = free_port()
    elif not 1 <= int(port) <= 65535:
        raise DeskprofError(f"port must be between 1 and 65535, not {port!r}")
    env = {
        "OPENDESK_DATABASE_URL": database_url or reference_database(size),
        "OPENDESK_FIXES": check_fixes(fixes),
    }
    if redis_url:
        env["OPENDESK_REDIS_URL"] = redis_url
    return ReferenceLaunch(port=int(port), env=env, workers=workers)


# --- a notebook's parameters ---------------------------------------------------------------


def parse_pids(pids: int | str | Iterable[int | str] | None) -> list[int]:
    """PIDs as a papermill parameter may spell them: ``12345``, ``"12345, 12346"``,
    ``"[12345]"``, ``[12345, "12346"]`` or empty."""
    if pids is None:
        return []
    if isinstance(pids, int):
        items: list[Any] = [pids]
    elif isinstance(pids, str):
        # papermill -p passes "[12345, 12346]" as text; -y passes a list
        items = [p for p in re.split(r"[\s,\[\]]+", pids.strip()) if p]
    else:
        items = list(pids)
    out = []
    for item in items:
        text = str(item).strip()
        if isinstance(item, bool) or not text.isdigit() or int(text) < 1:
            raise DeskprofError(
                f"pids must be process ids (e.g. 12345 or '12345,12346'), got {item!r}; "
                "find them with `pgrep -f 'opendesk serve'`"
            )
        out.append(int(text))
    return out


@dataclass(frozen=True)
class LabTarget:
    """What a notebook captures: the reference service it launches, or a running one."""

    url: str
    pids: list[int] = field(default_factory=list)
    launch: ReferenceLaunch | None = None
    database_url: str = ""  # for EXPLAIN: the reference database, or the one given

    @property
    def reference(self) -> bool:
        """True when the notebook runs its own reference service (lessons are asserted)."""
        return self.launch is not None

    def capture_kwargs(self) -> dict[str, Any]:
        """``url`` plus ``launch``/``launch_env`` (reference) or ``pids`` (attach)."""
        if self.launch is not None:
            return self.launch.capture_kwargs()
        return {"url": self.url, "pids": list(self.pids)}

    def describe(self) -> str:
        if self.launch is not None:
            env = self.launch.env
            return (
                f"the reference OpenDesk (fixes={env['OPENDESK_FIXES']}, "
                f"{self.launch.workers} worker(s), {redact_url(env['OPENDESK_DATABASE_URL'])}), "
                f"launched at {self.url} for the capture"
            )
        pids = ", ".join(map(str, self.pids))
        return f"the running service at {self.url} (PIDs {pids})"

    def check(self, ok: bool, claim: str, detail: str = "") -> bool:
        """The notebook's lesson: on the reference service a claim that does not hold
        fails the run (AssertionError); on any other target it is only reported, since a
        staging system may rightly differ. Returns ``ok``."""
        mark = "holds" if ok else "DOES NOT hold"
        print(f"{claim}: {mark}" + (f" ({detail})" if detail else ""))
        if not ok and self.reference:
            raise AssertionError(f"{claim}: not on the reference service. {detail}".strip())
        return bool(ok)


def target_from_parameters(
    url: str = "",
    pids: int | str | Iterable[int | str] | None = None,
    *,
    size: str = "small",
    fixes: str = "none",
    workers: int = 1,
    database_url: str = "",
    port: int | None = None,
) -> LabTarget:
    """The notebook's target from its parameters cell: ``url`` empty starts the reference
    service (seeded ``size`` data, or ``database_url`` seeded once), ``url`` with ``pids``
    attaches to a running service (``database_url`` then only serves EXPLAIN: give a
    replica or copy you may query)."""
    url = (url or "").strip()
    pid_list = parse_pids(pids)
    if not url:
        if pid_list:
            raise DeskprofError(
                "pids were given without url: set url to the service's base URL "
                "(e.g. http://127.0.0.1:8000) to attach, or clear pids to start the "
                "reference service"
            )
        database = reference_database(size, database_url=database_url or None)
        launch = reference_launch(port, fixes=fixes, database_url=database, workers=workers)
        return LabTarget(launch.url, [], launch, database)
    if not url.startswith(("http://", "https://")):
        raise DeskprofError(f"url must be an http(s) URL, got {url!r}")
    if not pid_list:
        raise DeskprofError(
            f"attaching to {url} needs the PIDs of its server: set pids (find them with "
            "`pgrep -f 'opendesk serve'`), or clear url to start the reference service"
        )
    return LabTarget(url.rstrip("/"), pid_list, None, database_url)


def load_kwargs(workload: str | None, users: int = 10) -> dict[str, Any]:
    """The load part of ``capture(...)``: a built-in scenario (``agent``, ``mixed``...) or
    locustfile with ``users`` simulated users, or ``workload`` empty/None for no load at
    all (observe a staging service's own traffic)."""
    if not workload:
        return {"workload": None}
    if isinstance(users, bool) or not isinstance(users, int) or users < 1:
        raise DeskprofError(f"users must be a whole number of at least 1, not {users!r}")
    return {"workload": workload, "users": users}


# --- notebook glue: tables shaped for reading ----------------------------------------------


def self_time(
    capture: Any, endpoint: str | None = None, *, state: str = "cpu", top: int | None = 15
) -> pd.DataFrame:
    """Self time per function (the innermost frame of each sample, lines merged) of
    ``endpoint`` (default: every sample), most first: ``function``, ``file``, ``samples``,
    ``seconds`` (samples / the capture's rate), ``share`` (of the samples kept) and
    ``application`` (the file is the service's own code, not a library).

    The flame graph's widest leaves, as a table a notebook can assert on."""
    import pandas as pd

    from deskprof.analysis.stackframes import is_application
    from deskprof.bundle.frames import parse_frame as split_frame
    from deskprof.views.flametree import filter_samples

    kept = filter_samples(capture.samples, endpoint=endpoint, state=state)
    leaves = capture.stacks.drop_duplicates("stack_id").set_index("stack_id")["leaf"]
    parts = [split_frame(leaf) for leaf in kept["stack_id"].map(leaves).fillna("")]
    rows = pd.DataFrame(
        {
            "function": [p[0] for p in parts],
            "file": [p[1] for p in parts],
            "samples": kept["n_samples"].to_numpy(),
        }
    )
    table = rows.groupby(["function", "file"], as_index=False)["samples"].sum()
    table = table.sort_values(["samples", "function"], ascending=[False, True], ignore_index=True)
    total = table["samples"].sum()
    table["seconds"] = table["samples"] / float(capture.cpu_rate_hz)
    table["share"] = table["samples"] / total if total else 0.0
    # generated code ("<sqlalchemy generated ...>") is nobody's source to change
    table["application"] = table["file"].map(lambda f: is_application(f) and not f.startswith("<"))
    return table.head(top) if top else table


def memory_by(capture: Any, by: str = "endpoint", *, kind: str = "high_water_mark") -> pd.DataFrame:
    """Bytes of the allocation records of ``kind`` (``high_water_mark``: live at the peak;
    ``temporal``: allocated over the capture; ``leaked``: never freed) per ``endpoint``
    or per ``function`` (the first application frame from the allocation, the code to
    change), most first: ``bytes``, ``mib``, ``share`` (of all bytes of that kind)."""
    import pandas as pd

    from deskprof.analysis.stackframes import owner_frame

    if by not in ("endpoint", "function"):
        raise DeskprofError(f"memory_by groups by 'endpoint' or 'function', not {by!r}")
    rows = capture.allocations[capture.allocations["kind"] == kind]
    if by == "function":
        frames = capture.stacks.drop_duplicates("stack_id").set_index("stack_id")["frames"]
        owners = frames.map(lambda f: owner_frame(list(f) if f is not None else []))
        keys = rows["stack_id"].map(owners).fillna("")
    else:
        keys = rows["endpoint"]
    table = rows.groupby(keys.rename(by))["size_bytes"].sum().rename("bytes")
    table = table.sort_values(ascending=False).reset_index()
    total = table["bytes"].sum()
    table["mib"] = table["bytes"] / 2**20
    table["share"] = table["bytes"] / total if total else 0.0
    return pd.DataFrame(table)


def table_doc(table: str) -> Any:
    """The documentation of one bundle table (``deskprof schema``), as Markdown a notebook
    displays."""
    from IPython.display import Markdown

    from deskprof.bundle.schema import TABLES, describe

    if table not in TABLES:
        raise DeskprofError(f"unknown table {table!r}; one of {', '.join(TABLES)}")
    return Markdown(describe(table))


# --- what notebooks reach through lab ------------------------------------------------------

#: name -> (module, attribute), imported on first use
REEXPORTS: dict[str, tuple[str, str]] = {
    "DataFrame": ("pandas", "DataFrame"),
    "Markdown": ("IPython.display", "Markdown"),
    "Design": ("deskprof.experiment", "Design"),
    "WorkloadSpec": ("deskprof.capturing.workload", "WorkloadSpec"),
    "Target": ("deskprof.capturing.target", "Target"),
    "Thresholds": ("deskprof.analysis", "Thresholds"),
    "endpoint_summary": ("deskprof.analysis", "endpoint_summary"),
    "latency_histogram": ("deskprof.analysis", "latency_histogram"),
    "overall_stats": ("deskprof.analysis", "overall_stats"),
    "query_profile": ("deskprof.analysis", "query_profile"),
    "explain": ("deskprof.analysis.explain", "explain"),
    "query_diff": ("deskprof.analysis.compare", "query_diff"),
    "read_probe_dir": ("deskprof.probe.reader", "read_probe_dir"),
    "run_change": ("deskprof.experiment.variants", "run_change"),
    **{
        name: ("deskprof.views", name)
        for name in (
            "filter_samples",
            "findings_summary_plot",
            "flame_diff_table",
            "latency_ecdf",
            "query_profile_plot",
            "timeline",
            "to_chrome_trace",
            "to_speedscope",
            "verdict_ratio_plot",
        )
    },
}


__getattr__ = lazy_getattr(__name__, REEXPORTS, globals())


from deskprof.lab import evidence as _evidence  # noqa: E402
from deskprof.lab import experiments as _experiments  # noqa: E402
from deskprof.lab.evidence import *  # noqa: E402, F403
from deskprof.lab.experiments import *  # noqa: E402, F403

__all__ = [
    *_evidence.__all__,
    *_experiments.__all__,
    *REEXPORTS,
    "LabTarget",
    "ReferenceLaunch",
    "capture_dir",
    "check_fixes",
    "data_dir",
    "load_kwargs",
    "memory_by",
    "parse_pids",
    "reference_database",
    "reference_launch",
    "self_time",
    "sqlite_path",
    "table_doc",
    "target_from_parameters",
]
