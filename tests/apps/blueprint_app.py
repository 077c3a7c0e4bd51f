"""A Flask app whose views live in a blueprint, as larger Flask apps are organised:
``gunicorn -k gthread tests.apps.blueprint_app:app``."""

from __future__ import annotations

from flask import Blueprint, Flask, abort, jsonify
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.apps.models import Base, Item, make_engine

engine = make_engine()
Base.metadata.create_all(engine)
items = Blueprint("items", __name__)


@items.get("/items")
def list_items():
    with Session(engine) as session:
        rows = session.scalars(select(Item).order_by(Item.id)).all()
        return jsonify([{"id": i.id, "owner": i.owner.name} for i in rows])


@items.get("/items/<int:item_id>")
def get_item(item_id: int):
    with Session(engine) as session:
        item = session.get(Item, item_id)
        if item is None:
            abort(404)
        return jsonify({"id": item.id, "owner": item.owner.name})


app = Flask(__name__)
app.register_blueprint(items)
