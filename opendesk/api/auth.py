"""Login: e-mail and password in, bearer token out."""

from __future__ import annotations

import secrets
from datetime import timedelta

import bcrypt
from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from opendesk.api.deps import get_ctx, get_session
from opendesk.context import AppContext, utcnow
from opendesk.models import ApiToken, User

router = APIRouter(tags=["auth"])


class LoginIn(BaseModel):
    email: str = Field(min_length=3, max_length=200)
    password: str = Field(min_length=1, max_length=200)


@router.post("/auth/login")
def login(
    body: LoginIn, ctx: AppContext = Depends(get_ctx), session: Session = Depends(get_session)
) -> dict:
    user = session.scalars(select(User).where(User.email == body.email.lower())).one_or_none()
    if (
        user is None
        or not user.is_active
        or not bcrypt.checkpw(body.password.encode(), user.password_hash.encode())
    ):
        raise HTTPException(401, "wrong e-mail or password")
    now = utcnow()
    token = ApiToken(
        token=secrets.token_hex(32),
        user_id=user.id,
        created_at=now,
        expires_at=now + timedelta(seconds=ctx.settings.token_ttl_s),
    )
    session.add(token)
    session.commit()
    return {
        "token": token.token,
        "user": {"id": user.id, "name": user.name, "role": user.role, "email": user.email},
    }
