"""The ``indexes`` fix: a migration that adds (and can drop) the indexes lists need.

The first version's schema has primary keys and unique constraints only, so filtering
tickets by status or assignee, sorting by date, and loading a ticket's comments or tags
are sequential scans. Applying and reverting are idempotent, so an experiment can switch
a running database back and forth.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, inspect, text


@dataclass(frozen=True)
class IndexSpec:
    name: str
    table: str
    columns: str  # the column list as written in CREATE INDEX

    def create_sql(self) -> str:
        return f"CREATE INDEX IF NOT EXISTS {self.name} ON {self.table} ({self.columns})"

    def drop_sql(self) -> str:
        return f"DROP INDEX IF EXISTS {self.name}"


INDEXES = (
    IndexSpec("ix_tickets_status_created", "tickets", "status, created_at, id"),
    IndexSpec("ix_tickets_priority", "tickets", "priority"),
    IndexSpec("ix_tickets_assignee_status", "tickets", "assignee_id, status"),
    IndexSpec("ix_tickets_creator", "tickets", "creator_id"),
    IndexSpec("ix_tickets_category", "tickets", "category_id"),
    IndexSpec("ix_tickets_created", "tickets", "created_at, id"),
    IndexSpec("ix_tickets_updated", "tickets", "updated_at, id"),
    IndexSpec("ix_tickets_resolved", "tickets", "resolved_at"),
    IndexSpec("ix_comments_ticket", "comments", "ticket_id"),
    IndexSpec("ix_comments_author_created", "comments", "author_id, created_at"),
    IndexSpec("ix_comments_created", "comments", "created_at"),
    IndexSpec("ix_ticket_tags_tag", "ticket_tags", "tag_id"),
    IndexSpec("ix_users_team_role", "users", "team_id, role"),
    IndexSpec("ix_api_tokens_user", "api_tokens", "user_id"),
    IndexSpec("ix_notifications_ticket", "notifications", "ticket_id"),
    IndexSpec("ix_article_ratings_article", "article_ratings", "article_id"),
)


def applied(engine: Engine) -> list[str]:
    """Names of this migration's indexes present in the database."""
    inspector = inspect(engine)
    present = {
        ix["name"]
        for table in {spec.table for spec in INDEXES}
        for ix in inspector.get_indexes(table)
    }
    return [spec.name for spec in INDEXES if spec.name in present]


def apply(engine: Engine) -> list[str]:
    """Create the indexes that are missing; return the names created."""
    missing = [spec for spec in INDEXES if spec.name not in set(applied(engine))]
    with engine.begin() as conn:
        for spec in missing:
            conn.execute(text(spec.create_sql()))
        if missing:
            conn.execute(text("ANALYZE"))
    return [spec.name for spec in missing]


def revert(engine: Engine) -> list[str]:
    """Drop this migration's indexes; return the names dropped."""
    present = applied(engine)
    with engine.begin() as conn:
        for spec in INDEXES:
            if spec.name in present:
                conn.execute(text(spec.drop_sql()))
    return present


def reconcile(engine: Engine, want_indexes: bool) -> list[str]:
    """Make the schema match the ``indexes`` switch; return what changed."""
    return apply(engine) if want_indexes else revert(engine)
