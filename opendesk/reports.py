"""Manager reports.

First version (``python_*``): recomputed on every request, by one full-scan COUNT per
status or by loading the window's tickets as ORM objects and aggregating in Python.
The ``report_cache`` fix (``sql_*``): one GROUP BY per report, cached in Redis for a TTL
and invalidated on every ticket write. Both return identical dictionaries.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from opendesk import sla
from opendesk.context import AppContext
from opendesk.models import OPEN_STATUSES, PRIORITIES, STATUSES, Comment, Ticket, User


@dataclass(frozen=True)
class Window:
    """Tickets created in [start, as_of)."""

    as_of: datetime
    days: int

    @property
    def start(self) -> datetime:
        return self.as_of - timedelta(days=self.days)

    def describe(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.as_of.isoformat(), "days": self.days}

    def contains(self, t: datetime | None) -> bool:
        return t is not None and self.start <= t < self.as_of

    def in_window(self, column: Any) -> ColumnElement[bool]:
        return and_(column >= self.start, column < self.as_of)


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600.0, 2)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _seconds_between(session: Session, start: Any, end: Any) -> ColumnElement[float]:
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def _day(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


# --- ticket stats --------------------------------------------------------------------


def python_ticket_stats(ctx: AppContext, session: Session, w: Window) -> dict[str, Any]:
    by_status = {}
    for status in STATUSES:  # one full scan per status
        by_status[status] = session.scalar(
            select(func.count()).where(Ticket.status == status, w.in_window(Ticket.created_at))
        )
    resolved = session.scalars(
        select(Ticket).where(w.in_window(Ticket.created_at), Ticket.resolved_at.is_not(None))
    ).all()
    durations = [(t.resolved_at - t.created_at).total_seconds() for t in resolved]
    backlog = session.scalar(select(func.count()).where(Ticket.status.in_(OPEN_STATUSES)))
    return {
        "window": w.describe(),
        "created": sum(by_status.values()),
        "by_status": by_status,
        "resolved": len(resolved),
        "avg_resolution_hours": _hours(_mean(durations)),
        "open_backlog": backlog,
    }


def sql_ticket_stats(ctx: AppContext, session: Session, w: Window) -> dict[str, Any]:
    by_status = dict.fromkeys(STATUSES, 0)
    for status, count in session.execute(
        select(Ticket.status, func.count())
        .where(w.in_window(Ticket.created_at))
        .group_by(Ticket.status)
    ):
        by_status[status] = count
    seconds = _seconds_between(session, Ticket.created_at, Ticket.resolved_at)
    resolved, avg_seconds = session.execute(
        select(func.count(Ticket.resolved_at), func.avg(seconds)).where(
            w.in_window(Ticket.created_at)
        )
    ).one()
    backlog = session.scalar(select(func.count()).where(Ticket.status.in_(OPEN_STATUSES)))
    return {
        "window": w.describe(),
        "created": sum(by_status.values()),
        "by_status": by_status,
        "resolved": resolved,
        "avg_resolution_hours": _hours(None if avg_seconds is None else float(avg_seconds)),
        "open_backlog": backlog,
    }


# --- daily trends --------------------------------------------------------------------


def _empty_days(w: Window) -> dict[str, dict[str, int]]:
    first = w.start.date()
    last = (w.as_of - timedelta(microseconds=1)).date()
    return {
        (first + timedelta(days=i)).isoformat(): {"created": 0, "resolved": 0}
        for i in range((last - first).days + 1)
    }


def python_daily_trends(ctx: AppContext, session: Session, w: Window) -> dict[str, Any]:
    days = _empty_days(w)
    created = session.scalars(select(Ticket).where(w.in_window(Ticket.created_at))).all()
    for t in created:
        days[t.created_at.date().isoformat()]["created"] += 1
    resolved = session.scalars(select(Ticket).where(w.in_window(Ticket.resolved_at))).all()
    for t in resolved:
        days[t.resolved_at.date().isoformat()]["resolved"] += 1
    return {"window": w.describe(), "days": [{"date": d, **v} for d, v in days.items()]}


def sql_daily_trends(ctx: AppContext, session: Session, w: Window) -> dict[str, Any]:
    days = _empty_days(w)
    for column, key in ((Ticket.created_at, "created"), (Ticket.resolved_at, "resolved")):
        day = func.date(column)
        for value, count in session.execute(
            select(day, func.count()).where(w.in_window(column)).group_by(day)
        ):
            days[_day(value)][key] = count
    return {"window": w.describe(), "days": [{"date": d, **v} for d, v in days.items()]}


# --- agent performance ---------------------------------------------------------------


def _agent_row(agent_id: int, name: str) -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "name": name,
        "assigned": 0,
        "resolved": 0,
        "avg_resolution_hours": None,
        "comments": 0,
    }


def python_agent_performance(ctx: AppContext, session: Session, w: Window) -> dict[str, Any]:
    rows: dict[int, dict[str, Any]] = {}
    durations: dict[int, list[float]] = defaultdict(list)
    tickets = session.scalars(
        select(Ticket).where(w.in_window(Ticket.created_at), Ticket.assignee_id.is_not(None))
    ).all()
    for t in tickets:
        agent = t.assignee  # lazy load per distinct agent
        row = rows.setdefault(agent.id, _agent_row(agent.id, agent.name))
        row["assigned"] += 1
        if t.resolved_at is not None:
            row["resolved"] += 1
            durations[agent.id].append((t.resolved_at - t.created_at).total_seconds())
    comments = session.scalars(select(Comment).where(w.in_window(Comment.created_at))).all()
    for c in comments:
        author = c.author  # lazy load per distinct author
        if author.role != "agent":
            continue
        row = rows.setdefault(author.id, _agent_row(author.id, author.name))
        row["comments"] += 1
    for agent_id, values in durations.items():
        rows[agent_id]["avg_resolution_hours"] = _hours(_mean(values))
    return {"window": w.describe(), "agents": sorted(rows.values(), key=lambda r: r["agent_id"])}


def sql_agent_performance(ctx: AppContext, session: Session, w: Window) -> dict[str, Any]:
    rows: dict[int, dict[str, Any]] = {}
    seconds = _seconds_between(session, Ticket.created_at, Ticket.resolved_at)
    for agent_id, name, assigned, resolved, avg_seconds in session.execute(
        select(User.id, User.name, func.count(), func.count(Ticket.resolved_at), func.avg(seconds))
        .select_from(Ticket)
        .join(User, User.id == Ticket.assignee_id)
        .where(w.in_window(Ticket.created_at))
        .group_by(User.id, User.name)
    ):
        row = rows.setdefault(agent_id, _agent_row(agent_id, name))
        row.update(assigned=assigned, resolved=resolved)
        row["avg_resolution_hours"] = _hours(None if avg_seconds is None else float(avg_seconds))
    for agent_id, name, count in session.execute(
        select(User.id, User.name, func.count())
        .select_from(Comment)
        .join(User, User.id == Comment.author_id)
        .where(w.in_window(Comment.created_at), User.role == "agent")
        .group_by(User.id, User.name)
    ):
        rows.setdefault(agent_id, _agent_row(agent_id, name))["comments"] = count
    return {"window": w.describe(), "agents": sorted(rows.values(), key=lambda r: r["agent_id"])}


# --- SLA compliance ------------------------------------------------------------------


def _sla_summary(
    ctx: AppContext, w: Window, rows: list[tuple[datetime, str, str, datetime | None]]
) -> dict[str, Any]:
    closed_form = ctx.fixed("sla_closed_form")
    counts = {p: Counter() for p in PRIORITIES}
    for created_at, priority, status, resolved_at in rows:
        due = sla.due_time(created_at, priority, closed_form=closed_form)
        breached = sla.is_breached(due, resolved_at, w.as_of, is_open=status in OPEN_STATUSES)
        counts[priority]["breached" if breached else "met"] += 1
    out = []
    for priority in PRIORITIES:
        met, breached = counts[priority]["met"], counts[priority]["breached"]
        total = met + breached
        pct = round(100.0 * met / total, 2) if total else None
        out.append(
            {
                "priority": priority,
                "tickets": total,
                "met": met,
                "breached": breached,
                "compliance_pct": pct,
            }
        )
    return {"window": w.describe(), "priorities": out}


def python_sla_compliance(ctx: AppContext, session: Session, w: Window) -> dict[str, Any]:
    tickets = session.scalars(select(Ticket).where(w.in_window(Ticket.created_at))).all()
    rows = [(t.created_at, t.priority, t.status, t.resolved_at) for t in tickets]
    return _sla_summary(ctx, w, rows)


def sql_sla_compliance(ctx: AppContext, session: Session, w: Window) -> dict[str, Any]:
    rows = session.execute(
        select(Ticket.created_at, Ticket.priority, Ticket.status, Ticket.resolved_at).where(
            w.in_window(Ticket.created_at)
        )
    )
    return _sla_summary(ctx, w, [tuple(row) for row in rows])


# --- status and priority distribution ------------------------------------------------


def python_distribution(ctx: AppContext, session: Session, w: Window) -> dict[str, Any]:
    status = {s: session.scalar(select(func.count()).where(Ticket.status == s)) for s in STATUSES}
    priority = {
        p: session.scalar(select(func.count()).where(Ticket.priority == p)) for p in PRIORITIES
    }
    return {"status": status, "priority": priority}


def sql_distribution(ctx: AppContext, session: Session, w: Window) -> dict[str, Any]:
    status = dict.fromkeys(STATUSES, 0)
    priority = dict.fromkeys(PRIORITIES, 0)
    for s, p, count in session.execute(
        select(Ticket.status, Ticket.priority, func.count()).group_by(
            Ticket.status, Ticket.priority
        )
    ):
        status[s] += count
        priority[p] += count
    return {"status": status, "priority": priority}


ReportFn = Callable[[AppContext, Session, Window], dict[str, Any]]

REPORTS: dict[str, tuple[ReportFn, ReportFn]] = {
    "ticket-stats": (python_ticket_stats, sql_ticket_stats),
    "daily-trends": (python_daily_trends, sql_daily_trends),
    "agent-performance": (python_agent_performance, sql_agent_performance),
    "sla-compliance": (python_sla_compliance, sql_sla_compliance),
    "distribution": (python_distribution, sql_distribution),
}


def run_report(ctx: AppContext, session: Session, name: str, w: Window) -> dict[str, Any]:
    """Compute (or fetch from cache) one report; ``name`` is a key of ``REPORTS``."""
    first_version, fixed = REPORTS[name]
    if not ctx.fixed("report_cache") or ctx.cache is None:
        return first_version(ctx, session, w)
    params = {"as_of": w.as_of.isoformat(), "days": w.days}
    return ctx.cache.get_or_compute(f"report:{name}", params, lambda: fixed(ctx, session, w))
