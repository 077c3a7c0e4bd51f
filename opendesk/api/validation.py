"""Input the API refuses with a documented 422 instead of failing inside (a 500).

What reached the database or a library and broke there, found by an API fuzz run
(schemathesis) and by hand: NUL bytes (PostgreSQL text cannot hold them), lone UTF-16
surrogates (echoed back in FastAPI's own 422 body, which then cannot be encoded),
integers beyond the columns, dates before year 1 once a window is subtracted, digits that
``str.isdigit`` accepts and ``int`` refuses. Every 422 the app raises itself has the same
body as FastAPI's validation errors: ``{"detail": [{"loc", "msg", "type"}]}``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import StringConstraints
from sqlalchemy.exc import DataError

NO_NUL = r"^[^\x00]*$"  # PostgreSQL text columns cannot store NUL
Text = Annotated[str, StringConstraints(pattern=NO_NUL)]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "a request the API cannot use (e.g. a cursor it did not issue)"},
    401: {"description": "missing, expired or wrong credentials"},
    403: {"description": "the role may not do this"},
    404: {"description": "no such object, or not visible to this user"},
    409: {"description": "a concurrent write conflicted; retry"},
}


class AsciiJSONResponse(JSONResponse):
    """JSON escaped to ASCII: a lone surrogate in echoed input is ``\\ud800``, not a
    UnicodeEncodeError while the response is rendered."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False).encode("ascii")


def unprocessable(message: str, *loc: str | int) -> HTTPException:
    """A 422 with FastAPI's validation-error body, so the schema's shape holds."""
    where = list(loc) or ["body"]
    return HTTPException(422, [{"loc": where, "msg": message, "type": "value_error"}])


def _errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for error in exc.errors():
        item = {k: error[k] for k in ("type", "loc", "msg") if k in error}
        if "input" in error:
            item["input"] = error["input"]
        out.append(item)
    return jsonable_encoder(out)


def install(app: FastAPI) -> None:
    """The handlers that keep bad input out of the 500 path."""

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return AsciiJSONResponse({"detail": _errors(exc)}, status_code=422)

    @app.exception_handler(DataError)
    async def unstorable(_request: Request, exc: DataError) -> JSONResponse:
        # the database refused a value validation let through: the request's fault
        message = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]
        detail = [{"loc": ["body"], "msg": f"value not accepted: {message}", "type": "value_error"}]
        return AsciiJSONResponse({"detail": detail}, status_code=422)
