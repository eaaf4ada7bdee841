"""From an outbox message to one dispatch per channel, and from a dispatch to one delivery
row per recipient, each written under a unique key so that running a step twice adds nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from itertools import islice
from typing import Any

from sqlalchemy import DateTime, Select, literal, or_, select, update
from sqlalchemy.orm import Session

from alertd.actor import SYSTEM
from alertd.alerts.models import Version
from alertd.audit.services import record
from alertd.channels.models import (
    D_FAILED,
    D_PENDING,
    D_PLANNED,
    D_PLANNING,
    PENDING,
    RETRY_WAIT,
    Delivery,
    Dispatch,
)
from alertd.channels.registry import (
    Channel,
    registry_for,
)
from alertd.context import Context
from alertd.db import after_commit, dialect_insert, rowcount, utcnow
from alertd.outbox.services import take_message
from alertd.task_names import DELIVER_TASK, PLAN_TASK

log = logging.getLogger(__name__)


# A task that took a delivery row but did not come back within this long is presumed lost.
REENQUEUE_AFTER_SECONDS = 30
PLAN_LEASE_SECONDS = 120
MAX_PLAN_ATTEMPTS = 5


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


def _batched(items: Iterable[str], size: int) -> Iterable[list[str]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def plan_dispatch(ctx: Context, dispatch_id: int) -> int:
    """Write one delivery row per recipient, in chunks of DELIVERY_BATCH_SIZE, and send each
    chunk's delivery task as soon as the chunk commits. Safe to run again after a crash: rows
    exist once, whatever ran before, and rows already queued are not queued again."""
    now = utcnow()
    with ctx.db.transaction() as session:
        claimed = rowcount(
            session.execute(
                update(Dispatch)
                .where(
                    Dispatch.id == dispatch_id,
                    or_(
                        Dispatch.state == D_PENDING,
                        (Dispatch.state == D_PLANNING) & (Dispatch.lease_until < now),
                    ),
                )
                .values(
                    state=D_PLANNING,
                    lease_until=now + timedelta(seconds=PLAN_LEASE_SECONDS),
                    plan_attempts=Dispatch.plan_attempts + 1,
                )
            )
        )
        if not claimed:
            return 0
        dispatch = session.get(Dispatch, dispatch_id)
        assert dispatch is not None
        version = session.get(Version, dispatch.version_id)
        assert version is not None
    channel = registry_for(ctx).get(dispatch.channel)
    if channel is None:
        _fail_dispatch(ctx, dispatch, f"channel {dispatch.channel!r} is not registered")
        return 0
    try:
        return _write_deliveries(ctx, channel, dispatch, version)
    except Exception as exc:
        # Planning is retried when its lease runs out (a subscriber query may fail for a
        # moment); a channel that keeps failing is marked failed and shown, not retried forever.
        log.exception("planning dispatch %s failed", dispatch_id)
        if dispatch.plan_attempts >= MAX_PLAN_ATTEMPTS:
            _fail_dispatch(ctx, dispatch, f"planning failed {dispatch.plan_attempts} times: {exc}")
        return 0


def _fail_dispatch(ctx: Context, dispatch: Dispatch, error: str) -> None:
    with ctx.db.transaction() as session:
        session.execute(
            update(Dispatch)
            .where(Dispatch.id == dispatch.id)
            .values(state=D_FAILED, error=error[:2000], lease_until=None)
        )
        record(
            session,
            actor=SYSTEM,
            action="dispatch.failed",
            outcome="refused",
            target_type="dispatch",
            target_id=dispatch.id,
            detail={
                "channel": dispatch.channel,
                "version_id": dispatch.version_id,
                "error": error[:500],
            },
        )


def _write_deliveries(ctx: Context, channel: Channel, dispatch: Dispatch, version: Version) -> int:
    dispatch_id = dispatch.id
    total, size = 0, ctx.settings.DELIVERY_BATCH_SIZE
    query = channel.plan_query(ctx, version)
    if query is not None:
        total = _copy_recipients(ctx, channel, dispatch_id, version, query)
    for batch in _batched(channel.plan(ctx, version) if query is None else (), size):
        with ctx.db.transaction() as session:
            now = utcnow()
            session.execute(
                dialect_insert(session)(Delivery)
                .values(
                    [
                        {
                            "dispatch_id": dispatch_id,
                            "version_id": version.id,
                            "alert_id": version.alert_id,
                            "channel": channel.name,
                            "recipient": r,
                            "state": PENDING,
                            "attempts": 0,
                            "next_attempt_at": now,
                            "created_at": now,
                            "last_error": "",
                        }
                        for r in batch
                    ]
                )
                .on_conflict_do_nothing(index_elements=["version_id", "channel", "recipient"])
            )
            total += len(batch)
            # This chunk's delivery tasks leave as soon as it commits: the first send never
            # waits for the last row of a large plan to be written.
            _enqueue_new(ctx, session, dispatch_id, batch)
    with ctx.db.transaction() as session:
        session.execute(
            update(Dispatch)
            .where(Dispatch.id == dispatch_id)
            .values(state=D_PLANNED, planned_at=utcnow(), planned_count=total, lease_until=None)
        )
        # Rows an earlier, crashed planner wrote but never queued.
        enqueue_open_deliveries(ctx, session, dispatch_id, only_stale=True)
    return total


def _copy_recipients(
    ctx: Context, channel: Channel, dispatch_id: int, version: Version, query: Select[tuple[str]]
) -> int:
    """INSERT ... SELECT the query's recipients in chunks ordered by recipient, the cursor being
    the last recipient copied; each chunk's delivery task leaves when the chunk commits."""
    recipients = query.subquery()
    column = next(iter(recipients.c))
    cursor, total, size = "", 0, ctx.settings.DELIVERY_BATCH_SIZE
    while True:
        with ctx.db.transaction() as session:
            chunk = select(column).where(column > cursor).order_by(column).limit(size).subquery()
            names = list(session.execute(select(chunk.c[0])).scalars())
            if not names:
                return total
            now = utcnow()
            session.execute(
                dialect_insert(session)(Delivery)
                .from_select(
                    [
                        "dispatch_id",
                        "version_id",
                        "alert_id",
                        "channel",
                        "recipient",
                        "state",
                        "attempts",
                        "next_attempt_at",
                        "created_at",
                        "last_error",
                    ],
                    select(
                        literal(dispatch_id),
                        literal(version.id),
                        literal(version.alert_id),
                        literal(channel.name),
                        chunk.c[0],
                        literal(PENDING),
                        literal(0),
                        literal(now, DateTime()),
                        literal(now, DateTime()),
                        literal(""),
                    ).where(chunk.c[0] > cursor),
                )
                .on_conflict_do_nothing(index_elements=["version_id", "channel", "recipient"])
            )
            total, cursor = total + len(names), names[-1]
            _enqueue_new(ctx, session, dispatch_id, names)


def _enqueue_new(ctx: Context, session: Session, dispatch_id: int, recipients: list[str]) -> None:
    """Queue the delivery task for one planned chunk's rows not yet queued."""
    now = utcnow()
    ids = list(
        session.execute(
            select(Delivery.id)
            .where(
                Delivery.dispatch_id == dispatch_id,
                Delivery.recipient.in_(recipients),
                Delivery.state == PENDING,
                Delivery.enqueued_at.is_(None),
            )
            .order_by(Delivery.id)
        ).scalars()
    )
    for batch in _batched(ids, ctx.settings.DELIVERY_BATCH_SIZE):  # type: ignore[arg-type]
        session.execute(update(Delivery).where(Delivery.id.in_(batch)).values(enqueued_at=now))
        _send_after_commit(ctx, session, DELIVER_TASK, [dispatch_id, list(batch)])


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
    for batch in _batched(ids, ctx.settings.DELIVERY_BATCH_SIZE):  # type: ignore[arg-type]
        session.execute(update(Delivery).where(Delivery.id.in_(batch)).values(enqueued_at=now))
        _send_after_commit(ctx, session, DELIVER_TASK, [dispatch_id, list(batch)])
    return len(ids)
