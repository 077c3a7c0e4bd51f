"""A Flask app whose N+1 happens in a Jinja2 template (``item.owner`` lazy-loads while the
page renders), as server-rendered apps' do: ``gunicorn tests.apps.template_app:app``."""

from __future__ import annotations

from flask import Flask, abort, render_template
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.apps.models import Base, Item, make_engine

engine = make_engine()
Base.metadata.create_all(engine)
app = Flask(__name__)


@app.get("/items")
def list_items() -> str:
    with Session(engine) as session:
        items = session.scalars(select(Item).order_by(Item.id)).all()
        return render_template("items.html", items=items)


@app.get("/items/<int:item_id>")
def get_item(item_id: int) -> str:
    with Session(engine) as session:
        item = session.get(Item, item_id)
        if item is None:
            abort(404)
        return render_template("items.html", items=[item])
