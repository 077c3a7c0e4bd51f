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
from opendesk.api.validation import ERROR_RESPONSES, Text
from opendesk.context import AppContext, utcnow
from opendesk.models import ApiToken, User

router = APIRouter(tags=["auth"], responses={401: ERROR_RESPONSES[401]})


BCRYPT_MAX_BYTES = 72  # bcrypt refuses longer passwords (ValueError), so none can match


class LoginIn(BaseModel):
    email: Text = Field(min_length=3, max_length=200)
    password: Text = Field(min_length=1, max_length=200)


@router.post("/auth/login")
def login(
    body: LoginIn, ctx: AppContext = Depends(get_ctx), session: Session = Depends(get_session)
) -> dict:
    if len(body.password.encode()) > BCRYPT_MAX_BYTES:  # before the lookup: no account hint
        raise HTTPException(401, "wrong e-mail or password")
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
