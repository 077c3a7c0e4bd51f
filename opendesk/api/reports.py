"""Manager reports: /reports/{name}?days=&as_of=."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from opendesk import reports
from opendesk.api.deps import get_ctx, get_session, staff_user
from opendesk.api.validation import ERROR_RESPONSES
from opendesk.context import AppContext, utcnow
from opendesk.models import User

router = APIRouter(tags=["reports"], responses=ERROR_RESPONSES)

ReportName = Literal[
    "ticket-stats", "daily-trends", "agent-performance", "sla-compliance", "distribution"
]
DEFAULT_DAYS = {"sla-compliance": 7}


@router.get("/reports/{name}")
def report(
    name: ReportName,
    days: int | None = Query(None, ge=1, le=366),
    as_of: date | None = Query(
        None, ge=date(1970, 1, 1), description="end of the window (exclusive); default now"
    ),
    _user: User = Depends(staff_user),
    ctx: AppContext = Depends(get_ctx),
    session: Session = Depends(get_session),
) -> dict:
    # the default end is now, to the minute: the same minute gives the same (cacheable) key
    end = datetime.combine(as_of, time()) if as_of else utcnow().replace(second=0, microsecond=0)
    window = reports.Window(as_of=end, days=days or DEFAULT_DAYS.get(name, 30))
    return {"report": name, **reports.run_report(ctx, session, name, window)}
