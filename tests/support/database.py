"""Test databases: SQLite by default, PostgreSQL when ALERTD_TEST_DATABASE_URL names one.
The schema is built once per run with the real migrations; each test starts from empty tables."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Connection, text

from alertd.audit.models import GENESIS_HASH
from alertd.db import Database
from alertd.models import Base
from alertd.schema import upgrade

POSTGRES_URL = os.environ.get("ALERTD_TEST_DATABASE_URL", "")


def database_url(tmp_dir: Path) -> str:
    return POSTGRES_URL or f"sqlite:///{tmp_dir / 'alertd-test.sqlite3'}"


def reset_schema(url: str) -> None:
    """Drop everything and run the migrations from scratch."""
    db = Database(url)
    try:
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            else:
                Base.metadata.drop_all(conn)
                conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade(db)
    finally:
        db.dispose()


def empty_tables(db: Database) -> None:
    with db.engine.begin() as conn:
        names = [t.name for t in reversed(Base.metadata.sorted_tables)]
        if db.engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                conn.execute(text(f"DELETE FROM {name}"))  # noqa: S608 - our own table names
            if _has_sequence(conn):
                conn.execute(text("DELETE FROM sqlite_sequence"))
        conn.execute(
            text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :h)"), {"h": GENESIS_HASH}
        )


def _has_sequence(conn: Connection) -> bool:
    result = conn.execute(text("SELECT name FROM sqlite_master WHERE name='sqlite_sequence'"))
    return result.first() is not None
