"""CSV export of tickets.

First version: load every matching ticket as an ORM object, write the whole CSV into a
string, send it (peak memory grows with the export). The ``streaming_export`` fix reads
rows from a server-side cursor and sends the CSV in chunks; tags are merged from a second
cursor ordered the same way, so memory stays flat. Both produce the same bytes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased, joinedload, selectinload

from opendesk.models import Category, Tag, Ticket, User, ticket_tags
from opendesk.tickets import TicketFilter

HEADER = [
    "number",
    "title",
    "status",
    "priority",
    "category",
    "creator_email",
    "assignee_email",
    "tags",
    "created_at",
    "updated_at",
    "resolved_at",
]
CHUNK_ROWS = 2000


def _iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat(sep=" ")


def export_in_memory(session: Session, flt: TicketFilter) -> str:
    query = (
        flt.apply(select(Ticket))
        .options(
            joinedload(Ticket.creator),
            joinedload(Ticket.assignee),
            joinedload(Ticket.category),
            selectinload(Ticket.tags),
        )
        .order_by(Ticket.id)
    )
    tickets = session.scalars(query).unique().all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for t in tickets:
        writer.writerow(
            [
                t.number,
                t.title,
                t.status,
                t.priority,
                t.category.name if t.category else "",
                t.creator.email,
                t.assignee.email if t.assignee else "",
                ";".join(tag.name for tag in t.tags),
                _iso(t.created_at),
                _iso(t.updated_at),
                _iso(t.resolved_at),
            ]
        )
    return out.getvalue()


def export_streaming(session: Session, flt: TicketFilter) -> Iterator[str]:
    creator, assignee = aliased(User), aliased(User)
    rows_query = (
        flt.apply(
            select(
                Ticket.id,
                Ticket.number,
                Ticket.title,
                Ticket.status,
                Ticket.priority,
                Category.name,
                creator.email,
                assignee.email,
                Ticket.created_at,
                Ticket.updated_at,
                Ticket.resolved_at,
            )
        )
        .join(creator, creator.id == Ticket.creator_id)
        .outerjoin(assignee, assignee.id == Ticket.assignee_id)
        .outerjoin(Category, Category.id == Ticket.category_id)
        .order_by(Ticket.id)
        .execution_options(stream_results=True, yield_per=CHUNK_ROWS)
    )
    tags_query = (
        flt.apply(
            select(ticket_tags.c.ticket_id, Tag.name)
            .join(Tag, Tag.id == ticket_tags.c.tag_id)
            .join(Ticket, Ticket.id == ticket_tags.c.ticket_id)
        )
        .order_by(ticket_tags.c.ticket_id, Tag.name)
        .execution_options(stream_results=True, yield_per=CHUNK_ROWS)
    )
    # two cursors at once: PostgreSQL named cursors need separate connections' worth of
    # state only per cursor, so one session (one connection) can hold both.
    tag_rows = iter(session.execute(tags_query))
    pending = next(tag_rows, None)

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for n, row in enumerate(session.execute(rows_query), start=1):
        ticket_id = row[0]
        names = []
        while pending is not None and pending[0] <= ticket_id:
            if pending[0] == ticket_id:
                names.append(pending[1])
            pending = next(tag_rows, None)
        writer.writerow(
            [
                row[1],
                row[2],
                row[3],
                row[4],
                row[5] or "",
                row[6],
                row[7] or "",
                ";".join(names),
                _iso(row[8]),
                _iso(row[9]),
                _iso(row[10]),
            ]
        )
        if n % CHUNK_ROWS == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()
