"""The reference API behaves like a product: auth, visibility, writes, and 4xx (never
500) for every kind of bad input."""

from __future__ import annotations

import pytest

from tests.conftest import ANCHOR

pytestmark = pytest.mark.integration


def test_login_and_token(deploy):
    dep = deploy()
    wrong = dep.client.post(
        "/auth/login", json={"email": "agent1@opendesk.test", "password": "nope"}
    )
    assert wrong.status_code == 401
    assert dep.client.get("/tickets").status_code == 401
    assert dep.client.get("/tickets", headers={"Authorization": "Bearer junk"}).status_code == 401
    assert dep.get("/tickets").status_code == 200


def test_list_shape_and_filters(deploy):
    dep = deploy()
    page = dep.get("/tickets?status=open&priority=high&page_size=5").json()
    assert set(page) == {"items", "total", "page", "page_size", "next_cursor"}
    assert page["total"] >= len(page["items"])
    for item in page["items"]:
        assert item["status"] == "open" and item["priority"] == "high"
        assert {"creator", "assignee", "tags", "comment_count", "sla_due_at"} <= set(item)
    newest = dep.get("/tickets?sort=-created_at&page_size=50").json()["items"]
    stamps = [i["created_at"] for i in newest]
    assert stamps == sorted(stamps, reverse=True)
    found = dep.get("/tickets?q=Invoice").json()["items"]
    assert found and all("invoice" in i["title"].lower() for i in found)


def test_customer_sees_only_own_tickets(deploy):
    dep = deploy()
    mine = dep.login("customer1@example.com")
    items = dep.client.get("/tickets?page_size=100", headers=mine).json()["items"]
    me = dep.client.post(
        "/auth/login", json={"email": "customer1@example.com", "password": "opendesk"}
    ).json()["user"]
    assert all(i["creator"]["id"] == me["id"] for i in items)
    other = dep.get("/tickets?page_size=100").json()["items"]
    foreign = next(i for i in other if i["creator"]["id"] != me["id"])
    assert dep.client.get(f"/tickets/{foreign['id']}", headers=mine).status_code == 404
    assert dep.client.get("/reports/distribution", headers=mine).status_code == 403
    assert dep.client.get("/tickets/export.csv", headers=mine).status_code == 403


def test_write_flow(deploy):
    dep = deploy()
    created = dep.client.post(
        "/tickets",
        headers=dep.agent,
        json={"title": "VPN down", "description": "since 9am", "priority": "urgent",
              "category_id": 2, "tags": ["outage", "brand-new-tag"]},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    ticket = created.json()
    assert ticket["number"] == f"OD-{ticket['id']:07d}"
    assert ticket["tags"] == ["brand-new-tag", "outage"]
    resolved = dep.client.patch(
        f"/tickets/{ticket['id']}", headers=dep.agent, json={"status": "resolved"}
    ).json()
    assert resolved["resolved_at"] is not None
    reopened = dep.client.patch(
        f"/tickets/{ticket['id']}", headers=dep.agent, json={"status": "open"}
    ).json()
    assert reopened["resolved_at"] is None
    comment = dep.client.post(
        f"/tickets/{ticket['id']}/comments", headers=dep.agent, json={"body": "x", "internal": True}
    )
    assert comment.status_code == 201
    detail = dep.get(f"/tickets/{ticket['id']}").json()
    assert [c["body"] for c in detail["comments"]] == ["x"]


BAD_REQUESTS = [
    ("GET", "/tickets?page=0", None),
    ("GET", "/tickets?page=99999999999999999999", None),
    ("GET", "/tickets?page_size=1000", None),
    ("GET", "/tickets?status=bogus", None),
    ("GET", "/tickets?sort=title", None),
    ("GET", "/tickets?assignee=abc", None),
    ("GET", "/tickets?assignee=99999999999999", None),
    ("GET", "/tickets?cursor=%%%", None),
    ("GET", "/tickets?q=" + "x" * 500, None),
    ("GET", "/tickets/abc", None),
    ("GET", "/tickets/0", None),
    ("GET", "/tickets/99999999999", None),
    ("GET", "/tickets/1999999", None),
    ("GET", "/reports/nope", None),
    ("GET", "/reports/ticket-stats?days=0", None),
    ("GET", "/reports/ticket-stats?as_of=yesterday", None),
    ("GET", "/articles/0", None),
    ("GET", "/articles/424242", None),
    ("POST", "/tickets", {}),
    ("POST", "/tickets", {"title": "", "description": "d"}),
    ("POST", "/tickets", {"title": "t", "description": "d", "priority": "meh"}),
    ("POST", "/tickets", {"title": "t", "description": "d", "category_id": 424242}),
    ("POST", "/tickets", {"title": "t", "description": "d", "assignee_id": 300}),
    ("POST", "/tickets", {"title": "t", "description": "d", "tags": ["Bad Tag!"]}),
    ("POST", "/tickets", {"title": "t" * 201, "description": "d"}),
    ("POST", "/tickets", "not json"),
    ("PATCH", "/tickets/1", {"status": None}),
    ("PATCH", "/tickets/1", {"assignee_id": 300}),
    ("PATCH", "/tickets/424242", {"status": "open"}),
    ("POST", "/tickets/1/comments", {"body": ""}),
    ("POST", "/articles/1/ratings", {"score": 9}),
    ("POST", "/auth/login", {"email": "x"}),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_REQUESTS)
def test_bad_input_is_a_json_4xx(deploy, method, path, body):
    dep = deploy()
    kwargs = {"content": body} if isinstance(body, str) else {"json": body}
    response = dep.client.request(method, path, headers=dep.agent, **kwargs)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert "detail" in response.json()


def test_reports_shapes(deploy):
    dep = deploy()
    stats = dep.get(f"/reports/ticket-stats?as_of={ANCHOR}").json()
    assert stats["created"] == sum(stats["by_status"].values()) > 0
    trends = dep.get(f"/reports/daily-trends?as_of={ANCHOR}&days=14").json()
    assert len(trends["days"]) == 14
    sla = dep.get(f"/reports/sla-compliance?as_of={ANCHOR}").json()
    assert {p["priority"] for p in sla["priorities"]} == {"low", "medium", "high", "urgent"}
    perf = dep.get(f"/reports/agent-performance?as_of={ANCHOR}").json()
    assert perf["agents"] and all(a["assigned"] >= a["resolved"] for a in perf["agents"])
    dist = dep.get("/reports/distribution").json()
    assert sum(dist["status"].values()) == sum(dist["priority"].values())


def test_dashboard_articles_health_metrics(deploy):
    dep = deploy()
    board = dep.get("/dashboard").json()
    assert board["my_open"] == sum(board["my_open_by_status"].values())
    articles = dep.get("/articles?q=fix").json()
    assert articles["total"] > 0
    first = articles["items"][0]["id"]
    views = dep.get(f"/articles/{first}").json()["view_count"]
    assert dep.get(f"/articles/{first}").json()["view_count"] == views + 1
    assert (
        dep.client.post(
            f"/articles/{first}/ratings", headers=dep.agent, json={"score": 5}
        ).status_code
        == 201
    )
    health = dep.client.get("/health").json()
    assert health["database"] == "ok" and health["redis"] == "ok"
    metrics = dep.client.get("/metrics").text
    assert 'opendesk_http_requests_total{method="GET",route="/articles/{article_id}"' in metrics
    assert "opendesk_db_connections_opened_total" in metrics
