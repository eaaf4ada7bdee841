"""Alembic environment: the URL comes from the caller (``alertd init``) or ALERTD settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from alertd.models import Base

target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    from alertd.db import make_engine
    from alertd.settings import load_settings

    engine = make_engine(load_settings().database_url)
    with engine.connect() as conn:
        run_migrations(conn)
else:
    run_migrations(connection)
