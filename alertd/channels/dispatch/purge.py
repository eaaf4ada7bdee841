"""`alertd deliveries purge --before DATE`: erase the recipients of old, finished deliveries for
retention. Each row keeps its id, state and recipient hash, so the audit digests that name it
still verify; its recipient becomes ``erased:<id>`` (the column is part of a unique key and not
nullable). A channel erases what it keeps beside the row (``Channel.erase_recipients``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, String, cast, exists, literal, select, update
from sqlalchemy.orm import Session, aliased

from alertd.actor import SYSTEM, Actor
from alertd.alerts.models import Version
from alertd.audit.recipients import recipient_hash, recipient_key
from alertd.audit.services import record
from alertd.channels.dispatch.recovery import RECONCILE_WINDOW_SECONDS
from alertd.channels.models import (
    D_FAILED,
    D_PLANNED,
    ERASED_PREFIX,
    OPEN_STATES,
    TERMINAL_STATES,
    UNKNOWN,
    Delivery,
    Dispatch,
)
from alertd.channels.registry import registry_for
from alertd.context import Context
from alertd.db import utcnow
from alertd.errors import Invalid

# Rows erased per transaction: short enough not to hold row locks a sender might wait on.
PURGE_BATCH = 1000


@dataclass
class Purged:
    before: datetime
    deliveries: int = 0
    batches: int = 0
    by_channel: Counter[str] = field(default_factory=Counter)
    kept_elsewhere: int = 0  # Rows a channel erased beside the delivery rows.


def _candidates(before: datetime, now: datetime) -> Select[int, str, str, str | None]:
    newer = aliased(Version)
    other = aliased(Delivery)
    return (
        select(Delivery.id, Delivery.channel, Delivery.recipient, Delivery.recipient_hash)
        .join(Dispatch, Dispatch.id == Delivery.dispatch_id)
        .join(Version, Version.id == Delivery.version_id)
        .where(
            Delivery.state.in_(TERMINAL_STATES),
            Delivery.recipient.not_like(f"{ERASED_PREFIX}%"),
            # Every version of the alert is older than the date.
            ~exists().where(newer.alert_id == Version.alert_id, newer.sent_at >= before),
            Version.sent_at < before,
            # The dispatch has finished: planned (or failed) and nothing of it still in flight.
            Dispatch.state.in_((D_PLANNED, D_FAILED)),
            ~exists().where(other.dispatch_id == Dispatch.id, other.state.in_(OPEN_STATES)),
            # An unknown outcome the sweeper may still reconcile keeps its recipient.
            ~(
                (Delivery.state == UNKNOWN)
                & (Delivery.finished_at >= now - timedelta(seconds=RECONCILE_WINDOW_SECONDS))
            ),
        )
        .order_by(Delivery.id)
    )


def purge_recipients(
    ctx: Context, before: datetime, *, by: Actor = SYSTEM, batch: int = PURGE_BATCH
) -> Purged:
    """Erase, in batches of ``batch`` rows, the recipients of the deliveries of alerts whose
    every version was sent before ``before`` and whose dispatch has finished; then write one
    audit entry for the purge (counts and the date, no recipient)."""
    now = utcnow()
    if before > now:
        raise Invalid(
            f"--before {before.isoformat()} is in the future: only past deliveries are purged.",
            fields={"before": "a date in the past"},
        )
    done = Purged(before)
    registry = registry_for(ctx)
    while True:
        with ctx.db.transaction() as session:
            rows = [
                (i, c, to, h)
                for i, c, to, h in session.execute(
                    _candidates(before, now).limit(batch).with_for_update(of=Delivery)
                )
            ]
            if not rows:
                break
            _erase(session, ctx, rows, done)
            for name in {channel for _, channel, _, _ in rows}:
                channel = registry.get(name)
                if channel is not None:
                    ids = [i for i, c, _, _ in rows if c == name]
                    done.kept_elsewhere += channel.erase_recipients(session, ids)
    with ctx.db.transaction() as session:
        record(
            session,
            actor=by,
            action="delivery.purge",
            target_type="delivery",
            detail={
                "before": before.isoformat(),
                "deliveries": done.deliveries,
                "batches": done.batches,
                "by_channel": dict(sorted(done.by_channel.items())),
                "kept_elsewhere": done.kept_elsewhere,
            },
        )
    return done


def _erase(
    session: Session, ctx: Context, rows: list[tuple[int, str, str, str | None]], done: Purged
) -> None:
    ids = [row[0] for row in rows]
    # A row planned before rows carried the hash gets it now, while its recipient is known.
    unhashed = [(i, to) for i, _, to, hashed in rows if hashed is None]
    if unhashed:
        key = recipient_key(ctx.settings)
        for delivery_id, to in unhashed:
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(recipient_hash=recipient_hash(key, to))
            )
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids))
        .values(recipient=literal(ERASED_PREFIX) + cast(Delivery.id, String))
        .execution_options(synchronize_session=False)
    )
    done.deliveries += len(ids)
    done.batches += 1
    done.by_channel.update(channel for _, channel, _, _ in rows)
