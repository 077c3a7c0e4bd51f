"""Each fix returns what the first version returns, for the same inputs.

And each planted problem is really there: the baseline issues the N+1 queries, opens a
connection per request, recomputes reports, and so on, while its fix does not.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from opendesk import migrations, notifications
from opendesk.models import Notification
from tests.conftest import ANCHOR

pytestmark = pytest.mark.integration

LIST_QUERIES = [
    "/tickets",
    "/tickets?status=open",
    "/tickets?status=resolved&sort=updated_at&page=3",
    "/tickets?priority=urgent&sort=-number",
    "/tickets?assignee=me",
    "/tickets?assignee=none&sort=created_at",
    "/tickets?q=login&page_size=50",
    "/tickets?category_id=3&page=2&page_size=10",
]
REPORTS = ["ticket-stats", "daily-trends", "agent-performance", "sla-compliance", "distribution"]


@pytest.mark.parametrize("path", LIST_QUERIES)
def test_eager_loading_same_list_fewer_queries(deploy, path):
    base, fixed = deploy(), deploy("eager_loading")
    before = base.count_sql()
    expected = base.get(path)
    base_queries = base.count_sql() - before
    before = fixed.count_sql()
    actual = fixed.get(path)
    fixed_queries = fixed.count_sql() - before
    assert expected.status_code == actual.status_code == 200
    assert actual.json() == expected.json()
    if len(expected.json()["items"]) >= 10:
        # N+1: per row creator/assignee/tags/comments lazily vs a handful of batched loads
        assert base_queries >= 2 * len(expected.json()["items"])
        assert fixed_queries <= 10


def test_eager_loading_same_detail(deploy):
    base, fixed = deploy(), deploy("eager_loading")
    for ticket_id in (1, 17, 250, 1999):
        assert fixed.get(f"/tickets/{ticket_id}").json() == base.get(f"/tickets/{ticket_id}").json()


def test_keyset_pages_match_offset_pages(deploy):
    base, fixed = deploy(), deploy("keyset_pagination")
    for query in ("/tickets?page_size=20", "/tickets?status=closed&sort=updated_at&page_size=15"):
        cursor = None
        for page in range(1, 6):
            expected = base.get(f"{query}&page={page}").json()
            url = f"{query}&cursor={cursor}" if cursor else query
            actual = fixed.get(url).json()
            assert [i["id"] for i in actual["items"]] == [i["id"] for i in expected["items"]]
            assert actual["total"] == expected["total"]
            cursor = actual["next_cursor"]
            assert cursor, "a full page must offer a next cursor"


def test_keyset_count_is_cached_between_pages(deploy):
    fixed = deploy("keyset_pagination")
    first = fixed.get("/tickets?status=resolved").json()
    before = fixed.count_sql()
    fixed.get(f"/tickets?status=resolved&cursor={first['next_cursor']}")
    sql = [s for s in fixed.statements[before:] if "count(" in s.lower()]
    assert sql == [], "the total must come from the cache on a cursor page"


@pytest.mark.parametrize("report", REPORTS)
def test_report_cache_same_numbers(deploy, report):
    base, fixed = deploy(), deploy("report_cache")
    url = f"/reports/{report}?as_of={ANCHOR.isoformat()}"
    expected = base.get(url)
    assert expected.status_code == 200, expected.text
    assert fixed.get(url).json() == expected.json()
    # the second request is served from Redis: no SQL at all besides authentication
    before = fixed.count_sql()
    assert fixed.get(url).json() == expected.json()
    assert all("tickets" not in s and "comments" not in s for s in fixed.statements[before:])


def test_report_cache_invalidated_by_writes(deploy):
    fixed = deploy("report_cache")
    url = f"/reports/distribution?as_of={ANCHOR.isoformat()}"
    before = fixed.get(url).json()
    created = fixed.client.post(
        "/tickets",
        headers=fixed.agent,
        json={"title": "cache check", "description": "d", "priority": "urgent"},
    )
    assert created.status_code == 201, created.text
    after = fixed.get(url).json()
    assert after["priority"]["urgent"] == before["priority"]["urgent"] + 1
    assert after == deploy().get(url).json(), "cached report must equal a fresh computation"


def test_streaming_export_same_bytes(deploy):
    base, fixed = deploy(), deploy("streaming_export")
    for query in ("", "?status=open", "?priority=high&category_id=2", "?q=nothing-matches-this"):
        expected = base.get(f"/tickets/export.csv{query}")
        actual = fixed.get(f"/tickets/export.csv{query}")
        assert expected.status_code == actual.status_code == 200
        assert actual.content == expected.content
    assert expected.content.startswith(b"number,title,status")


def test_sla_closed_form_same_lists_and_reports(deploy):
    base, fixed = deploy(), deploy("sla_closed_form")
    for path in ("/tickets?page_size=100", f"/reports/sla-compliance?as_of={ANCHOR}&days=60"):
        assert fixed.get(path).json() == base.get(path).json()


def test_connection_pool_same_results_fewer_connections(deploy):
    from opendesk.metrics import DB_CONNECTIONS

    base, fixed = deploy(), deploy("connection_pool")
    for dep in (base, fixed):
        dep.get("/tickets")  # warm up the pool
    opened = DB_CONNECTIONS._value.get()
    for _ in range(5):
        base_json = base.get("/tickets?status=open").json()
    base_opened = DB_CONNECTIONS._value.get() - opened
    opened = DB_CONNECTIONS._value.get()
    for _ in range(5):
        fixed_json = fixed.get("/tickets?status=open").json()
    fixed_opened = DB_CONNECTIONS._value.get() - opened
    assert fixed_json == base_json
    assert base_opened >= 5, "the first version opens a connection per request"
    assert fixed_opened == 0, "the pool reuses its connections"


def _outbox(dep, ticket_ids: list[int]) -> list[tuple]:
    with dep.ctx.sessions() as session:
        rows = session.scalars(
            select(Notification)
            .where(Notification.ticket_id.in_(ticket_ids))
            .order_by(Notification.ticket_id, Notification.kind, Notification.recipient_id)
        ).all()
        return [(r.kind, r.recipient_email, r.subject, r.body) for r in rows]


def _write_sequence(dep, title: str) -> int:
    created = dep.client.post(
        "/tickets",
        headers=dep.agent,
        json={"title": title, "description": "printer on fire", "priority": "high",
              "category_id": 1, "tags": ["bug"]},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    ticket_id = created.json()["id"]
    patched = dep.client.patch(
        f"/tickets/{ticket_id}",
        headers=dep.agent,
        json={"status": "in_progress", "assignee_id": 5},
    )
    assert patched.status_code == 200, patched.text
    commented = dep.client.post(
        f"/tickets/{ticket_id}/comments", headers=dep.agent, json={"body": "on it"}
    )
    assert commented.status_code == 201, commented.text
    return ticket_id


def test_async_notifications_same_outbox(deploy, monkeypatch):
    # both arms write "at the same instant", so due times and timestamps can match
    frozen = datetime(2026, 11, 2, 10, 30)
    monkeypatch.setattr("opendesk.api.tickets.utcnow", lambda: frozen)
    base, fixed = deploy(), deploy("async_notifications")
    base_id = _write_sequence(base, "same outbox")
    fixed_id = _write_sequence(fixed, "same outbox")
    assert _outbox(fixed, [fixed_id]) == [], "the fix must not render inside the request"
    ctx = fixed.ctx
    done = notifications.drain(ctx.redis, ctx.settings.notification_queue, ctx.sessions)
    assert done == 3

    def normalise(rows, ticket_id):
        number = f"OD-{ticket_id:07d}"
        return [tuple(str(v).replace(number, "OD-X") for v in row) for row in rows]

    expected = normalise(_outbox(base, [base_id]), base_id)
    assert len(expected) >= 3
    assert normalise(_outbox(fixed, [fixed_id]), fixed_id) == expected


def test_indexes_migration_applies_reverts_and_keeps_results(deploy):
    base = deploy()
    engine = base.ctx.engine
    expected = [base.get(path).json() for path in LIST_QUERIES[:4]]
    try:
        created = migrations.apply(engine)
        assert set(migrations.applied(engine)) == {spec.name for spec in migrations.INDEXES}
        assert migrations.apply(engine) == [], "applying twice changes nothing"
        assert created
        assert [base.get(path).json() for path in LIST_QUERIES[:4]] == expected
    finally:
        dropped = migrations.revert(engine)
    assert set(dropped) == {spec.name for spec in migrations.INDEXES}
    assert migrations.applied(engine) == []
