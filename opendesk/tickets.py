"""Ticket reads: the list (filters, sort, pagination) and the detail view.

Two planted problems live here. N+1: the first version touches ``ticket.creator``,
``ticket.assignee``, ``ticket.tags`` and ``ticket.comments`` per row and lets the ORM
lazy-load each (fix: ``eager_loading``). Deep pagination: OFFSET plus a COUNT(*) on
every page (fix: ``keyset_pagination``, a cursor and a cached count).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import Session, joinedload, selectinload

from opendesk import sla
from opendesk.context import AppContext
from opendesk.models import OPEN_STATUSES, Comment, Ticket, User

SORTS = {
    "-created_at": (Ticket.created_at, True),
    "created_at": (Ticket.created_at, False),
    "-updated_at": (Ticket.updated_at, True),
    "updated_at": (Ticket.updated_at, False),
    "-number": (Ticket.number, True),
    "number": (Ticket.number, False),
}


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class TicketFilter:
    status: str | None = None
    priority: str | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    category_id: int | None = None
    text: str | None = None
    creator_id: int | None = None  # customers see only their own tickets

    def apply(self, query: Select) -> Select:
        if self.status:
            query = query.where(Ticket.status == self.status)
        if self.priority:
            query = query.where(Ticket.priority == self.priority)
        if self.assignee_id is not None:
            query = query.where(Ticket.assignee_id == self.assignee_id)
        if self.unassigned:
            query = query.where(Ticket.assignee_id.is_(None))
        if self.category_id is not None:
            query = query.where(Ticket.category_id == self.category_id)
        if self.creator_id is not None:
            query = query.where(Ticket.creator_id == self.creator_id)
        if self.text:
            escaped = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(Ticket.title.ilike(f"%{escaped}%", escape="\\"))
        return query

    def cache_params(self) -> dict[str, Any]:
        return dict(self.__dict__)


def encode_cursor(sort_value: Any, ticket_id: int) -> str:
    value = sort_value.isoformat() if isinstance(sort_value, datetime) else sort_value
    raw = json.dumps([value, ticket_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, ticket_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if type(ticket_id) is not int or not 1 <= ticket_id <= 2**31 - 1:  # bool is an int
            raise TypeError("id")
        if sort.lstrip("-") in ("created_at", "updated_at"):
            value = datetime.fromisoformat(value)
        elif not isinstance(value, str) or "\x00" in value:
            raise TypeError("value")
        return value, ticket_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadCursor("cursor is not one this API returned; start again from page 1") from exc


def _sla_fields(ctx: AppContext, ticket: Ticket, now: datetime) -> dict[str, Any]:
    due = sla.due_time(ticket.created_at, ticket.priority, closed_form=ctx.fixed("sla_closed_form"))
    breached = sla.is_breached(due, ticket.resolved_at, now, is_open=ticket.status in OPEN_STATUSES)
    return {"sla_due_at": due, "sla_breached": breached}


def _person(user: User | None) -> dict[str, Any] | None:
    return None if user is None else {"id": user.id, "name": user.name}


def ticket_summary(
    ctx: AppContext, ticket: Ticket, now: datetime, comment_count: int | None = None
) -> dict[str, Any]:
    """One row of the list. Without ``comment_count`` it loads the comments to count them."""
    return {
        "id": ticket.id,
        "number": ticket.number,
        "title": ticket.title,
        "status": ticket.status,
        "priority": ticket.priority,
        "category": ticket.category.name if ticket.category else None,
        "creator": _person(ticket.creator),
        "assignee": _person(ticket.assignee),
        "tags": [tag.name for tag in ticket.tags],
        "comment_count": len(ticket.comments) if comment_count is None else comment_count,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
        "resolved_at": ticket.resolved_at,
        **_sla_fields(ctx, ticket, now),
    }


def _comment_counts(session: Session, ticket_ids: list[int]) -> dict[int, int]:
    if not ticket_ids:
        return {}
    rows = session.execute(
        select(Comment.ticket_id, func.count())
        .where(Comment.ticket_id.in_(ticket_ids))
        .group_by(Comment.ticket_id)
    )
    return {ticket_id: count for ticket_id, count in rows}


def _count(ctx: AppContext, session: Session, flt: TicketFilter) -> int:
    def compute() -> int:
        return int(session.scalar(flt.apply(select(func.count()).select_from(Ticket))) or 0)

    if ctx.fixed("keyset_pagination") and ctx.cache is not None:
        return int(ctx.cache.get_or_compute("ticket_count", flt.cache_params(), compute))
    return compute()


def list_tickets(
    ctx: AppContext,
    session: Session,
    flt: TicketFilter,
    *,
    sort: str,
    page: int,
    page_size: int,
    cursor: str | None,
    now: datetime,
) -> dict[str, Any]:
    column, descending = SORTS[sort]
    order = (column.desc(), Ticket.id.desc()) if descending else (column.asc(), Ticket.id.asc())
    query = flt.apply(select(Ticket)).order_by(*order)
    keyset = ctx.fixed("keyset_pagination")
    if cursor is not None:
        if not keyset:
            raise BadCursor("this deployment pages by `page`; cursors need keyset_pagination")
        value, last_id = decode_cursor(cursor, sort)
        key = tuple_(column, Ticket.id)
        query = query.where(key < (value, last_id) if descending else key > (value, last_id))
    else:
        query = query.offset((page - 1) * page_size)
    if ctx.fixed("eager_loading"):
        query = query.options(
            joinedload(Ticket.creator),
            joinedload(Ticket.assignee),
            joinedload(Ticket.category),
            selectinload(Ticket.tags),
        )
    # one row more than a page tells whether there is a next page without a second query
    tickets = list(session.scalars(query.limit(page_size + 1)).unique())
    has_more = len(tickets) > page_size
    tickets = tickets[:page_size]
    counts = (
        _comment_counts(session, [t.id for t in tickets]) if ctx.fixed("eager_loading") else None
    )
    items = [
        ticket_summary(ctx, t, now, None if counts is None else counts.get(t.id, 0))
        for t in tickets
    ]
    next_cursor = None
    if keyset and has_more and tickets:
        last = tickets[-1]
        next_cursor = encode_cursor(getattr(last, column.key), last.id)
    return {
        "items": items,
        "total": _count(ctx, session, flt),
        "page": page if cursor is None else None,
        "page_size": page_size,
        "next_cursor": next_cursor,
    }


def ticket_detail(
    ctx: AppContext, session: Session, ticket_id: int, now: datetime, *, include_internal: bool
) -> dict[str, Any] | None:
    query = select(Ticket).where(Ticket.id == ticket_id)
    if ctx.fixed("eager_loading"):
        query = query.options(
            joinedload(Ticket.creator),
            joinedload(Ticket.assignee),
            joinedload(Ticket.category),
            selectinload(Ticket.tags),
            selectinload(Ticket.comments).joinedload(Comment.author),
        )
    ticket = session.scalars(query).unique().one_or_none()
    if ticket is None:
        return None
    comments = [
        {
            "id": c.id,
            "author": _person(c.author),
            "body": c.body,
            "internal": c.internal,
            "created_at": c.created_at,
        }
        for c in ticket.comments
        if include_internal or not c.internal
    ]
    summary = ticket_summary(ctx, ticket, now, comment_count=len(comments))
    return {**summary, "description": ticket.description, "comments": comments}
