"""The test apps' database: owners and items (SQLite or PostgreSQL), with an N+1 on
``item.owner``."""

from __future__ import annotations

import os

from sqlalchemy import Engine, ForeignKey, String, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

N_ITEMS = 6


class Base(DeclarativeBase):
    pass


class Owner(Base):
    __tablename__ = "owners"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id"))
    views: Mapped[int] = mapped_column(default=0)  # hot_row_app counts page views here
    owner: Mapped[Owner] = relationship()  # lazy="select": one query per item


def database_url() -> str:
    return os.environ.get("TESTAPP_DATABASE_URL", "sqlite:///testapp.sqlite3")


def make_engine(url: str | None = None) -> Engine:
    url = url or database_url()
    if not url.startswith("sqlite"):
        return create_engine(url)
    engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _wal(dbapi_conn, _record) -> None:
        dbapi_conn.execute("PRAGMA journal_mode=WAL")

    return engine


def init_db(url: str) -> None:
    """Create and fill the database (each item has its own owner, so the N+1 is N)."""
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        for n in range(1, N_ITEMS + 1):
            owner = Owner(name=f"owner {n}")
            session.add_all([owner, Item(title=f"item {n}", owner=owner)])
        session.commit()
    engine.dispose()
