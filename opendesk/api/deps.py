"""Dependencies shared by the routers: context, session, current user."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from opendesk.context import AppContext, utcnow
from opendesk.models import ApiToken, User

bearer = HTTPBearer(auto_error=False)


def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx


def get_session(ctx: AppContext = Depends(get_ctx)) -> Iterator[Session]:
    """One session per request; the handler commits what it writes."""
    with ctx.sessions() as session:
        yield session


def current_user(
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    session: Session = Depends(get_session),
) -> User:
    if credentials is None:
        raise HTTPException(401, "missing bearer token: POST /auth/login first")
    row = session.execute(
        select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token == credentials.credentials, ApiToken.expires_at > utcnow())
    ).scalar_one_or_none()
    if row is None or not row.is_active:
        raise HTTPException(401, "invalid or expired token: log in again")
    return row


def staff_user(user: User = Depends(current_user)) -> User:
    if user.role not in ("agent", "admin"):
        raise HTTPException(403, "agents and admins only")
    return user
