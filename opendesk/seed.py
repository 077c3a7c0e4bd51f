"""Deterministic seed data, bulk-loaded.

Same size, seed and anchor date give the same rows. Timestamps are laid out over the
year before the anchor date (today by default, so the reports' "last 30 days" have data).
PostgreSQL is loaded with COPY, SQLite with executemany on one transaction.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import bcrypt
from sqlalchemy import Engine, text

from opendesk.models import PRIORITIES, Base
from opendesk.ticket_writes import ticket_number

SEED_VERSION = "1"
DEMO_PASSWORD = "opendesk"  # every seeded user's password, for load tests and the demo


@dataclass(frozen=True)
class SeedSize:
    agents: int
    customers: int
    tickets: int
    comments: int
    articles: int
    ratings: int
    admins: int = 3
    categories: int = 12
    tags: int = 40


SIZES = {
    "small": SeedSize(
        agents=24, customers=300, tickets=2_000, comments=10_000, articles=60, ratings=300
    ),
    # big enough that every planted problem is measurably real (the streaming export
    # sends five 2,000-row chunks instead of one), small enough to seed in about a second:
    # what the end-to-end tests capture
    "medium": SeedSize(
        agents=24, customers=600, tickets=10_000, comments=10_000, articles=60, ratings=300
    ),
    "demo": SeedSize(
        agents=200,
        customers=20_000,
        tickets=100_000,
        comments=500_000,
        articles=2_000,
        ratings=10_000,
    ),
    "large": SeedSize(
        agents=1_000,
        customers=200_000,
        tickets=1_000_000,
        comments=5_000_000,
        articles=10_000,
        ratings=50_000,
    ),
}

CATEGORY_NAMES = [
    "Billing", "Login & Access", "Mobile App", "Integrations", "Reporting", "Email",
    "Performance", "Data Import", "Notifications", "Security", "Onboarding", "API",
    "Payments", "Search", "Exports", "Accessibility",
]  # fmt: skip
TAG_WORDS = [
    "bug", "question", "feature-request", "urgent-customer", "vip", "refund", "sso", "2fa",
    "android", "ios", "chrome", "firefox", "safari", "csv", "webhook", "slack", "jira",
    "invoice", "trial", "enterprise", "timeout", "crash", "data-loss", "duplicate", "ux",
    "translation", "gdpr", "billing-cycle", "password-reset", "api-key", "rate-limit",
    "latency", "outage", "workaround", "regression", "docs", "training", "migration",
    "import", "export", "upgrade", "downgrade", "cancellation", "holiday",
]  # fmt: skip
FIRST = [
    "Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi",
    "Liam", "Maya", "Nico", "Olga", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera",
    "Wen", "Xavi", "Yara", "Zoe",
]  # fmt: skip
LAST = [
    "Adler", "Brooks", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hughes", "Ito",
    "Jensen", "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor", "Petrov", "Quint", "Rossi",
    "Schmidt", "Tanaka", "Ueda", "Varga", "Weber", "Xu", "Young", "Zhang",
]  # fmt: skip
SUBJECTS = [
    "Cannot log in", "Invoice shows wrong amount", "App crashes on start", "Export is empty",
    "Webhook not firing", "Password reset email missing", "Slow dashboard", "Duplicate charge",
    "SSO configuration", "Report numbers do not match", "Import fails halfway",
    "Notifications arrive late", "Search returns nothing", "API returns 500",
    "Cannot upload attachment", "Two-factor code rejected", "Plan upgrade question",
    "Data missing after migration", "Mobile sync stuck", "Need a refund",
]  # fmt: skip
DETAILS = [
    "since this morning", "after the last update", "for our whole team", "on Android only",
    "in Safari", "for one customer", "every few minutes", "when the file is large",
    "after changing my email", "for invoices from last month", "intermittently",
    "since we enabled SSO", "in the EU region", "with the new API key",
]  # fmt: skip
SENTENCES = [
    "I tried clearing the cache and logging in again but nothing changed.",
    "This is blocking our month-end close, please advise.",
    "Steps to reproduce are attached below.",
    "We noticed this right after your maintenance window.",
    "Could you check the logs on your side?",
    "Our account manager suggested opening a ticket.",
    "The error message says something went wrong, with no details.",
    "It worked fine until yesterday.",
    "Thanks for looking into this so quickly.",
    "I have restarted the integration twice.",
    "Please escalate, several of our users are affected.",
    "Attaching a screenshot of the settings page.",
    "Is there a known workaround for now?",
    "We are on the enterprise plan.",
    "The same happens with a different browser.",
    "Let me know if you need anything else from us.",
]  # fmt: skip
AGENT_REPLIES = [
    "Thanks for reaching out, I am looking into this now.",
    "Could you send the exact time this happened and your account ID?",
    "I have reproduced the problem and passed it to engineering.",
    "A fix has been deployed, could you try again?",
    "This is expected behaviour, here is how to change the setting.",
    "I have applied a credit to your account.",
    "Closing this for now, reply if it happens again.",
    "Internal: customer is on a legacy plan, check billing history first.",
    "Internal: same root cause as the webhook incident last week.",
    "We are tracking this as a known issue.",
]  # fmt: skip


def _progress(label: str, done: int, total: int | None, started: float, final: bool) -> None:
    if not (final or sys.stderr.isatty()):
        return
    elapsed = time.perf_counter() - started
    of = f"/{total:<10,}" if total else " " * 11
    end = "\n" if final else "\r"
    print(f"  {label:<16} {done:>10,}{of} rows {elapsed:6.1f}s", end=end, file=sys.stderr)


def _counted(rows: Iterable[tuple], label: str, total: int | None) -> Iterator[tuple]:
    started = time.perf_counter()
    n = 0
    for n, row in enumerate(rows, start=1):
        if n % 50_000 == 0:
            _progress(label, n, total, started, final=False)
        yield row
    _progress(label, n, total, started, final=True)


class Generator:
    """Produces each table's rows as tuples, in id order, from one seeded RNG per table."""

    def __init__(self, size: SeedSize, anchor: date, seed: int = 42) -> None:
        self.size = size
        self.seed = seed
        self.now = datetime(anchor.year, anchor.month, anchor.day)
        self.year_ago = self.now - timedelta(days=365)
        self.n_categories = min(size.categories, len(CATEGORY_NAMES))
        self.n_tags = min(size.tags, len(TAG_WORDS))
        self.password_hash = bcrypt.hashpw(
            DEMO_PASSWORD.encode(), bcrypt.gensalt(rounds=10)
        ).decode()
        first_agent = size.admins + 1
        self.agent_ids = list(range(first_agent, first_agent + size.agents))
        first_customer = first_agent + size.agents
        self.customer_ids = list(range(first_customer, first_customer + size.customers))
        # agents are spread over category teams; team i has agents with index % n == i
        self.team_agents = {
            c: [a for i, a in enumerate(self.agent_ids) if i % self.n_categories == c - 1]
            for c in range(1, self.n_categories + 1)
        }
        self.tickets: list[tuple] = []

    def rng(self, table: str) -> random.Random:
        return random.Random(f"{self.seed}:{table}")

    def categories(self) -> Iterator[tuple]:
        for i in range(self.n_categories):
            yield (i + 1, CATEGORY_NAMES[i])

    def tags(self) -> Iterator[tuple]:
        for i in range(self.n_tags):
            yield (i + 1, TAG_WORDS[i])

    def users(self) -> Iterator[tuple]:
        rng = self.rng("users")
        uid = 0
        for role, count in (
            ("admin", self.size.admins),
            ("agent", self.size.agents),
            ("customer", self.size.customers),
        ):
            for n in range(1, count + 1):
                uid += 1
                name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
                domain = "opendesk.test" if role != "customer" else "example.com"
                team = ((n - 1) % self.n_categories) + 1 if role == "agent" else None
                created = self.year_ago - timedelta(days=rng.randrange(1, 700))
                yield (
                    uid,
                    f"{role}{n}@{domain}",
                    name,
                    role,
                    self.password_hash,
                    team,
                    True,
                    created,
                )

    def _status(self, rng: random.Random, age_days: float) -> str:
        if age_days < 3:
            weights = (45, 30, 10, 12, 3)
        elif age_days < 14:
            weights = (15, 15, 10, 40, 20)
        else:
            weights = (2, 2, 1, 35, 60)
        return rng.choices(("open", "in_progress", "on_hold", "resolved", "closed"), weights)[0]

    def ticket_rows(self) -> Iterator[tuple]:
        """Tickets in creation order (ids follow time, as in a real system)."""
        rng = self.rng("tickets")
        span = int((self.now - self.year_ago).total_seconds())
        offsets = sorted(rng.randrange(span) for _ in range(self.size.tickets))
        customers = self.customer_ids
        for tid, offset in enumerate(offsets, start=1):
            created = self.year_ago + timedelta(seconds=offset)
            age_days = (self.now - created).total_seconds() / 86400
            status = self._status(rng, age_days)
            priority = rng.choices(PRIORITIES, (35, 40, 18, 7))[0]
            category = rng.randint(1, self.n_categories)
            if rng.random() < 0.2:  # a few busy customers file a fifth of all tickets
                creator = customers[rng.randrange(max(1, len(customers) // 50))]
            else:
                creator = rng.choice(customers)
            team = self.team_agents[category] or self.agent_ids
            assigned = status != "open" or rng.random() < 0.5
            assignee = rng.choice(team) if assigned else None
            resolved = None
            if status in ("resolved", "closed"):
                hours = min(rng.lognormvariate(3.0, 1.1), age_days * 24)
                resolved = created + timedelta(seconds=int(hours * 3600))
            latest = resolved or min(
                self.now, created + timedelta(hours=rng.uniform(0, min(age_days * 24, 72)))
            )
            title = f"{rng.choice(SUBJECTS)} {rng.choice(DETAILS)}"
            description = " ".join(rng.sample(SENTENCES, rng.randint(2, 5)))
            row = (
                tid,
                ticket_number(tid),
                title,
                description,
                status,
                priority,
                creator,
                assignee,
                category,
                created,
                latest,
                resolved,
            )
            self.tickets.append(row)
            yield row

    def ticket_tag_rows(self) -> Iterator[tuple]:
        rng = self.rng("ticket_tags")
        for t in self.tickets:
            for tag in sorted(rng.sample(range(1, self.n_tags + 1), rng.choice((0, 1, 1, 2, 3)))):
                yield (t[0], tag)

    def comment_rows(self) -> Iterator[tuple]:
        rng = self.rng("comments")
        counts = [0] * len(self.tickets)
        for _ in range(self.size.comments):
            counts[rng.randrange(len(self.tickets))] += 1
        cid = 0
        for t, count in zip(self.tickets, counts, strict=True):
            tid, created, latest, creator, assignee = t[0], t[9], t[10], t[6], t[7]
            span = max(60, int((latest - created).total_seconds()))
            for k in sorted(rng.randrange(span) for _ in range(count)):
                cid += 1
                by_agent = assignee is not None and rng.random() < 0.5
                body = rng.choice(AGENT_REPLIES) if by_agent else rng.choice(SENTENCES)
                internal = by_agent and body.startswith("Internal")
                yield (
                    cid,
                    tid,
                    assignee if by_agent else creator,
                    body,
                    internal,
                    created + timedelta(seconds=k),
                )

    def article_rows(self) -> Iterator[tuple]:
        rng = self.rng("articles")
        for aid in range(1, self.size.articles + 1):
            created = self.year_ago + timedelta(seconds=rng.randrange(365 * 86400))
            yield (
                aid,
                f"How to fix: {rng.choice(SUBJECTS).lower()} {rng.choice(DETAILS)}",
                "\n\n".join(" ".join(rng.sample(SENTENCES, 4)) for _ in range(rng.randint(2, 6))),
                rng.randint(1, self.n_categories),
                rng.choice(self.agent_ids),
                int(rng.paretovariate(1.1) * 10),
                created,
                created + timedelta(days=rng.randint(0, 60)),
            )

    def article_tag_rows(self) -> Iterator[tuple]:
        rng = self.rng("article_tags")
        for aid in range(1, self.size.articles + 1):
            for tag in sorted(rng.sample(range(1, self.n_tags + 1), rng.randint(1, 3))):
                yield (aid, tag)

    def rating_rows(self) -> Iterator[tuple]:
        rng = self.rng("ratings")
        for rid in range(1, self.size.ratings + 1):
            yield (
                rid,
                rng.randint(1, self.size.articles),
                rng.choice(self.customer_ids),
                rng.choices((1, 2, 3, 4, 5), (5, 5, 15, 35, 40))[0],
                self.year_ago + timedelta(seconds=rng.randrange(365 * 86400)),
            )


TABLES: list[tuple[str, tuple[str, ...], str, Callable[[Generator], int | None]]] = [
    ("categories", ("id", "name"), "categories", lambda g: g.n_categories),
    ("tags", ("id", "name"), "tags", lambda g: g.n_tags),
    (
        "users",
        ("id", "email", "name", "role", "password_hash", "team_id", "is_active", "created_at"),
        "users",
        lambda g: g.size.admins + g.size.agents + g.size.customers,
    ),
    (
        "tickets",
        (
            "id",
            "number",
            "title",
            "description",
            "status",
            "priority",
            "creator_id",
            "assignee_id",
            "category_id",
            "created_at",
            "updated_at",
            "resolved_at",
        ),
        "ticket_rows",
        lambda g: g.size.tickets,
    ),
    ("ticket_tags", ("ticket_id", "tag_id"), "ticket_tag_rows", lambda g: None),
    (
        "comments",
        ("id", "ticket_id", "author_id", "body", "internal", "created_at"),
        "comment_rows",
        lambda g: g.size.comments,
    ),
    (
        "articles",
        (
            "id",
            "title",
            "body",
            "category_id",
            "author_id",
            "view_count",
            "created_at",
            "updated_at",
        ),
        "article_rows",
        lambda g: g.size.articles,
    ),
    ("article_tags", ("article_id", "tag_id"), "article_tag_rows", lambda g: None),
    (
        "article_ratings",
        ("id", "article_id", "user_id", "score", "created_at"),
        "rating_rows",
        lambda g: g.size.ratings,
    ),
]


def _sqlite_value(value: Any) -> Any:
    # the same text SQLAlchemy's SQLite DateTime type writes and parses
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _load_sqlite(engine: Engine, table: str, columns: tuple[str, ...], rows: Iterable) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA synchronous=OFF")
        marks = ",".join("?" * len(columns))
        cur.executemany(
            f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})",
            (tuple(_sqlite_value(v) for v in row) for row in rows),
        )
        raw.commit()
    finally:
        raw.close()


def _load_postgres(engine: Engine, table: str, columns: tuple[str, ...], rows: Iterable) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy(f"COPY {table} ({','.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        if "id" in columns:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )
        raw.commit()
    finally:
        raw.close()


def seed(engine: Engine, size_name: str, *, anchor: date | None = None, seed: int = 42) -> dict:
    """Drop and recreate the schema, then load ``size_name`` data. Returns timings."""
    if size_name not in SIZES:
        raise ValueError(f"unknown seed size {size_name!r}; choose one of {', '.join(SIZES)}")
    anchor = anchor or datetime.now(UTC).date()
    gen = Generator(SIZES[size_name], anchor, seed)
    started = time.perf_counter()
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    load = _load_postgres if engine.dialect.name == "postgresql" else _load_sqlite
    timings: dict[str, float] = {}
    for table, columns, method, total in TABLES:
        t0 = time.perf_counter()
        rows = getattr(gen, method)()
        load(engine, table, columns, _counted(rows, table, total(gen)))
        timings[table] = time.perf_counter() - t0
    with engine.begin() as conn:
        for key, value in (
            ("seed_size", size_name),
            ("seed_anchor", anchor.isoformat()),
            ("seed_version", SEED_VERSION),
            ("seed", str(seed)),
        ):
            conn.execute(
                text("INSERT INTO opendesk_meta (key, value) VALUES (:k, :v)"),
                {"k": key, "v": value},
            )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    timings["total"] = time.perf_counter() - started
    return timings


def seeded_as(engine: Engine) -> dict[str, str]:
    """The meta facts of an already seeded database ({} when it is not seeded)."""
    try:
        with engine.connect() as conn:
            return {k: v for k, v in conn.execute(text("SELECT key, value FROM opendesk_meta"))}
    except Exception:  # no such table: not seeded
        return {}
