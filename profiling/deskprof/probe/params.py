"""Query parameters as stored: their types by default, their values only on request.

Values are customer data (e-mail addresses, password hashes, ticket text), so by default
only types leave the process: ``["int","str"]`` for positional parameters,
``{"id_1":"int"}`` for named ones. ``keep_parameters=True`` (or
``DESKPROF_PROBE_KEEP_PARAMS=1``) keeps the values, for running EXPLAIN on a captured
statement later: JSON values as they are, dates and times as ISO strings, Decimal and
UUID as strings, anything else as its ``repr``. An ``executemany`` stores one entry per
parameter set, at most ``MAX_ROWS`` of them.
"""

from __future__ import annotations

import datetime
import decimal
import json
import math
import uuid
from collections.abc import Mapping
from typing import Any

MAX_ROWS = 10  # parameter sets kept for one executemany call
MAX_TEXT = 4096  # characters kept of one string value
MAX_SHAPES = 4096  # redacted descriptions cached by shape (names and types)

# An application sends the same few parameter shapes over and over: the redacted text of
# each shape is made once (json.dumps is most of the per-query cost otherwise).
_SHAPES: dict[tuple[Any, ...], str] = {}


def _type_name(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "...[truncated]"
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _value(v) for k, v in value.items()}
    text = repr(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "...[truncated]"


def _one_set(parameters: Any, keep: bool) -> Any:
    convert = _value if keep else _type_name
    if parameters is None:
        return None
    if isinstance(parameters, Mapping):
        return {str(k): convert(v) for k, v in parameters.items()}
    if isinstance(parameters, list | tuple):
        return [convert(v) for v in parameters]
    return convert(parameters)


def _shape(parameters: Any) -> tuple[Any, ...] | None:
    if isinstance(parameters, dict):
        return ("map", *((k, type(v)) for k, v in parameters.items()))
    if isinstance(parameters, list | tuple):
        return ("seq", *(type(v) for v in parameters))
    return None


def describe_parameters(parameters: Any, *, executemany: bool = False, keep: bool = False) -> str:
    """The ``parameters`` column: JSON of types (default) or values (``keep``)."""
    if not keep and not executemany:
        shape = _shape(parameters)
        if shape is not None:
            text = _SHAPES.get(shape)
            if text is None:
                text = json.dumps(_one_set(parameters, False), separators=(",", ":"))
                if len(_SHAPES) < MAX_SHAPES:
                    _SHAPES[shape] = text
            return text
    if executemany and isinstance(parameters, list | tuple):
        shown: Any = [_one_set(p, keep) for p in parameters[:MAX_ROWS]]
    else:
        shown = _one_set(parameters, keep)
    return json.dumps(shown, separators=(",", ":"), default=repr)
