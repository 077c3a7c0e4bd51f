"""Ticket writes: create, update, comment, with their notifications.

Every write invalidates cached reads and produces a notification ``Job``; the first
version renders it inside the request, the ``async_notifications`` fix queues it and
returns. The queue push happens after commit so the worker always finds the rows.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opendesk import notifications
from opendesk.context import AppContext
from opendesk.models import OPEN_STATUSES, Category, Comment, Tag, Ticket, User


class WriteRejected(ValueError):
    """Input that is well-formed but not acceptable (unknown assignee, category...)."""


def ticket_number(ticket_id: int) -> str:
    return f"OD-{ticket_id:07d}"


def _tags_by_name(session: Session, names: list[str]) -> list[Tag]:
    wanted = sorted(set(names))
    found = {t.name: t for t in session.scalars(select(Tag).where(Tag.name.in_(wanted)))}
    for name in wanted:
        if name not in found:
            # a concurrent request creating the same tag makes this commit fail with an
            # IntegrityError, which the API answers with 409 "retry"
            found[name] = Tag(name=name)
            session.add(found[name])
    return [found[name] for name in wanted]


def _check_assignee(session: Session, assignee_id: int | None) -> None:
    if assignee_id is None:
        return
    user = session.get(User, assignee_id)
    if user is None or user.role not in ("agent", "admin") or not user.is_active:
        raise WriteRejected(f"assignee {assignee_id} is not an active agent")


def _dispatch(ctx: AppContext, session: Session, job: notifications.Job) -> None:
    """Before commit for the first version (in the transaction); see ``after_commit``."""
    if not ctx.fixed("async_notifications"):
        notifications.deliver(session, job, closed_form_sla=ctx.fixed("sla_closed_form"))


def after_commit(ctx: AppContext, job: notifications.Job) -> None:
    if ctx.fixed("async_notifications"):
        assert ctx.redis is not None  # AppContext.build refuses the fix without Redis
        notifications.enqueue(ctx.redis, ctx.settings.notification_queue, job)
    ctx.invalidate_reads()


def create_ticket(
    ctx: AppContext,
    session: Session,
    actor: User,
    *,
    title: str,
    description: str,
    priority: str,
    category_id: int | None,
    tags: list[str],
    assignee_id: int | None,
    now: datetime,
) -> tuple[Ticket, notifications.Job]:
    if category_id is not None and session.get(Category, category_id) is None:
        raise WriteRejected(f"category {category_id} does not exist")
    if assignee_id is not None and actor.role == "customer":
        raise WriteRejected("customers cannot assign tickets")
    _check_assignee(session, assignee_id)
    ticket = Ticket(
        number=f"tmp-{uuid.uuid4().hex[:16]}",
        title=title,
        description=description,
        status="open",
        priority=priority,
        creator_id=actor.id,
        assignee_id=assignee_id,
        category_id=category_id,
        created_at=now,
        updated_at=now,
    )
    ticket.tags = _tags_by_name(session, tags)
    session.add(ticket)
    session.flush()
    ticket.number = ticket_number(ticket.id)
    job = notifications.Job.of("ticket_created", ticket, actor.id, now)
    _dispatch(ctx, session, job)
    return ticket, job


def update_ticket(
    ctx: AppContext,
    session: Session,
    actor: User,
    ticket: Ticket,
    fields: dict[str, Any],
    now: datetime,
) -> notifications.Job | None:
    """Apply the fields that changed; return the job, or None when nothing changed."""
    changes: dict[str, list[Any]] = {}
    if "assignee_id" in fields:
        _check_assignee(session, fields["assignee_id"])
    for name in ("title", "priority", "status", "assignee_id"):
        if name in fields and fields[name] != getattr(ticket, name):
            changes[name] = [getattr(ticket, name), fields[name]]
            setattr(ticket, name, fields[name])
    if "tags" in fields:
        old = sorted(t.name for t in ticket.tags)
        new = sorted(set(fields["tags"]))
        if old != new:
            changes["tags"] = [",".join(old), ",".join(new)]
            ticket.tags = _tags_by_name(session, new)
    if not changes:
        return None
    if "status" in changes:
        if ticket.status in OPEN_STATUSES:
            ticket.resolved_at = None
        elif ticket.resolved_at is None:
            ticket.resolved_at = now
    ticket.updated_at = now
    session.flush()
    job = notifications.Job.of("ticket_updated", ticket, actor.id, now, changes=changes)
    _dispatch(ctx, session, job)
    return job


def add_comment(
    ctx: AppContext,
    session: Session,
    actor: User,
    ticket: Ticket,
    *,
    body: str,
    internal: bool,
    now: datetime,
) -> tuple[Comment, notifications.Job]:
    comment = Comment(
        ticket_id=ticket.id, author_id=actor.id, body=body, internal=internal, created_at=now
    )
    session.add(comment)
    ticket.updated_at = now
    session.flush()
    job = notifications.Job.of("comment_added", ticket, actor.id, now, comment_id=comment.id)
    _dispatch(ctx, session, job)
    return comment, job
