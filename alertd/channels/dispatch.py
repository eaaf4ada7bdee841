"""Fan-out: from an outbox message to one dispatch per channel, from a dispatch to one delivery
row per recipient, and from delivery rows to sends. Every step claims its rows first, so a task
that runs twice finds nothing left to do (RELIABILITY.md section 2)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from alertd.actor import SYSTEM
from alertd.alerts.models import ACTIVE, Alert, Version
from alertd.audit.services import AuditRecord, record_many
from alertd.channels.models import (
    D_PENDING,
    D_PLANNED,
    D_PLANNING,
    FAILED,
    PENDING,
    RETRY_WAIT,
    SENDING,
    SENT,
    SKIPPED,
    UNKNOWN,
    Delivery,
    Dispatch,
)
from alertd.channels.registry import (
    OUT_FAILED,
    OUT_RETRY,
    OUT_SENT,
    OUT_SKIPPED,
    OUT_UNKNOWN,
    Channel,
    Outcome,
    registry_for,
)
from alertd.context import Context
from alertd.db import after_commit, dialect_insert, rowcount, utcnow
from alertd.outbox.services import take_message

log = logging.getLogger(__name__)

PLAN_TASK = "alertd.plan_dispatch"
DELIVER_TASK = "alertd.deliver_batch"
# Retry delays when the channel names none: quick at first, as Svix does, then spaced out.
RETRY_SCHEDULE = (5, 30, 120, 300, 600, 1200, 1800)
# A task that took a delivery row but did not come back within this long is presumed lost.
REENQUEUE_AFTER_SECONDS = 30
PLAN_LEASE_SECONDS = 120


# Outbox -> dispatches --------------------------------------------------------------------------


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


# Dispatch -> deliveries ------------------------------------------------------------------------


def _batched(items: Iterable[str], size: int) -> Iterable[list[str]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def plan_dispatch(ctx: Context, dispatch_id: int) -> int:
    """Write one delivery row per recipient, in batches, and send a delivery task per batch.
    Safe to run again after a crash: rows exist once, whatever ran before."""
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
                .values(state=D_PLANNING, lease_until=now + timedelta(seconds=PLAN_LEASE_SECONDS))
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
        with ctx.db.transaction() as session:
            session.execute(
                update(Dispatch)
                .where(Dispatch.id == dispatch_id)
                .values(state="failed", error=f"channel {dispatch.channel!r} is not registered")
            )
        return 0
    total, size = 0, ctx.settings.DELIVERY_BATCH_SIZE
    for batch in _batched(channel.plan(ctx, version), size):
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
    with ctx.db.transaction() as session:
        session.execute(
            update(Dispatch)
            .where(Dispatch.id == dispatch_id)
            .values(state=D_PLANNED, planned_at=utcnow(), planned_count=total, lease_until=None)
        )
        enqueue_open_deliveries(ctx, session, dispatch_id)
    return total


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


# Deliveries -> sends ---------------------------------------------------------------------------


def _skip_reason(session: Session, version: Version, channel: Channel, now: datetime) -> str | None:
    """Why this version must not be sent now, re-read immediately before sending."""
    alert = session.get(Alert, version.alert_id)
    assert alert is not None
    latest = session.execute(
        select(func.max(Version.seq)).where(Version.alert_id == version.alert_id)
    ).scalar_one()
    if channel.sends_superseded:
        return None
    if latest != version.seq:
        return f"superseded by version {latest}"
    if version.kind in ("alert", "update", "extend"):
        if alert.state != ACTIVE:
            return f"the alert is {alert.state}"
        if alert.expires_at <= now:
            return "the alert has expired"
    return None


def deliver_batch(ctx: Context, dispatch_id: int, delivery_ids: Sequence[int]) -> int:
    """Claim, re-check, send, record. Returns how many deliveries this call sent.

    An idempotent channel sends the batch in one call. Any other channel sends one delivery at
    a time, re-checking the alert and marking the attempt just before each request leaves: a
    crash then leaves at most the one request in flight 'unknown', and a cancel stops the
    sends that follow it.
    """
    claim = _claim(ctx, dispatch_id, delivery_ids)
    if claim is None:
        return 0
    channel, version, claimed = claim
    if channel.idempotent:
        return _send(ctx, channel, version, claimed)
    sent = 0
    for delivery in claimed:
        if _mark_attempt(ctx, channel, version, delivery):
            sent += _send(ctx, channel, version, [delivery])
    return sent


def _claim(
    ctx: Context, dispatch_id: int, delivery_ids: Sequence[int]
) -> tuple[Channel, Version, list[Delivery]] | None:
    now = utcnow()
    with ctx.db.transaction() as session:
        dispatch = session.get(Dispatch, dispatch_id)
        if dispatch is None or not delivery_ids:
            return None
        channel = registry_for(ctx).get(dispatch.channel)
        if channel is None:
            return None
        lease = now + timedelta(seconds=ctx.settings.DELIVERY_LEASE_SECONDS)
        session.execute(
            update(Delivery)
            .where(
                Delivery.id.in_(list(delivery_ids)),
                Delivery.dispatch_id == dispatch_id,
                Delivery.state.in_((PENDING, RETRY_WAIT)),
                Delivery.next_attempt_at <= now,
            )
            .values(state=SENDING, lease_until=lease, attempted_at=None)
        )
        claimed = list(
            session.execute(
                select(Delivery)
                .where(
                    Delivery.id.in_(list(delivery_ids)),
                    Delivery.state == SENDING,
                    Delivery.lease_until == lease,
                )
                .order_by(Delivery.id)
            ).scalars()
        )
        if not claimed:
            return None
        version = session.get(Version, dispatch.version_id)
        assert version is not None
        reason = _skip_reason(session, version, channel, now)
        if reason is not None:
            _record(
                ctx,
                session,
                channel,
                version,
                [Outcome(d.id, OUT_SKIPPED, reason) for d in claimed],
                claimed,
            )
            return None
        if channel.idempotent:
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_([d.id for d in claimed]))
                .values(attempted_at=now, attempts=Delivery.attempts + 1)
            )
            for delivery in claimed:
                delivery.attempts += 1
        return channel, version, claimed


def _mark_attempt(ctx: Context, channel: Channel, version: Version, delivery: Delivery) -> bool:
    """Re-check the alert and record that this delivery's request is about to leave, renewing
    its lease. False when it must not be sent (then it is recorded as skipped) or when the
    lease was lost to the sweeper."""
    now = utcnow()
    with ctx.db.transaction() as session:
        reason = _skip_reason(session, version, channel, now)
        if reason is not None:
            _record(
                ctx,
                session,
                channel,
                version,
                [Outcome(delivery.id, OUT_SKIPPED, reason)],
                [delivery],
            )
            return False
        lease = now + timedelta(seconds=ctx.settings.DELIVERY_LEASE_SECONDS)
        marked = rowcount(
            session.execute(
                update(Delivery)
                .where(
                    Delivery.id == delivery.id,
                    Delivery.state == SENDING,
                    Delivery.lease_until == delivery.lease_until,
                )
                .values(attempted_at=now, lease_until=lease, attempts=Delivery.attempts + 1)
            )
        )
        if marked:
            delivery.lease_until, delivery.attempts = lease, delivery.attempts + 1
        return bool(marked)


def _send(ctx: Context, channel: Channel, version: Version, deliveries: list[Delivery]) -> int:
    # No transaction is open while the channel talks to the outside world.
    try:
        outcomes = channel.deliver(ctx, version, deliveries)
    except Exception as exc:  # A channel bug must not leave rows in "sending" for a lease.
        log.exception("channel %s failed on version %s", channel.name, version.identifier)
        state = OUT_RETRY if channel.idempotent else OUT_UNKNOWN
        outcomes = [Outcome(d.id, state, f"{type(exc).__name__}: {exc}") for d in deliveries]
    with ctx.db.transaction() as session:
        _record(ctx, session, channel, version, outcomes, deliveries)
    return sum(1 for o in outcomes if o.state == OUT_SENT)


def _retry_delay(outcome: Outcome, attempts: int) -> float:
    if outcome.retry_after is not None:
        return max(0.0, min(outcome.retry_after, RETRY_SCHEDULE[-1]))
    return RETRY_SCHEDULE[min(attempts - 1, len(RETRY_SCHEDULE) - 1)]


def _record(
    ctx: Context,
    session: Session,
    channel: Channel,
    version: Version,
    outcomes: Sequence[Outcome],
    claimed: Sequence[Delivery],
) -> None:
    """Write each outcome and its audit entry. Only rows still held by this claim change."""
    now = utcnow()
    by_id = {d.id: d for d in claimed}
    audits = []
    for outcome in outcomes:
        delivery = by_id.get(outcome.delivery_id)
        if delivery is None:
            continue
        values: dict[str, Any] = {"lease_until": None, "last_error": outcome.error[:2000]}
        if outcome.external_id:
            values["external_id"] = outcome.external_id
        state = {
            OUT_SENT: SENT,
            OUT_FAILED: FAILED,
            OUT_UNKNOWN: UNKNOWN,
            OUT_SKIPPED: SKIPPED,
        }.get(outcome.state)
        if outcome.state == OUT_RETRY:
            next_at = now + timedelta(seconds=_retry_delay(outcome, delivery.attempts))
            if delivery.attempts >= ctx.settings.DELIVERY_MAX_ATTEMPTS:
                state, values["last_error"] = (
                    FAILED,
                    f"gave up after {delivery.attempts} attempts: {outcome.error}"[:2000],
                )
            elif next_at >= version.expires_at and version.kind in ("alert", "update", "extend"):
                state, values["last_error"] = (
                    FAILED,
                    f"alert expires before the next attempt: {outcome.error}"[:2000],
                )
            else:
                state = RETRY_WAIT
                values.update(next_attempt_at=next_at, enqueued_at=None)
        if state is None:
            raise ValueError(f"channel {channel.name} reported unknown state {outcome.state!r}")
        values["state"] = state
        if state != RETRY_WAIT:
            values["finished_at"] = now
        changed = rowcount(
            session.execute(
                update(Delivery)
                .where(
                    Delivery.id == delivery.id,
                    Delivery.state == SENDING,
                    Delivery.lease_until == delivery.lease_until,
                )
                .values(**values)
            )
        )
        if changed:
            audits.append(
                AuditRecord(
                    SYSTEM,
                    f"delivery.{state}",
                    "delivery",
                    delivery.id,
                    detail={
                        "version": version.identifier,
                        "channel": channel.name,
                        "recipient": delivery.recipient,
                        "attempt": delivery.attempts,
                        "error": values["last_error"][:500],
                        "external_id": outcome.external_id,
                    },
                )
            )
    if audits:
        record_many(session, audits)


# Recovery (the sweeper) ------------------------------------------------------------------------


def reclaim_expired_leases(ctx: Context) -> int:
    """Deliveries whose task died mid-send. An idempotent channel retries them, and so does any
    channel whose request never left; otherwise the request may have left, so the outcome is
    unknown and is never resent blindly."""
    registry, now, count = registry_for(ctx), utcnow(), 0
    with ctx.db.transaction() as session:
        stuck = list(
            session.execute(
                select(Delivery)
                .where(Delivery.state == SENDING, Delivery.lease_until < now)
                .limit(1000)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        audits = []
        for delivery in stuck:
            channel = registry.get(delivery.channel)
            never_left = delivery.attempted_at is None
            if channel is not None and (channel.idempotent or never_left):
                delivery.state, delivery.next_attempt_at = RETRY_WAIT, now
                delivery.enqueued_at = None
            else:
                delivery.state, delivery.finished_at = UNKNOWN, now
                delivery.last_error = "the sending task stopped before recording the outcome"
            delivery.lease_until = None
            audits.append(
                AuditRecord(
                    SYSTEM,
                    f"delivery.lease_expired.{delivery.state}",
                    "delivery",
                    delivery.id,
                    detail={"channel": delivery.channel, "recipient": delivery.recipient},
                )
            )
            count += 1
        if audits:
            record_many(session, audits)
    return count


def resume_stalled(ctx: Context) -> int:
    """Send tasks again for dispatches never planned and deliveries due but not taken."""
    now, count = utcnow(), 0
    with ctx.db.transaction() as session:
        stale_dispatches = (
            session.execute(
                select(Dispatch.id)
                .where(
                    or_(
                        (Dispatch.state == D_PENDING)
                        & (Dispatch.created_at < now - timedelta(seconds=REENQUEUE_AFTER_SECONDS)),
                        (Dispatch.state == D_PLANNING) & (Dispatch.lease_until < now),
                    )
                )
                .limit(500)
            )
            .scalars()
            .all()
        )
        for dispatch_id in stale_dispatches:
            _send_after_commit(ctx, session, PLAN_TASK, [dispatch_id])
            count += 1
        due = (
            session.execute(
                select(Delivery.dispatch_id)
                .where(
                    Delivery.state.in_((PENDING, RETRY_WAIT)),
                    Delivery.next_attempt_at <= now,
                    or_(
                        Delivery.enqueued_at.is_(None),
                        Delivery.enqueued_at < now - timedelta(seconds=REENQUEUE_AFTER_SECONDS),
                    ),
                )
                .distinct()
                .limit(500)
            )
            .scalars()
            .all()
        )
        for dispatch_id in due:
            count += enqueue_open_deliveries(ctx, session, dispatch_id, only_stale=True)
    return count


# Reading ---------------------------------------------------------------------------------------


def delivery_counts(session: Session, alert_id: int) -> dict[str, dict[str, int]]:
    """Per channel, how many deliveries of this alert are in each state."""
    rows = session.execute(
        select(Delivery.channel, Delivery.state, func.count())
        .where(Delivery.alert_id == alert_id)
        .group_by(Delivery.channel, Delivery.state)
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for channel, state, n in rows:
        counts.setdefault(channel, {})[state] = n
    return counts


def dispatches_for(session: Session, version_ids: Sequence[int]) -> list[Dispatch]:
    return list(
        session.execute(
            select(Dispatch).where(Dispatch.version_id.in_(list(version_ids))).order_by(Dispatch.id)
        ).scalars()
    )
