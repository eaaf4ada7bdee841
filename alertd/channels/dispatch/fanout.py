"""From an outbox message to one dispatch per channel, and from a dispatch to one delivery
row per recipient, each written under a unique key so that running a step twice adds nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from itertools import islice
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from alertd.channels.models import (
    D_PENDING,
    PENDING,
    RETRY_WAIT,
    Delivery,
    Dispatch,
)
from alertd.channels.registry import Channel, registry_for
from alertd.context import Context
from alertd.db import after_commit, dialect_insert, utcnow
from alertd.outbox.services import take_message
from alertd.task_names import DELIVER_TASK, PLAN_TASK

log = logging.getLogger(__name__)


# A task that took a delivery row but did not come back within this long is presumed lost.
REENQUEUE_AFTER_SECONDS = 30


def dispatch_version(ctx: Context, message_id: int) -> list[int]:
    """Create one dispatch per registered channel for the version in an outbox message, and send
    a planning task for each one still to plan. Returns the dispatch ids."""
    channels = registry_for(ctx).names()
    with ctx.db.transaction() as session:
        message = take_message(session, message_id)
        if message is None:
            log.warning("outbox message %s does not exist", message_id)
            return []
        version_id = int(message.payload["version_id"])
        if channels:
            session.execute(
                dialect_insert(session)(Dispatch)
                .values(
                    [
                        {
                            "version_id": version_id,
                            "channel": c,
                            "state": D_PENDING,
                            "created_at": utcnow(),
                            "planned_count": 0,
                            "error": "",
                        }
                        for c in channels
                    ]
                )
                .on_conflict_do_nothing(index_elements=["version_id", "channel"])
            )
        to_plan = list(
            session.execute(
                select(Dispatch.id).where(
                    Dispatch.version_id == version_id, Dispatch.state == D_PENDING
                )
            ).scalars()
        )
        for dispatch_id in to_plan:
            _send_after_commit(ctx, session, PLAN_TASK, [dispatch_id])
        return to_plan


def _send_after_commit(ctx: Context, session: Session, task: str, args: list[Any]) -> None:
    after_commit(session, lambda: ctx.publisher.send(task, args))


def task_size(ctx: Context, channel: Channel | None) -> int:
    """Deliveries per delivery task for this channel."""
    size = int(ctx.settings.DELIVERY_BATCH_SIZE)
    return min(size, channel.task_size) if channel and channel.task_size else size


def _batched(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def enqueue_open_deliveries(
    ctx: Context, session: Session, dispatch_id: int, *, only_stale: bool = False
) -> int:
    """Send delivery tasks, one per batch, for the dispatch's rows that are due and not taken."""
    now = utcnow()
    query = (
        select(Delivery.id)
        .where(
            Delivery.dispatch_id == dispatch_id,
            Delivery.state.in_((PENDING, RETRY_WAIT)),
            Delivery.next_attempt_at <= now,
        )
        .order_by(Delivery.id)
    )
    if only_stale:
        query = query.where(
            or_(
                Delivery.enqueued_at.is_(None),
                Delivery.enqueued_at < now - timedelta(seconds=REENQUEUE_AFTER_SECONDS),
            )
        )
    ids = list(session.execute(query).scalars())
    name = session.execute(select(Dispatch.channel).where(Dispatch.id == dispatch_id)).scalar()
    channel = registry_for(ctx).get(name) if name else None
    for batch in _batched(ids, task_size(ctx, channel)):
        session.execute(update(Delivery).where(Delivery.id.in_(batch)).values(enqueued_at=now))
        _send_after_commit(ctx, session, DELIVER_TASK, [dispatch_id, list(batch)])
    return len(ids)
