"""An ordinary Flask + SQLAlchemy app: ``flask --app tests.apps.flask_app run``."""

from __future__ import annotations

from flask import Flask, Response, abort, jsonify
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests.apps.models import Base, Item, make_engine

engine = make_engine()
Base.metadata.create_all(engine)
app = Flask(__name__)


@app.get("/items")
def list_items():
    with Session(engine) as session:
        items = session.scalars(select(Item).order_by(Item.id)).all()
        return jsonify([{"id": i.id, "title": i.title, "owner": i.owner.name} for i in items])


@app.get("/items/<int:item_id>")
def get_item(item_id: int):
    with Session(engine) as session:
        item = session.get(Item, item_id)
        if item is None:
            abort(404)
        return jsonify({"id": item.id, "title": item.title, "owner": item.owner.name})


@app.get("/stream")
def stream():
    def chunks():
        for n in range(3):
            with engine.connect() as conn:
                yield f"{conn.execute(text('SELECT :n'), {'n': n}).scalar()}\n"

    return Response(chunks(), mimetype="text/plain")


@app.get("/boom")
def boom():
    raise RuntimeError("boom")
