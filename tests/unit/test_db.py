"""The unit of work: on SQLite this process's writers take turns before asking for the lock."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, update

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
