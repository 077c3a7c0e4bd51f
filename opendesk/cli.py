"""``python -m opendesk serve|seed|migrate|worker``.

Operator mistakes (a bad fix name, an unseeded database, a taken port) print one line
and exit 2; tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
from datetime import date
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from opendesk import migrations
from opendesk.config import DATA_DIR, FIX_NAMES, ConfigError, Settings
from opendesk.db import make_engine, make_sessionmaker
from opendesk.errors import UsageError
from opendesk.processes import die_with_parent, exit_on_sigterm
from opendesk.redis_server import EmbeddedRedis, RedisUnavailable
from opendesk.seed import SIZES, seed, seeded_as


def safe_url(url: str) -> str:
    """The database URL without its password, for printing."""
    return make_url(url).render_as_string(hide_password=True)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except (ConfigError, ValueError) as exc:
        raise UsageError(str(exc)) from exc


def _engine_for_admin(settings: Settings) -> Engine:
    if settings.database_url.startswith("sqlite:///"):
        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    return make_engine(settings)


def cmd_seed(args: argparse.Namespace) -> int:
    settings = _settings()
    engine = _engine_for_admin(settings)
    anchor = date.fromisoformat(args.anchor) if args.anchor else None
    print(f"seeding {args.size} data into {safe_url(settings.database_url)}", file=sys.stderr)
    timings = seed(engine, args.size, anchor=anchor, seed=args.seed)
    print(f"seeded {args.size} in {timings['total']:.1f}s", file=sys.stderr)
    engine.dispose()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    engine = _engine_for_admin(_settings())
    if args.action == "apply":
        done = migrations.apply(engine)
        print(f"created {len(done)} index(es): {', '.join(done) or 'none needed'}")
    elif args.action == "revert":
        done = migrations.revert(engine)
        print(f"dropped {len(done)} index(es): {', '.join(done) or 'none present'}")
    else:
        present = migrations.applied(engine)
        state = "applied" if len(present) == len(migrations.INDEXES) else "not applied"
        print(f"indexes migration: {state} ({len(present)}/{len(migrations.INDEXES)} present)")
    engine.dispose()
    return 0


def cmd_worker(_args: argparse.Namespace) -> int:
    from opendesk.cache import connect
    from opendesk.notifications import run_worker

    settings = _settings()
    if not settings.redis_url:
        raise UsageError("the worker needs OPENDESK_REDIS_URL")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    engine = make_engine(settings)
    run_worker(
        connect(settings.redis_url),
        settings.notification_queue,
        make_sessionmaker(engine),
        stop=stop,
    )
    engine.dispose()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings()
    if settings.database_url.startswith("sqlite:///"):
        path = Path(settings.database_url.removeprefix("sqlite:///"))
        if not path.exists():
            raise UsageError(
                f"no database at {path}: run `python -m opendesk seed --size small` first"
            )
    engine = _engine_for_admin(settings)
    if not seeded_as(engine):
        raise UsageError(
            f"database {safe_url(settings.database_url)} is not seeded: "
            "run `python -m opendesk seed --size small` first"
        )
    if not args.no_migrate:
        changed = migrations.reconcile(engine, "indexes" in settings.fixes)
        if changed:
            verb = "applied" if "indexes" in settings.fixes else "reverted"
            print(f"indexes migration {verb} ({len(changed)} indexes)", file=sys.stderr)
    engine.dispose()

    redis_server = None
    worker = None
    exit_on_sigterm()
    metrics_dir = tempfile.TemporaryDirectory(prefix="opendesk-metrics-")
    try:
        if not settings.redis_url:
            try:
                redis_server = EmbeddedRedis().start()
            except RedisUnavailable as exc:
                raise UsageError(str(exc)) from exc
            os.environ["OPENDESK_REDIS_URL"] = redis_server.url
            redis_label = f"{redis_server.url} ({redis_server.source}, started here)"
        else:
            redis_label = settings.redis_url
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir.name
        if "async_notifications" in settings.fixes:
            worker = subprocess.Popen(
                [sys.executable, "-m", "opendesk", "worker"], preexec_fn=die_with_parent()
            )
        print(
            f"OpenDesk listening on http://{args.host}:{args.port} "
            f"(workers={args.workers}, pid={os.getpid()}, "
            f"database={safe_url(settings.database_url)}, redis={redis_label}, "
            f"fixes={','.join(sorted(settings.fixes)) or 'none'})",
            flush=True,
        )
        uvicorn.run(
            "opendesk.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=args.log_level,
            access_log=False,
        )
    except SystemExit as exc:
        # SIGTERM after a clean uvicorn shutdown is how operators stop a server
        if exc.code != 128 + signal.SIGTERM:
            raise
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
        if redis_server is not None:
            redis_server.stop()
        metrics_dir.cleanup()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m opendesk", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--log-level", default="warning")
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="leave the indexes migration as it is instead of matching OPENDESK_FIXES",
    )
    serve.set_defaults(func=cmd_serve)

    seed_p = sub.add_parser("seed", help="drop, recreate and load deterministic data")
    seed_p.add_argument("--size", choices=sorted(SIZES), default="small")
    seed_p.add_argument("--seed", type=int, default=42)
    seed_p.add_argument("--anchor", help="YYYY-MM-DD the data ends at (default: today)")
    seed_p.set_defaults(func=cmd_seed)

    migrate = sub.add_parser("migrate", help="the indexes migration")
    migrate.add_argument("name", choices=["indexes"])
    migrate.add_argument("action", choices=["apply", "revert", "status"])
    migrate.set_defaults(func=cmd_migrate)

    worker = sub.add_parser("worker", help="render queued notifications (async_notifications)")
    worker.set_defaults(func=cmd_worker)

    demo = sub.add_parser("demo", help="the newcomer's demo (what `make demo` runs)")
    demo.add_argument("--size", choices=sorted(SIZES), default="demo")
    demo.add_argument("--port", type=int, default=0, help="0 picks a free port")
    demo.add_argument("--keep-serving", action="store_true", help="serve until Ctrl-C")
    demo.set_defaults(func=_demo)

    parser.epilog = "fixes (OPENDESK_FIXES=all or a comma list): " + ", ".join(FIX_NAMES)
    return parser


def _demo(args: argparse.Namespace) -> int:
    from opendesk.demo import run_demo

    return run_demo(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"opendesk: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("opendesk: interrupted", file=sys.stderr)
        return 130
