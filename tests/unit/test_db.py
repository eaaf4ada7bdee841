"""The unit of work: on SQLite this process's writers take turns before asking for the lock."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.pool import NullPool

from alertd import db as db_module
from alertd.accounts.models import User
from alertd.audit.models import AuditEntry
from alertd.context import Context
from alertd.errors import Invalid


def _harmless_write(ctx: Context) -> None:
    with ctx.db.transaction() as session:
        session.execute(update(User).where(User.id == -1).values(active=True))


def test_on_sqlite_a_second_writer_begins_only_when_the_first_has_committed(
    ctx: Context,
) -> None:
    holding, release = threading.Event(), threading.Event()
    began: list[str] = []

    def first() -> None:
        with ctx.db.transaction() as session:
            session.execute(update(User).where(User.id == -1).values(active=True))
            holding.set()
            release.wait(timeout=20)

    def second() -> None:
        with ctx.db.transaction() as session:
            began.append("second")
            session.execute(update(User).where(User.id == -1).values(active=False))

    a = threading.Thread(target=first)
    a.start()
    assert holding.wait(timeout=20)
    b = threading.Thread(target=second)
    b.start()
    b.join(timeout=0.5)
    # On PostgreSQL writers do not take turns: rows, not the database, are locked.
    assert began == ([] if ctx.db.is_sqlite else ["second"])
    release.set()
    a.join(timeout=20)
    b.join(timeout=20)
    assert began == ["second"] and not a.is_alive() and not b.is_alive()


def test_a_transaction_inside_another_in_the_same_thread_is_not_stopped_by_the_turn(
    ctx: Context,
) -> None:
    # Reads inside a write transaction, and a refusal's own audit write after a rollback, run
    # in the thread that holds the turn.
    with ctx.db.transaction(), ctx.db.session():
        pass
    refused = Invalid("no", audit={"actor": None, "action": "test.refused", "outcome": "refused"})
    with pytest.raises(Invalid), ctx.db.transaction():
        raise refused
    _harmless_write(ctx)
    with ctx.db.session() as session:
        entries = session.execute(
            select(func.count()).where(AuditEntry.action == "test.refused")
        ).scalar_one()
    assert entries == 1


def test_a_pooled_connection_that_died_while_idle_is_replaced_not_used(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a connection back in the pool, then gone (the server ended it) while idle
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    with ctx.db.session() as session:
        session.execute(text("SELECT 1"))
        raw = session.connection().connection.dbapi_connection
        assert raw is not None
        if ctx.db.engine.dialect.name == "postgresql":
            pid = raw.info.backend_pid
    if ctx.db.engine.dialect.name == "postgresql":
        # From a connection of its own: the pool would hand back the very one to be ended.
        with create_engine(ctx.db.engine.url, poolclass=NullPool).connect() as other:
            # Waits (up to 5 s) until the backend is gone, not only signalled.
            other.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    else:
        raw.close()  # SQLite has no server; a closed handle fails the same way.

    # when / then: the next transaction is pinged at checkout, and runs on a new connection
    with ctx.db.session() as session:
        assert session.execute(text("SELECT 41 + 1")).scalar_one() == 42
