"""The probe's hooks on real SQLAlchemy, FastAPI and Flask objects, in-process.

``install(app, engine)`` is the way in for code you own; what it records must be what
``deskprof run`` records (the same middlewares and hooks), so these tests pin the record
content: route templates, handlers, request ids, call sites, redaction, errors.
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from deskprof.probe import install
from deskprof.probe.reader import read_probe_dir
from tests.apps.models import Item, init_db, make_engine


@pytest.fixture
def engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'items.sqlite3'}"
    init_db(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _fastapi_app(engine) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    def get_item(item_id: int) -> dict:
        with Session(engine) as session:
            item = session.get(Item, item_id)
            if item is None:
                raise HTTPException(404)
            return {"owner": item.owner.name}

    @app.get("/async/{item_id}")
    async def get_item_async(item_id: int) -> dict:
        with Session(engine) as session:
            return {"title": session.scalars(select(Item.title).where(Item.id == item_id)).one()}

    @app.get("/bad-sql")
    def bad_sql() -> dict:
        with engine.connect() as conn:
            conn.execute(text("SELECT * FROM no_such_table"))
        return {}

    return app


def test_fastapi_requests_and_their_queries(tmp_path, engine):
    out = tmp_path / "probe"
    app = _fastapi_app(engine)
    with install(app, engine, out_dir=out) as handle, TestClient(app) as client:
        assert client.get("/items/2", headers={"X-Request-ID": "load-1"}).json() == {
            "owner": "owner 2"
        }
        assert client.get("/async/3", headers={"X-Request-ID": "load-2"}).status_code == 200
        assert client.get("/items/99", headers={"X-Request-ID": "not ok!"}).status_code == 404
        with pytest.raises(Exception, match="no_such_table"):
            client.get("/bad-sql", headers={"X-Request-ID": "load-4"})
        handle.flush()
    read = read_probe_dir(out)
    requests = {r["request_id"]: r for r in read["requests"]}
    assert requests["load-1"]["route"] == "/items/{item_id}"
    assert requests["load-1"]["handler"].endswith("test_probe_hooks:_fastapi_app.<locals>.get_item")
    assert requests["load-1"]["status"] == 200 and requests["load-1"]["method"] == "GET"
    assert requests["load-2"]["route"] == "/async/{item_id}"
    assert requests["load-4"]["status"] == 500 and requests["load-4"]["error"]
    replaced = [r for r in read["requests"] if r["status"] == 404]
    assert len(replaced) == 1 and len(replaced[0]["request_id"]) == 32  # a fresh uuid4 hex
    for r in read["requests"]:
        assert r["end_ns"] >= r["start_ns"] and r["duration_ns"] == r["end_ns"] - r["start_ns"]

    queries = [q for q in read["queries"] if q["request_id"] == "load-1"]
    assert len(queries) == 2  # the item, then its owner (lazy load)
    assert all("?" in q["statement"] for q in queries)
    assert all(q["parameters"] == '["int"]' for q in queries)
    assert all(q["call_site"].startswith(f"{__file__}:") for q in queries)
    assert [q["call_function"] for q in queries] == ["_fastapi_app.<locals>.get_item"] * 2
    assert all(q["connection_id"] for q in queries)
    async_queries = [q for q in read["queries"] if q["request_id"] == "load-2"]
    assert len(async_queries) == 1
    failed = [q for q in read["queries"] if q["request_id"] == "load-4"]
    assert failed[0]["error"] == "OperationalError" and failed[0]["rowcount"] == -1
    events = {(c["event"], c["request_id"]) for c in read["connections"]}
    assert ("checkout", "load-1") in events and ("checkin", "load-1") in events
    assert read["probe_stats"][0]["dropped"] == 0


def test_switched_off_records_nothing_and_on_again_records(tmp_path, engine):
    out = tmp_path / "probe"
    app = _fastapi_app(engine)
    with install(app, engine, out_dir=out, enabled=False) as handle, TestClient(app) as client:
        client.get("/items/1", headers={"X-Request-ID": "while-off"})
        handle.enable()
        client.get("/items/1", headers={"X-Request-ID": "while-on"})
        handle.flush()
    ids = {r["request_id"] for kind in ("requests", "queries") for r in read_probe_dir(out)[kind]}
    assert ids == {"while-on"}


def test_keep_parameters_and_sqlcommenter(tmp_path, engine):
    sent: list[str] = []
    out = tmp_path / "probe"
    app = _fastapi_app(engine)
    with install(app, engine, out_dir=out, keep_parameters=True, sqlcommenter=True) as handle:
        event.listen(engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
        with TestClient(app) as client:
            client.get("/items/4", headers={"X-Request-ID": "c-1"})
        handle.flush()
    queries = [q for q in read_probe_dir(out)["queries"] if q["request_id"] == "c-1"]
    assert queries[0]["parameters"] == "[4]"
    assert all("/*" not in q["statement"] for q in queries)  # the record groups cleanly...
    commented = [s for s in sent if "request_id='c-1'" in s]  # ...the database sees the comment
    assert commented and all("route='%2Fitems%2F%7Bitem_id%7D'" in s for s in commented)


def test_an_internal_error_is_counted_never_raised_into_the_query(tmp_path, engine, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("probe bug")

    monkeypatch.setattr("deskprof.probe.sql.describe_parameters", broken)
    with install(None, engine, out_dir=tmp_path / "probe") as handle:
        with Session(engine) as session:
            assert session.get(Item, 1).title == "item 1"
        assert handle.stats()["errors"] >= 1


def test_flask_requests_have_rule_templates_and_view_functions(tmp_path, engine):
    from flask import Flask, abort

    app = Flask(__name__)

    @app.get("/items/<int:item_id>")
    def show(item_id: int):
        with Session(engine) as session:
            item = session.get(Item, item_id)
            if item is None:
                abort(404)
            return {"owner": item.owner.name}

    @app.get("/boom")
    def boom():
        raise RuntimeError("boom")

    out = tmp_path / "probe"
    with install(app, engine, out_dir=out) as handle:
        client = app.test_client()
        # buffered: read the body and close the response, as a WSGI server does
        response = client.get("/items/5", headers={"X-Request-ID": "f-1"}, buffered=True)
        assert response.status_code == 200
        response = client.get("/boom", headers={"X-Request-ID": "f-2"}, buffered=True)
        assert response.status_code == 500
        handle.flush()
    read = read_probe_dir(out)
    requests = {r["request_id"]: r for r in read["requests"]}
    assert requests["f-1"]["route"] == "/items/<int:item_id>"
    assert requests["f-1"]["handler"] == (
        f"{__name__}:test_flask_requests_have_rule_templates_and_view_functions.<locals>.show"
    )
    assert (requests["f-2"]["status"], requests["f-2"]["error"]) == (500, "RuntimeError")
    assert len([q for q in read["queries"] if q["request_id"] == "f-1"]) == 2


def test_install_refuses_an_app_it_does_not_know():
    with pytest.raises(TypeError, match="neither a Starlette/FastAPI nor a Flask app"):
        install(object())


def test_install_without_a_directory_installs_nothing(monkeypatch, engine):
    monkeypatch.delenv("DESKPROF_PROBE_DIR", raising=False)
    handle = install(None, engine)
    assert handle.recorder is None and not handle.active
    handle.close()
