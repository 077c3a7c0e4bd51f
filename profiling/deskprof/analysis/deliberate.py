"""Costs paid on purpose: password hashing, compression, TLS, an export's CSV writing.

A login that spends most of its CPU in bcrypt is working as designed: bcrypt, argon2,
scrypt and PBKDF2 are slow so that stolen hashes are slow to crack. Telling the engineer
to "replace per-item loops with arithmetic" there is wrong advice, and ranking it first
buries the real problems. A hot spot whose top leaf frames are such work is reported as
"by design": no saving proposed, low severity, and a fix text that says what may be tuned
(the work factor, where the work runs) instead of a rewrite. ``deskprof.findings`` lists
them apart from the findings (``FindingList.by_design``): they are facts about where the
time goes, not problems.

Judged from the frames py-spy recorded (a library's function, or the app's line that
calls into a C extension, read from the source file when it is on this host).
"""

from __future__ import annotations

import linecache
import re
from collections.abc import Mapping, Sequence

from deskprof.bundle.frames import parse_frame

# what each deliberate cost is, by the words its calls and modules use
KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "password hashing",
        re.compile(r"\b(?:bcrypt|hashpw|checkpw|argon2|scrypt|pbkdf2(?:_hmac)?|passlib)\b", re.I),
    ),
    (
        "compression",
        re.compile(r"\b(?:zlib|gzip|brotli|lzma|bz2|zstd|zstandard|compress|decompress)\b", re.I),
    ),
    ("TLS", re.compile(r"\b(?:ssl|do_handshake|SSLSocket|SSLObject)\b")),
    # an export's own product: csv's C writer, called row by row from the app's line
    ("CSV serialization", re.compile(r"\.writerows?\(|\b_csv\b")),
)
MIN_SHARE = 0.5  # of the hot spot's samples


def _kind_of(label: str) -> str:
    function, file, line = parse_frame(label)
    texts = [function, file]
    if file and line:
        texts.append(linecache.getline(file, line))
    for name, pattern in KINDS:
        if any(pattern.search(text) for text in texts if text):
            return name
    return ""


_CSV_WRITER = re.compile(r"\bcsv\.(?:writer|DictWriter)\(|\.writerows?\(")


def _function_source(owner: str) -> str:
    """The source of the function an owner frame names (``name (file)``), from the file
    when it is on this host: its ``def`` line to the next line indented as far or less."""
    function, file, _ = parse_frame(owner)
    name = function.rsplit(".", 1)[-1].split("<", 1)[0]
    lines = linecache.getlines(file) if file else []
    for number, line in enumerate(lines):
        if re.match(rf"\s*(?:async\s+)?def {re.escape(name)}\(", line):
            indent = len(line) - len(line.lstrip())
            body = [line]
            for following in lines[number + 1 :]:
                if following.strip() and len(following) - len(following.lstrip()) <= indent:
                    break
                body.append(following)
            return "".join(body)
    return ""


def deliberate_cost(
    leaf_samples: Mapping[str, float], owner: str = "", callers: Sequence[str] = ()
) -> str:
    """The deliberate cost (``"password hashing"``...) that holds at least
    ``MIN_SHARE`` of these leaf frames' samples, or ``""``. ``owner``: the function whose
    own CPU this is, ``callers`` the frames that called it, nearest first; a function that
    writes a CSV (``csv.writer``, ``writerow``), or one it calls (a date formatter), is an
    export, whose row building and writing are its product."""
    if any(_CSV_WRITER.search(_function_source(f)) for f in [owner, *callers][:3] if f):
        return "CSV serialization"
    total = float(sum(leaf_samples.values()))
    if total <= 0:
        return ""
    by_kind: dict[str, float] = {}
    for label, count in leaf_samples.items():
        kind = _kind_of(str(label))
        if kind:
            by_kind[kind] = by_kind.get(kind, 0.0) + float(count)
    if not by_kind:
        return ""
    kind, count = max(by_kind.items(), key=lambda item: item[1])
    return kind if count / total >= MIN_SHARE else ""


ADVICE = {
    "password hashing": (
        "By design: password hashing is slow on purpose, so that stolen hashes are slow to "
        "crack; do not rewrite it. Keep the work factor where your security policy puts it "
        "(bcrypt rounds 10 to 12), rate-limit the endpoint, run the hash off the event loop "
        "in async servers, and size capacity for logins per second."
    ),
    "compression": (
        "By design: compression trades CPU for bytes. Tune its level (gzip 6 or less for "
        "dynamic responses), skip small or already-compressed bodies, or compress static "
        "files once at build time (or at the CDN) instead of per request."
    ),
    "CSV serialization": (
        "By design: writing the CSV is what this endpoint does, and csv's writer is C. "
        "If the export is too slow, send fewer rows or columns (filters, a date range), "
        "stream it (already done when the rows are yielded in chunks), or build the file "
        "in the background and serve it from storage."
    ),
    "TLS": (
        "By design: TLS handshakes cost CPU. Keep connections alive, resume sessions, or "
        "terminate TLS at the load balancer instead of in the application workers."
    ),
}
