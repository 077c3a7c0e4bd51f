"""Tickets: list, detail, create, update, comment, CSV export, agent dashboard."""

from __future__ import annotations

import re
from collections import Counter
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, StringConstraints, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from opendesk import export, sla, ticket_writes, tickets
from opendesk.api.deps import current_user, get_ctx, get_session, staff_user
from opendesk.api.validation import ERROR_RESPONSES, NO_NUL, Text, unprocessable
from opendesk.context import AppContext, utcnow
from opendesk.models import OPEN_STATUSES, Ticket, User

router = APIRouter(tags=["tickets"], responses=ERROR_RESPONSES)

Status = Literal["open", "in_progress", "on_hold", "resolved", "closed"]
Priority = Literal["low", "medium", "high", "urgent"]
Sort = Literal["-created_at", "created_at", "-updated_at", "updated_at", "-number", "number"]
TagName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
MAX_ID = 2**31 - 1
TicketId = Annotated[int, Path(ge=1, le=MAX_ID)]
ASSIGNEE = re.compile(r"[0-9]{1,10}")  # ASCII digits: str.isdigit() accepts "²", int() not


def _filter(
    user: User,
    status: Status | None,
    priority: Priority | None,
    assignee: str | None,
    category_id: int | None,
    q: str | None,
) -> tickets.TicketFilter:
    assignee_id, unassigned = None, False
    if assignee == "me":
        assignee_id = user.id
    elif assignee == "none":
        unassigned = True
    elif assignee is not None:
        if not ASSIGNEE.fullmatch(assignee) or int(assignee) > MAX_ID:
            raise unprocessable("assignee must be a user id, 'me' or 'none'", "query", "assignee")
        assignee_id = int(assignee)
    return tickets.TicketFilter(
        status=status,
        priority=priority,
        assignee_id=assignee_id,
        unassigned=unassigned,
        category_id=category_id,
        text=q or None,
        creator_id=user.id if user.role == "customer" else None,
    )


@router.get("/tickets")
def list_tickets(
    status: Status | None = None,
    priority: Priority | None = None,
    assignee: str | None = Query(
        None,
        max_length=12,
        pattern=r"^(me|none|[0-9]{1,10})$",
        description="user id, 'me' or 'none'",
    ),
    category_id: int | None = Query(None, ge=1, le=MAX_ID),
    q: str | None = Query(None, max_length=100, pattern=NO_NUL, description="text in the title"),
    sort: Sort = "-created_at",
    page: int = Query(1, ge=1, le=1_000_000),
    page_size: int = Query(25, ge=1, le=100),
    cursor: str | None = Query(None, max_length=200),
    user: User = Depends(current_user),
    ctx: AppContext = Depends(get_ctx),
    session: Session = Depends(get_session),
) -> dict:
    flt = _filter(user, status, priority, assignee, category_id, q)
    try:
        return tickets.list_tickets(
            ctx,
            session,
            flt,
            sort=sort,
            page=page,
            page_size=page_size,
            cursor=cursor,
            now=utcnow(),
        )
    except tickets.BadCursor as exc:
        raise HTTPException(400, str(exc)) from exc


@router.get(
    "/tickets/export.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "the tickets as CSV"}},
)
def export_csv(
    status: Status | None = None,
    priority: Priority | None = None,
    assignee: str | None = Query(None, max_length=12, pattern=r"^(me|none|[0-9]{1,10})$"),
    category_id: int | None = Query(None, ge=1, le=MAX_ID),
    q: str | None = Query(None, max_length=100, pattern=NO_NUL),
    user: User = Depends(staff_user),
    ctx: AppContext = Depends(get_ctx),
    session: Session = Depends(get_session),
) -> Response:
    flt = _filter(user, status, priority, assignee, category_id, q)
    headers = {"Content-Disposition": 'attachment; filename="tickets.csv"'}
    if not ctx.fixed("streaming_export"):
        return Response(
            export.export_in_memory(session, flt), media_type="text/csv", headers=headers
        )

    def stream():
        # its own session: the request's one is closed before the body is sent
        with ctx.sessions() as stream_session:
            yield from export.export_streaming(stream_session, flt)

    return StreamingResponse(stream(), media_type="text/csv", headers=headers)


def _load_visible(session: Session, ticket_id: int, user: User) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or (user.role == "customer" and ticket.creator_id != user.id):
        raise HTTPException(404, f"ticket {ticket_id} not found")
    return ticket


@router.get("/tickets/{ticket_id}")
def ticket_detail(
    ticket_id: TicketId,
    user: User = Depends(current_user),
    ctx: AppContext = Depends(get_ctx),
    session: Session = Depends(get_session),
) -> dict:
    detail = tickets.ticket_detail(
        ctx, session, ticket_id, utcnow(), include_internal=user.role != "customer"
    )
    if detail is None or (user.role == "customer" and detail["creator"]["id"] != user.id):
        raise HTTPException(404, f"ticket {ticket_id} not found")
    return detail


class TicketIn(BaseModel):
    title: Text = Field(min_length=1, max_length=200)
    description: Text = Field(min_length=1, max_length=20_000)
    priority: Priority = "medium"
    category_id: int | None = Field(None, ge=1, le=MAX_ID)
    tags: list[TagName] = Field(default_factory=list, max_length=10)
    assignee_id: int | None = Field(None, ge=1, le=MAX_ID)


class TicketPatch(BaseModel):
    """Fields left out stay as they are; only ``assignee_id`` may be null (unassign)."""

    title: Text | None = Field(None, min_length=1, max_length=200)
    status: Status | None = None
    priority: Priority | None = None
    assignee_id: int | None = Field(None, ge=1, le=MAX_ID)
    tags: list[TagName] | None = Field(None, max_length=10)

    @model_validator(mode="after")
    def _null_only_to_unassign(self) -> TicketPatch:
        nulls = sorted(
            name for name in self.model_fields_set - {"assignee_id"} if getattr(self, name) is None
        )
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null (leave a field out to keep it)")
        return self


class CommentIn(BaseModel):
    body: Text = Field(min_length=1, max_length=20_000)
    internal: bool = False


def _commit(session: Session) -> None:
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(409, "a concurrent write conflicted with this one; retry") from exc


@router.post("/tickets", status_code=201)
def create_ticket(
    body: TicketIn,
    user: User = Depends(current_user),
    ctx: AppContext = Depends(get_ctx),
    session: Session = Depends(get_session),
) -> dict:
    try:
        ticket, job = ticket_writes.create_ticket(
            ctx, session, user, **body.model_dump(), now=utcnow()
        )
    except ticket_writes.WriteRejected as exc:
        raise unprocessable(str(exc)) from exc
    _commit(session)
    ticket_writes.after_commit(ctx, job)
    return tickets.ticket_summary(ctx, ticket, utcnow(), comment_count=0)


@router.patch("/tickets/{ticket_id}")
def update_ticket(
    body: TicketPatch,
    ticket_id: TicketId,
    user: User = Depends(staff_user),
    ctx: AppContext = Depends(get_ctx),
    session: Session = Depends(get_session),
) -> dict:
    ticket = _load_visible(session, ticket_id, user)
    fields = body.model_dump(exclude_unset=True)
    try:
        job = ticket_writes.update_ticket(ctx, session, user, ticket, fields, utcnow())
    except ticket_writes.WriteRejected as exc:
        raise unprocessable(str(exc)) from exc
    _commit(session)
    if job is not None:
        ticket_writes.after_commit(ctx, job)
    return tickets.ticket_summary(ctx, ticket, utcnow())


@router.post("/tickets/{ticket_id}/comments", status_code=201)
def add_comment(
    body: CommentIn,
    ticket_id: TicketId,
    user: User = Depends(current_user),
    ctx: AppContext = Depends(get_ctx),
    session: Session = Depends(get_session),
) -> dict:
    ticket = _load_visible(session, ticket_id, user)
    if body.internal and user.role == "customer":
        raise HTTPException(403, "customers cannot write internal notes")
    comment, job = ticket_writes.add_comment(
        ctx, session, user, ticket, body=body.body, internal=body.internal, now=utcnow()
    )
    _commit(session)
    ticket_writes.after_commit(ctx, job)
    return {
        "id": comment.id,
        "ticket_id": ticket.id,
        "internal": comment.internal,
        "created_at": comment.created_at,
    }


@router.get("/dashboard")
def dashboard(
    user: User = Depends(staff_user),
    ctx: AppContext = Depends(get_ctx),
    session: Session = Depends(get_session),
) -> dict:
    """An agent's queue: counts by status and priority, unassigned in the team, breaches."""
    now = utcnow()
    mine = session.scalars(
        select(Ticket).where(Ticket.assignee_id == user.id, Ticket.status.in_(OPEN_STATUSES))
    ).all()
    unassigned = select(Ticket.id).where(
        Ticket.assignee_id.is_(None), Ticket.status.in_(OPEN_STATUSES)
    )
    if user.team_id is not None:
        unassigned = unassigned.where(Ticket.category_id == user.team_id)
    closed_form = ctx.fixed("sla_closed_form")
    breached = sum(
        sla.is_breached(
            sla.due_time(t.created_at, t.priority, closed_form=closed_form),
            None,
            now,
            is_open=True,
        )
        for t in mine
    )
    return {
        "agent": {"id": user.id, "name": user.name, "team_id": user.team_id},
        "my_open_by_status": dict(Counter(t.status for t in mine)),
        "my_open_by_priority": dict(Counter(t.priority for t in mine)),
        "my_open": len(mine),
        "my_breached": breached,
        "team_unassigned": len(session.scalars(unassigned).all()),
    }
