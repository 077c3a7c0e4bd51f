"""Notification e-mails rendered from templates into the outbox.

The first version renders and stores every e-mail inside the request that caused it
(``deliver``). The ``async_notifications`` fix pushes one small job onto a Redis list
instead (``enqueue``); ``run_worker`` renders queued jobs in batches. Both paths render
with ``render_job``, so the outbox holds the same rows either way.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import redis
from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from opendesk import sla
from opendesk.models import Category, Comment, Notification, Ticket, User

log = logging.getLogger(__name__)

_templates = Environment(
    loader=PackageLoader("opendesk", "templates"),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,  # plain-text e-mail
)


SNAPSHOT_FIELDS = (
    "id", "number", "title", "description", "status", "priority",
    "creator_id", "assignee_id", "category_id", "created_at",
)  # fmt: skip


@dataclass(frozen=True)
class Job:
    """What happened, with the ticket as it was then: a worker that runs later renders
    the same e-mail the request would have rendered."""

    kind: str  # ticket_created | ticket_updated | comment_added
    ticket: dict[str, Any]
    actor_id: int
    at: datetime
    comment_id: int | None = None
    changes: dict[str, list[Any]] | None = None

    @classmethod
    def of(cls, kind: str, ticket: Ticket, actor_id: int, at: datetime, **extra: Any) -> Job:
        snapshot = {name: getattr(ticket, name) for name in SNAPSHOT_FIELDS}
        snapshot["created_at"] = ticket.created_at.isoformat()
        return cls(kind, snapshot, actor_id, at, **extra)

    def to_json(self) -> str:
        return json.dumps({**self.__dict__, "at": self.at.isoformat()}, default=str)

    @classmethod
    def from_json(cls, text: str | bytes) -> Job:
        payload = json.loads(text)
        payload["at"] = datetime.fromisoformat(payload["at"])
        return cls(**payload)

    def ticket_view(self) -> SimpleNamespace:
        view = SimpleNamespace(**self.ticket)
        view.created_at = datetime.fromisoformat(self.ticket["created_at"])
        return view


def _recipients(session: Session, job: Job, ticket: SimpleNamespace) -> list[User]:
    ids: list[int] = []
    internal = False
    if job.kind == "comment_added" and job.comment_id is not None:
        internal = bool(session.get(Comment, job.comment_id).internal)
    if not internal:
        ids.append(ticket.creator_id)
    if ticket.assignee_id:
        ids.append(ticket.assignee_id)
    if job.kind == "ticket_created" or internal:
        team = session.scalars(
            select(User.id)
            .where(User.team_id == ticket.category_id, User.role == "agent", User.is_active)
            .order_by(User.id)
        )
        ids.extend(team)
    seen: set[int] = set()
    ordered = []
    for uid in ids:
        if uid in seen or (uid == job.actor_id and job.kind != "ticket_created"):
            continue
        seen.add(uid)
        ordered.append(uid)
    return [session.get(User, uid) for uid in ordered]


def render_job(session: Session, job: Job, *, closed_form_sla: bool) -> list[Notification]:
    """Render one event into outbox rows (not yet added to the session)."""
    ticket = job.ticket_view()
    if session.get(Ticket, ticket.id) is None:  # deleted before the worker got to it
        return []
    actor = session.get(User, job.actor_id)
    category = session.get(Category, ticket.category_id) if ticket.category_id else None
    assignee = session.get(User, ticket.assignee_id) if ticket.assignee_id else None
    template = _templates.get_template(f"{job.kind}.txt")
    context: dict[str, Any] = {
        "ticket": ticket,
        "actor": actor,
        "creator": session.get(User, ticket.creator_id),
        "category": category.name if category else "support",
        "assignee_name": assignee.name if assignee else "unassigned",
        "changes": job.changes or {},
        "comment": session.get(Comment, job.comment_id) if job.comment_id else None,
        "due_at": sla.due_time(ticket.created_at, ticket.priority, closed_form=closed_form_sla),
    }
    rows = []
    for recipient in _recipients(session, job, ticket):
        text = template.render(recipient=recipient, **context)
        subject_line, _, body = text.partition("\n")
        rows.append(
            Notification(
                recipient_id=recipient.id,
                recipient_email=recipient.email,
                ticket_id=ticket.id,
                kind=job.kind,
                subject=subject_line.removeprefix("Subject: ").strip()[:300],
                body=body,
                created_at=job.at,
            )
        )
    return rows


def deliver(session: Session, job: Job, *, closed_form_sla: bool) -> int:
    """First version: render and store inside the caller's transaction."""
    rows = render_job(session, job, closed_form_sla=closed_form_sla)
    for row in rows:
        session.add(row)
        session.flush()  # one INSERT per e-mail, as the first version's ORM code does
    return len(rows)


def enqueue(client: redis.Redis, queue: str, job: Job) -> None:
    """The fix: O(1) in the request; the worker does the rest."""
    client.rpush(queue, job.to_json())


def process_batch(
    client: redis.Redis,
    queue: str,
    factory: sessionmaker[Session],
    *,
    batch_size: int = 100,
    closed_form_sla: bool = True,
) -> int:
    """Render up to ``batch_size`` queued jobs in one transaction; return jobs done."""
    raw = client.lpop(queue, batch_size)
    if not raw:
        return 0
    jobs = [Job.from_json(item) for item in raw]
    with factory() as session:
        try:
            rows = [
                row
                for job in jobs
                for row in render_job(session, job, closed_form_sla=closed_form_sla)
            ]
            session.add_all(rows)
            session.commit()
        except Exception:
            session.rollback()
            # put the batch back at the head so nothing is lost, then let the caller retry
            client.lpush(queue, *reversed(raw))
            raise
    return len(jobs)


def drain(client: redis.Redis, queue: str, factory: sessionmaker[Session], **kwargs: Any) -> int:
    """Process until the queue is empty (tests, and the worker's shutdown)."""
    total = 0
    while done := process_batch(client, queue, factory, **kwargs):
        total += done
    return total


def run_worker(
    client: redis.Redis,
    queue: str,
    factory: sessionmaker[Session],
    *,
    stop: Any = None,
    idle_sleep_s: float = 0.2,
) -> None:
    """Loop until ``stop`` (a threading.Event-like object) is set."""
    while stop is None or not stop.is_set():
        try:
            if not process_batch(client, queue, factory):
                time.sleep(idle_sleep_s)
        except (redis.RedisError, OSError) as exc:
            log.warning("notification worker: %s; retrying in 1s", exc)
            time.sleep(1.0)
    drain(client, queue, factory)
