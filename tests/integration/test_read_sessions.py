"""SQLite reads never wait on writes (issue 6 item 5): with a write transaction held open (the
write lock taken at BEGIN IMMEDIATE), a read session completes at once; in WAL mode it reads the
last committed state. On PostgreSQL the same holds by MVCC."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from alertd.channels.cap.feeds import document_fingerprint
from alertd.context import Context
from alertd.outbox.models import OutboxMessage

# Far below the 30 s busy timeout a read would wait for the write lock.
READ_WAIT_SECONDS = 10.0


def test_a_read_completes_while_a_write_transaction_is_held_open(ctx: Context) -> None:
    with ctx.db.transaction() as session:
        session.add(OutboxMessage(task="committed", payload={}))
    counted: list[int] = []
    with ctx.db.transaction() as writer:
        writer.add(OutboxMessage(task="uncommitted", payload={}))
        writer.flush()  # The write lock is held from here until the block ends.

        def read() -> None:
            with ctx.db.session() as reader:
                counted.append(reader.execute(select(func.count(OutboxMessage.id))).scalar_one())

        thread = threading.Thread(target=read)
        thread.start()
        thread.join(READ_WAIT_SECONDS)
        assert not thread.is_alive(), "the read waited for the write transaction"
    assert counted == [1], "the read saw the committed row only"


def test_feed_fingerprint_reads_while_a_write_is_held(ctx: Context) -> None:
    result: list[tuple[int, int]] = []
    with ctx.db.transaction() as writer:
        writer.add(OutboxMessage(task="held", payload={}))
        writer.flush()
        thread = threading.Thread(target=lambda: result.append(document_fingerprint(ctx.db)))
        thread.start()
        thread.join(READ_WAIT_SECONDS)
        assert not thread.is_alive(), "the feed poll waited for the write transaction"
    assert result == [(0, 0)]
