"""Scrub secrets and SQL values from everything deskprof shows or shares.

Findings, reports and the load generator's request names leave the team that made them,
so they are redacted by default whatever the capture kept: credentials in URLs,
``password=``/``token=``/``secret=`` style pairs, bearer tokens, and the literal values
inside SQL text (EXPLAIN plans and their filters included). Query parameter values appear only when
the capture opted in (``--keep-parameters``) *and* the report is asked to show them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

_URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):[^@\s/]*@")
_SECRET_PAIR = re.compile(
    r"(?P<key>\b[\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|session|cookie)"
    r"[\w-]*)(?P<sep>['\"]?\s*[=:]\s*)(?P<quote>['\"]?)(?P<value>[^\s&,;'\"]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
# SQL string literals ('it''s' included) and numbers that are not part of a name
_SQL_STRING = re.compile(r"'(?:[^']|'')*'")
_SQL_NUMBER = re.compile(r"(?<![\w$.])-?\d+(?:\.\d+)?(?![\w.])")


def redact_url(url: str) -> str:
    """``url`` with its password masked (``scheme://user:***@host/...``), for printing
    and for manifests."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", url or "")


def scrub_text(text: str) -> str:
    """``text`` with credentials, secret pairs and bearer tokens masked."""
    if not text:
        return text
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _SECRET_PAIR.sub(lambda m: f"{m['key']}{m['sep']}{m['quote']}{MASK}", text)


_QUERY_VALUE = re.compile(r"(?P<key>[?&;][^=&#;\s]*=)[^&#;\s]*")


def request_name(name: str) -> str:
    """A load generator's request label (Locust's default is the URL with its query)
    with every query value masked: ``GET /articles?q=secret`` → ``GET /articles?q=***``."""
    if not name:
        return name
    return scrub_text(_QUERY_VALUE.sub(lambda m: f"{m['key']}{MASK}", name))


def scrub_sql(statement: str) -> str:
    """SQL text with every literal value replaced by ``?`` (placeholders stay as they are)."""
    if not statement:
        return statement
    return scrub_text(_SQL_NUMBER.sub("?", _SQL_STRING.sub("?", statement)))


_SQL_KEYS = ("statement", "sql", "query", "fingerprint", "plan", "filter")
_PARAM_KEYS = ("parameters", "params")


def scrub_value(value: Any, *, key: str = "", keep_parameters: bool = False) -> Any:
    """Scrub a JSON-like value recursively; SQL-named keys lose their literals and
    parameter-named keys their values (unless ``keep_parameters``)."""
    lowered = key.lower()
    if any(k in lowered for k in _PARAM_KEYS) and not keep_parameters:
        return "(redacted)" if value not in (None, "", [], {}) else value
    if isinstance(value, str):
        return scrub_sql(value) if any(k in lowered for k in _SQL_KEYS) else scrub_text(value)
    if isinstance(value, Mapping):
        return {
            k: scrub_value(v, key=str(k), keep_parameters=keep_parameters) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub_value(v, key=key, keep_parameters=keep_parameters) for v in value]
    return value
