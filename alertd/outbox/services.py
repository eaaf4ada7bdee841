"""Writing outbox rows, sending them after commit, and relaying what was not taken."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from alertd.context import Context
from alertd.db import after_commit, utcnow
from alertd.outbox.models import OutboxMessage

# A row published but still not taken after this long is assumed lost by the broker (a Redis
# restart without persistence) and sent again; a second copy is harmless, every task claims.
REPUBLISH_UNCONSUMED_SECONDS = 30
RELAY_BATCH = 200


def add_message(ctx: Context, session: Session, task: str, payload: dict[str, Any]) -> int:
    """Write a task into the outbox in the caller's transaction, and send it once that
    transaction has committed. The task receives the outbox row's id."""
    message = OutboxMessage(task=task, payload=payload)
    session.add(message)
    session.flush()
    message_id = message.id
    after_commit(session, lambda: publish(ctx, message_id, task))
    return message_id


def publish(ctx: Context, message_id: int, task: str) -> bool:
    if not ctx.publisher.send(task, [message_id]):
        return False
    with ctx.db.transaction() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(published_at=utcnow(), publish_count=OutboxMessage.publish_count + 1)
        )
    return True


def take_message(session: Session, message_id: int) -> OutboxMessage | None:
    """Mark a message taken by a worker; None when it does not exist. Taking it twice is
    harmless: the handler's own records decide whether there is work left."""
    message = session.get(OutboxMessage, message_id)
    if message is not None and message.consumed_at is None:
        message.consumed_at = utcnow()
    return message


def relay(ctx: Context) -> int:
    """Send again every message not taken in time. Returns how many were sent."""
    now = utcnow()
    with ctx.db.session() as session:
        rows = session.execute(
            select(OutboxMessage.id, OutboxMessage.task)
            .where(
                OutboxMessage.consumed_at.is_(None),
                OutboxMessage.created_at
                < now - timedelta(seconds=ctx.settings.OUTBOX_REPUBLISH_SECONDS),
                or_(
                    OutboxMessage.published_at.is_(None),
                    OutboxMessage.published_at
                    < now - timedelta(seconds=REPUBLISH_UNCONSUMED_SECONDS),
                ),
            )
            .order_by(OutboxMessage.id)
            .limit(RELAY_BATCH)
        ).all()
    return sum(publish(ctx, row.id, row.task) for row in rows)
