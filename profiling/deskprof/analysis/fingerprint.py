"""Query fingerprints: one name for every execution of "the same" statement.

Two executions are the same query when they differ only in literal values, the number of
items in an ``IN (...)`` / ``VALUES (...), (...)`` / ``ARRAY[...]`` list, comments (the
sqlcommenter tag included), letter case outside quoted identifiers, whitespace, or the
driver's placeholder style (``?``, ``$1``, ``%s``, ``%(name)s``, ``:name``). That is the
grouping pgBadger and pt-query-digest use, so their users read our profile table at sight.

Why a hand-written tokenizer and not a parser library: measured on the reference
service's statements (``benchmarks/analysis_speed.py`` prints the comparison), one regular
expression pass is 15-25x faster than ``sqlglot`` (MIT) and 40-65x faster than
``sqlparse`` (BSD), with the same grouping on our checks, and fingerprinting needs
tokens, not a syntax tree; ``pglast`` (the
PostgreSQL parser, exact but GPL-3) does not fit an MIT project. The tokenizer knows
SQL's lexical rules that matter here: ``''``-escaped and ``E''`` strings, dollar quoting,
quoted identifiers, nested-free block and line comments, casts (``::``) vs ``:name``.

Callers with many rows use :func:`fingerprint_series`: statements repeat (an ORM sends a
few hundred distinct texts), so only the unique ones are fingerprinted.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# One alternation, tried left to right at each position; the group name is the token kind.
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>/\*.*?(?:\*/|\Z)|--[^\n\r]*)
  | (?P<string>[Ee]'(?:[^'\\]|''|\\.)*(?:'|\Z)|[NnXxBbUu]?&?'(?:[^']|'')*(?:'|\Z))
  | (?P<dollar>\$(?P<tag>[A-Za-z_]\w*|)\$.*?(?:\$(?P=tag)\$|\Z))
  | (?P<quoted>"(?:[^"]|"")*(?:"|\Z)|`[^`]*(?:`|\Z)|\[[A-Za-z_][\w ]*\])
  | (?P<param>\$\d+|%\([^)]*\)s|%s|\?\d*|(?<!:):[A-Za-z_]\w*)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0[xX][0-9a-fA-F]+)
  | (?P<word>[A-Za-z_\u0080-\uffff][\w$\u0080-\uffff]*)
  | (?P<op>::|<=|>=|<>|!=|\|\||->>|->|\#>>|\#>|@>|<@|&&|[-+*/%<>=!|&^~@\#])
  | (?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)

# after these, a "-" before a literal is a sign, not a subtraction
# fmt: off
_SIGN_CONTEXT = frozenset({
    "(", ",", "=", "<", ">", "<=", ">=", "<>", "!=", "+", "-", "*", "/", "select", "where",
    "and", "or", "when", "then", "else", "in", "values", "by", "limit", "offset", "between",
    "not", "like", "return", "is",
})
_LISTS = {"in": "(", "values": "(", "array": "["}
_CLOSE = {"(": ")", "[": "]"}
_NO_SPACE_BEFORE = frozenset({",", ")", "]", ".", "::", ";"})
_NO_SPACE_AFTER = frozenset({"(", "[", ".", "::"})
# words after which "(" is not a call: "in (", "values (", "and (" keep their space
_SPACED_BEFORE_PAREN = frozenset({
    "in", "values", "and", "or", "not", "on", "from", "join", "exists", "as", "select", "when",
    "then", "else", "by", "using", "with", "over", "set", "returning", "where", "is", "like",
    "between", "case", "distinct", "union", "except", "intersect", "lateral",
})
# fmt: on
OPERATIONS = ("select", "insert", "update", "delete")


def _tokens(statement: str) -> list[str]:
    """Normalised tokens: literals and placeholders as ``?``, words lowercased."""
    out: list[str] = []
    for match in _TOKEN.finditer(statement):
        kind = match.lastgroup
        if kind in ("ws", "comment"):
            continue
        if kind in ("string", "dollar", "param", "number"):
            if out and out[-1] == "-" and (len(out) == 1 or out[-2] in _SIGN_CONTEXT):
                out.pop()
            out.append("?")
        elif kind == "word":
            out.append(match.group().lower())
        else:
            out.append(match.group())
    while out and out[-1] == ";":
        out.pop()
    return _collapse_lists(out)


def _collapse_lists(tokens: list[str]) -> list[str]:
    """``in (?, ?, ?)`` → ``in (?+)``; ``values (?, ?), (?, ?)`` → ``values (?+)``; same
    for ``array[...]``: lists of placeholders only, so a subquery ``IN (SELECT ...)`` stays."""
    out: list[str] = []
    i, n = 0, len(tokens)
    while i < n:
        token = tokens[i]
        out.append(token)
        opener = _LISTS.get(token)
        i += 1
        if opener is None or i >= n or tokens[i] != opener:
            continue
        close = _CLOSE[opener]
        j = i
        groups = 0
        while j < n and tokens[j] == opener:
            k = j + 1
            expect_value = True
            while k < n and tokens[k] != close:
                want = "?" if expect_value else ","
                if tokens[k] != want and not (expect_value and tokens[k] in ("null", "default")):
                    break
                expect_value = not expect_value
                k += 1
            if k >= n or tokens[k] != close or expect_value:
                break  # not a flat list of values
            groups += 1
            j = k + 1
            if token != "values" or j + 1 >= n or tokens[j] != "," or tokens[j + 1] != opener:
                break
            j += 1
        if groups:
            out.extend((opener, "?+", close))
            i = j
    return out


def _render(tokens: list[str]) -> str:
    parts: list[str] = []
    previous = None
    for token in tokens:
        if (
            previous is not None
            and token not in _NO_SPACE_BEFORE
            and previous not in _NO_SPACE_AFTER
            and not (
                token in ("(", "[")
                and previous[0].isalpha()
                and previous not in _SPACED_BEFORE_PAREN
            )
        ):
            parts.append(" ")
        parts.append(token)
        previous = token
    return "".join(parts)


@lru_cache(maxsize=65536)
def fingerprint(statement: str) -> str:
    """The normalised statement: literals and placeholders → ``?``, value lists → ``(?+)``,
    comments dropped, words lowercased (quoted identifiers kept), whitespace collapsed.

    Never raises on odd input: an unterminated string or comment runs to the end."""
    if not isinstance(statement, str):
        return ""
    return _render(_tokens(statement))


def fingerprint_id(fp: str) -> str:
    """16 hex characters, stable across runs and machines (BLAKE2b of the fingerprint)."""
    return hashlib.blake2b(fp.encode("utf-8"), digest_size=8).hexdigest()


def operation(fp: str) -> str:
    """``SELECT``/``INSERT``/``UPDATE``/``DELETE`` for the statement's main verb (the first
    one outside parentheses, so ``WITH x AS (SELECT ...) DELETE ...`` is a DELETE), else
    ``OTHER``."""
    depth = 0
    for match in re.finditer(r"[()]|\b(?:select|insert|update|delete)\b", fp):
        word = match.group()
        if word == "(":
            depth += 1
        elif word == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            return word.upper()
    return "OTHER"


# Cheap C-level rewrites that never change a statement's fingerprint, applied before the
# tokenizer so that literal variants of one statement share one tokenizer pass. Only for
# statements without comments, quoted identifiers, dollar quotes or prefixed strings
# (E'...', N'...'), where a quote or a digit cannot mean anything else. (A backslash in a
# plain string is a character, for the tokenizer and here alike.)
_UNSAFE_MARKS = ("--", "/*", '"', "`", "$$")
# dollar tags, prefixed strings, and [bracketed identifiers] (the tokenizer keeps those whole)
_UNSAFE = re.compile(r"\$[A-Za-z_]\w*\$|\b[EeBbXxNnUu]&?'|\[[A-Za-z_][\w ]*\]")


def _unsafe(text: str) -> bool:
    return any(mark in text for mark in _UNSAFE_MARKS) or _UNSAFE.search(text) is not None


_SIMPLE_LITERAL = re.compile(
    r"'(?:[^']|'')*'|(?<![\w$.?:%])(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![\w.])"
)
_IN_LIST = re.compile(r"(?i)\bin\s*\(\s*\?(?:\s*,\s*\?)*\s*\)")


def literal_key(statement: str) -> str:
    """``statement`` with simple literals as ``?``, ``IN`` lists of ``?`` as one ``?`` and
    whitespace collapsed, or unchanged when that would not be safe. Guarantee (tested):
    ``fingerprint(literal_key(s)) == fingerprint(s)``."""
    body = _without_trailing_comment(statement)
    if _unsafe(body):
        return statement
    key = _SIMPLE_LITERAL.sub("?", body)
    if "?," in key or "? ," in key:
        key = _IN_LIST.sub("in (?)", key)
    return " ".join(key.split())


def _without_trailing_comment(statement: str) -> str:
    """The statement without one trailing block comment (the sqlcommenter tag, unique per
    request), when that comment surely is one: it starts outside any string (an even
    number of quotes before it, nothing else that quotes) and runs to the end."""
    end = statement.rstrip().rstrip(";").rstrip()
    if not end.endswith("*/"):
        return statement
    start = statement.find("/*")
    prefix = statement[:start]
    if statement.find("*/", start + 2) != len(end) - 2 or prefix.count("'") % 2:
        return statement
    return statement if _unsafe(prefix) else prefix


# The same pre-pass over many texts at once, in RE2 (pyarrow.compute, C++): ~5x faster than
# literal_key per text on a log full of inlined literals. RE2 has no look-around, so the
# number rule consumes the characters around the number and puts them back, and is repeated
# until nothing changes (adjacent literals "1,2" need a second pass). Every rewrite is a
# subset of literal_key's, made stricter where RE2 differs from Python's re: \w, \d and \b
# are ASCII-only in RE2, so non-ASCII characters count as part of a word on both sides; a
# string becomes "? " (not "?") so that a number right after it cannot join the placeholder
# into "?5" (one parameter token); the character after a number may not be a quote (the scan
# would then start inside the string). Texts that could hide a quote or a comment (the
# _UNSAFE rules, widened the same way) take the per-text path.
_NON_ASCII = r"\x{80}-\x{10FFFF}"
_RE2_UNSAFE = (
    r"--|/\*|\"|`|\$\$|\$[A-Za-z_" + _NON_ASCII + r"][\w" + _NON_ASCII + r"]*\$"
    r"|(?:^|[^\w])[EeBbXxNnUu]&?'|\[[A-Za-z_" + _NON_ASCII + r"]"
)
_RE2_LITERAL = (
    r"('(?:[^']|'')*')|(^|[^\w$.?:%" + _NON_ASCII + r"])"
    r"((?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([^\w.'" + _NON_ASCII + r"]|$)"
)
_RE2_IN_LIST = r"(?i)(^|[^\w$" + _NON_ASCII + r"])in\s*\(\s*\?(?:\s*,\s*\?)*\s*\)"
_MAX_PASSES = 8


def literal_keys(statements: list[str] | pa.Array) -> list[str]:
    """:func:`literal_key` for many texts at once (same guarantee:
    ``fingerprint(key) == fingerprint(statement)``; the keys themselves may differ from
    ``literal_key``'s, e.g. in whitespace). Texts with comments, quoted identifiers, dollar
    quotes or prefixed strings go through :func:`literal_key` one by one."""
    if not len(statements):
        return []
    texts = pa.array(statements).cast(pa.large_string())
    unsafe = pc.match_substring_regex(texts, _RE2_UNSAFE).to_numpy(zero_copy_only=False)
    safe_rows = np.flatnonzero(~unsafe)
    keys = np.empty(len(texts), dtype=object)
    if len(safe_rows):
        safe = texts.take(pa.array(safe_rows))
        for _ in range(_MAX_PASSES):
            rewritten = pc.replace_substring_regex(safe, _RE2_LITERAL, r"\2? \4")
            done = pc.all(pc.equal(rewritten, safe)).as_py()
            safe = rewritten
            if done:
                break
        safe = pc.replace_substring_regex(safe, _RE2_IN_LIST, r"\1in (?)")
        keys[safe_rows] = safe.to_numpy(zero_copy_only=False)
    for row in np.flatnonzero(unsafe):
        keys[row] = literal_key(texts[int(row)].as_py())
    return keys.tolist()


def _str_column(values: list[str], positions: np.ndarray) -> pd.Series:
    """``values[positions]`` as a pandas string column, gathered in Arrow (no Python string
    objects per row)."""
    taken = pa.array(values, type=pa.large_string()).take(pa.array(positions))
    return pa.table({"v": taken}).to_pandas()["v"]


def fingerprint_series(statements: pd.Series) -> pd.DataFrame:
    """Per row: ``fingerprint``, ``fingerprint_id`` and ``operation``, index kept.

    Only unique statements are looked at, their literal variants share one tokenizer pass
    (:func:`literal_keys`), and only unique fingerprints are hashed; results are spread
    back by position. A million rows of a few thousand texts cost a few thousand
    fingerprints, and a log full of inlined literals costs one vectorised regex pass per
    text plus one tokenizer pass per distinct key."""
    codes, uniques = pd.factorize(statements.fillna("").astype(str), sort=False)
    key_codes, keys = pd.factorize(np.array(literal_keys(pa.array(uniques)), dtype=object))
    fps = np.array([fingerprint(k) for k in keys], dtype=object)[key_codes]
    fp_codes, fp_uniques = pd.factorize(fps, sort=False)
    fp_texts = [str(f) for f in fp_uniques]
    ids = [fingerprint_id(f) for f in fp_texts]
    ops = [operation(f) for f in fp_texts]
    if len(codes) and codes.min() < 0:  # factorize marks missing values -1
        codes = np.where(codes < 0, 0, codes)
    row_fp = fp_codes[codes] if len(uniques) else np.zeros(0, dtype=np.intp)
    out = pd.DataFrame(
        {
            "fingerprint": _str_column(fp_texts, row_fp),
            "fingerprint_id": _str_column(ids, row_fp),
            "operation": _str_column(ops, row_fp),
        }
    )
    out.index = statements.index
    return out
