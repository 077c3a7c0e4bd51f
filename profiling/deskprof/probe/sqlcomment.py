"""sqlcommenter-style comments, so database logs can be joined to requests.

Per the sqlcommenter spec: ``key='value'`` pairs sorted by key, comma separated, keys and
values URL-encoded (RFC 3986, so ``/`` becomes ``%2F``), single quotes in values escaped,
the whole wrapped in ``/*...*/`` and appended to the statement. A statement that already
carries a comment is left alone, as the spec asks. Drivers with ``format``/``pyformat``
parameter styles (psycopg) read ``%`` as a placeholder, so it is doubled there.
"""

from __future__ import annotations

from urllib.parse import quote

PERCENT_STYLES = ("format", "pyformat")


def format_comment(fields: dict[str, str]) -> str:
    """``/*request_id='abc',route='%2Ftickets'*/`` (empty values left out)."""
    pairs = []
    for key in sorted(fields):
        value = fields[key]
        if value == "" or value is None:
            continue
        encoded = quote(str(value), safe="").replace("'", "\\'")
        pairs.append(f"{quote(key, safe='')}='{encoded}'")
    return f"/*{','.join(pairs)}*/" if pairs else ""


def add_comment(statement: str, fields: dict[str, str], *, escape_percent: bool = False) -> str:
    """``statement`` with the comment appended (before a trailing ``;``)."""
    if "/*" in statement:
        return statement
    comment = format_comment(fields)
    if not comment:
        return statement
    if escape_percent:
        comment = comment.replace("%", "%%")
    body = statement.rstrip()
    if body.endswith(";"):
        return f"{body[:-1].rstrip()} {comment};"
    return f"{body} {comment}"
