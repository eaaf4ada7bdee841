"""What the sweeper does for deliveries: reclaim expired leases and resume stalled work."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from alertd.actor import SYSTEM
from alertd.audit.recipients import batch_detail
from alertd.audit.services import AuditRecord, record_many
from alertd.channels.dispatch.fanout import (
    REENQUEUE_AFTER_SECONDS,
    _send_after_commit,
    enqueue_open_deliveries,
)
from alertd.channels.dispatch.recipients import hashes_of
from alertd.channels.models import (
    D_PENDING,
    D_PLANNING,
    PENDING,
    RETRY_WAIT,
    SENDING,
    SENT,
    UNKNOWN,
    Delivery,
    Dispatch,
)
from alertd.channels.registry import (
    OUT_RETRY,
    OUT_SENT,
    registry_for,
)
from alertd.context import Context
from alertd.db import rowcount, utcnow
from alertd.task_names import PLAN_TASK

log = logging.getLogger(__name__)


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
        hashes = hashes_of(ctx.settings, stuck)
        moved: list[tuple[int, str, str]] = []
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
            delivery.recipient_hash = hashes[delivery.id]
            moved.append((delivery.id, hashes[delivery.id], delivery.state))
            count += 1
        if moved:
            # One entry for the sweep, as the record step writes one per sub-batch; `alertd
            # audit verify` follows each delivery to it (alertd/audit/deliveries.py).
            detail = batch_detail(moved, reason="the sending task's lease expired")
            record_many(
                session,
                [AuditRecord(SYSTEM, "delivery.lease_expired", "delivery", None, detail=detail)],
            )
    return count


# Unknown deliveries younger than this are offered to their channel's reconcile on every sweep;
# older ones are left to an operator. At most RECONCILE_LIMIT per sweep keep a pass short.
RECONCILE_WINDOW_SECONDS = 3600
RECONCILE_LIMIT = 200


def reconcile_unknown(ctx: Context) -> int:
    """Ask each channel what became of its recent 'unknown' deliveries: a settled 'sent' is
    recorded as sent, a 'retry' (the request surely never left) goes back to retry_wait. No
    transaction is open while the channel asks its provider. Returns how many were settled."""
    registry, now = registry_for(ctx), utcnow()
    with ctx.db.session() as session:
        unknown = list(
            session.execute(
                select(Delivery)
                .where(
                    Delivery.state == UNKNOWN,
                    Delivery.finished_at >= now - timedelta(seconds=RECONCILE_WINDOW_SECONDS),
                )
                .order_by(Delivery.id)
                .limit(RECONCILE_LIMIT)
            ).scalars()
        )
    by_channel: dict[str, list[Delivery]] = {}
    for delivery in unknown:
        by_channel.setdefault(delivery.channel, []).append(delivery)
    settled = 0
    for name, deliveries in by_channel.items():
        channel = registry.get(name)
        if channel is None:
            continue
        try:
            outcomes = channel.reconcile(ctx, deliveries)
        except Exception:  # One channel's provider being down must not stop the sweep.
            log.exception("reconcile failed on channel %s", name)
            continue
        ours = {d.id for d in deliveries}
        hashes = hashes_of(ctx.settings, deliveries)
        with ctx.db.transaction() as session:
            moved: list[tuple[int, str, str]] = []
            external: dict[str, str] = {}
            for outcome in outcomes:
                if outcome.delivery_id not in ours or outcome.state not in (OUT_SENT, OUT_RETRY):
                    continue
                values: dict[str, object] = {
                    "last_error": outcome.error[:2000],
                    "recipient_hash": hashes[outcome.delivery_id],
                }
                if outcome.state == OUT_SENT:
                    values.update(state=SENT, finished_at=utcnow())
                    if outcome.external_id:
                        values["external_id"] = outcome.external_id
                else:
                    values.update(
                        state=RETRY_WAIT,
                        finished_at=None,
                        next_attempt_at=utcnow(),
                        enqueued_at=None,
                    )
                changed = rowcount(
                    session.execute(
                        update(Delivery)
                        .where(Delivery.id == outcome.delivery_id, Delivery.state == UNKNOWN)
                        .values(**values)
                    )
                )
                if changed:
                    settled += 1
                    moved.append(
                        (outcome.delivery_id, hashes[outcome.delivery_id], str(values["state"]))
                    )
                    if outcome.external_id:
                        external[str(outcome.delivery_id)] = outcome.external_id
            if moved:
                # One entry per channel and sweep, which verify follows like a sub-batch's.
                detail = batch_detail(moved, channel=name, external_ids=external)
                record_many(
                    session,
                    [AuditRecord(SYSTEM, "delivery.reconciled", "delivery", None, detail=detail)],
                )
    return settled


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
            if _being_sent(session, dispatch_id, now):
                continue
            count += enqueue_open_deliveries(ctx, session, dispatch_id, only_stale=True)
    return count


def _being_sent(session: Session, dispatch_id: int, now: datetime) -> bool:
    """A worker holds one of the dispatch's rows right now: its tasks are being taken, and rows
    queued over REENQUEUE_AFTER_SECONDS ago are a backlog waiting in the broker, not lost
    tasks. Re-queued, the whole backlog would be queued again every pass while it drains
    (100,000 rows at 500/s wait 200 s). Once no worker holds a row, lost tasks are sent again."""
    return (
        session.execute(
            select(Delivery.id)
            .where(
                Delivery.dispatch_id == dispatch_id,
                Delivery.state == SENDING,
                Delivery.lease_until > now,
            )
            .limit(1)
        ).first()
        is not None
    )
