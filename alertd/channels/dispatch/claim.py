"""Taking delivery rows for a task, re-checking the alert before each sub-batch, and marking a
sub-batch attempted just before its requests leave."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, TextualSelect, bindparam, func, select, text, update
from sqlalchemy.orm import Session

from alertd.alerts.models import ACTIVE, Alert, Version
from alertd.channels.dispatch.record import EXPIRING_KINDS, record, unindexed
from alertd.channels.models import PENDING, RETRY_WAIT, SENDING, Delivery, Dispatch
from alertd.channels.registry import OUT_SKIPPED, Channel, Outcome, registry_for
from alertd.context import Context
from alertd.db import UTCDateTime, utcnow

DELIVERIES = cast(Table, Delivery.__table__)


@dataclass
class Claim:
    """A task's channel and version, the rows taken and marked attempted for its first
    sub-batch (every row, for an idempotent channel), and the ids still to take, in order.
    Each later sub-batch is taken and marked in one UPDATE, in the transaction that records
    the one before: a row is written twice on its way (taken, then recorded), and rows not yet
    taken stay pending, so a worker lost mid-task leaves them to the next one."""

    dispatch_id: int
    channel: Channel
    version: Version
    marked: list[Delivery]
    rest: list[int]


def skip_reason(session: Session, version: Version, channel: Channel, now: datetime) -> str | None:
    """Why this version must not be sent now, re-read immediately before sending.

    One statement of three columns: loading the Alert object also loaded every version and
    proposal (selectin relationships), 6.7 ms of each sub-batch on SQLite under load."""
    if channel.sends_superseded:
        return None
    latest_seq = select(func.max(Version.seq)).where(Version.alert_id == Alert.id).scalar_subquery()
    state, expires_at, latest = session.execute(
        select(Alert.state, Alert.expires_at, latest_seq).where(Alert.id == version.alert_id)
    ).one()
    if latest != version.seq:
        return f"superseded by version {latest}"
    if version.kind in EXPIRING_KINDS:
        if state != ACTIVE:
            return f"the alert is {state}"
        if expires_at <= now:
            return "the alert has expired"
    return None


def _sendable_sql(version: Version, channel: Channel) -> str:
    """skip_reason's test as a condition of the take itself (true when it finds no reason), so
    the re-check costs no round trip of its own; the reason is read only when nothing was
    taken. Evaluated once per statement: neither subquery refers to the row."""
    if channel.sends_superseded:
        return ""
    condition = " AND (SELECT max(seq) FROM versions WHERE alert_id = :alert_id) = :seq"
    if version.kind in EXPIRING_KINDS:
        condition += (
            " AND EXISTS (SELECT 1 FROM alerts WHERE id = :alert_id AND state = :active"
            " AND expires_at > :now)"
        )
    return condition


# In the model's order, which .columns() below matches by position (a table's own order
# differs where migrations added columns).
_COLUMNS = ", ".join(c.name for c in DELIVERIES.c)


@functools.cache
def _take_statement(dialect: str, sendable: str) -> TextualSelect:
    """The take, written once per database and re-check and prepared by the driver: the ids
    travel as one array (PostgreSQL) or one JSON list (SQLite), so the text is the same for any
    sub-batch; built with the expression language it cost more to construct and convert than
    to run. Only the primary key can serve it (see unindexed: ``+ 0`` and ``|| ''``)."""
    ids = (
        "id = ANY(CAST(:ids AS INTEGER[]))"
        if dialect == "postgresql"
        else "id IN (SELECT value FROM json_each(:ids))"
    )
    # S608: the text is put together from this module's constants only; values are bound.
    return (
        text(
            "UPDATE deliveries SET state = :sending, lease_until = :lease,"  # noqa: S608
            " attempted_at = :attempted_at, attempts = attempts + :counted"
            f" WHERE {ids} AND dispatch_id + 0 = :dispatch_id"
            " AND state || '' IN (:pending, :retry_wait) AND next_attempt_at <= :now"
            f"{sendable} RETURNING {_COLUMNS}"
        )
        .bindparams(
            bindparam("lease", type_=UTCDateTime()),
            bindparam("attempted_at", type_=UTCDateTime()),
            bindparam("now", type_=UTCDateTime()),
        )
        .columns(*DELIVERIES.c)
    )  # Typed result columns: their description is worked out once.


def claim(ctx: Context, dispatch_id: int, delivery_ids: Sequence[int], first: int) -> Claim | None:
    """In one transaction: re-check the alert, then take and mark attempted the first ``first``
    due rows among ``delivery_ids`` (every one for an idempotent channel). Returns None when
    there is nothing to do; when the alert may no longer be sent, the due rows are recorded as
    skipped in the same transaction and None is returned."""
    now = utcnow()
    with ctx.db.transaction() as session:
        found = session.execute(
            select(Dispatch.channel, Version)
            .join(Version, Version.id == Dispatch.version_id)
            .where(Dispatch.id == dispatch_id)
        ).one_or_none()
        if found is None or not delivery_ids:
            return None
        name, version = found
        channel = registry_for(ctx).get(name)
        if channel is None:
            return None
        size = len(delivery_ids) if channel.idempotent else max(1, first)
        taken = Claim(dispatch_id, channel, version, [], sorted(delivery_ids))
        reason, taken.marked, taken.rest = take_next(ctx, session, taken, size, now)
        if reason is not None or not taken.marked:
            return None
        return taken


def take_next(
    ctx: Context, session: Session, claim: Claim, size: int, now: datetime
) -> tuple[str | None, list[Delivery], list[int]]:
    """In the caller's transaction, before the next sub-batch leaves: re-check the alert, then
    take the next ``size`` due rows of ``claim.rest`` and mark them attempted under a fresh
    lease (ids no longer due, already taken or done, are passed over). Returns None, the rows
    marked and the ids left; or, when nothing more may be sent (a cancel), the reason, with
    every due row of the rest recorded as skipped, and nothing left."""
    rest = claim.rest
    while rest:
        window, rest = rest[:size], rest[size:]
        rows = _take(ctx, session, claim, window, now, attempted=True)
        if rows:
            return None, rows, rest
        # Nothing taken: those rows were no longer due, or the alert may no longer be sent.
        reason = skip_reason(session, claim.version, claim.channel, now)
        if reason is not None:
            rows = _take(ctx, session, claim, [*window, *rest], now, attempted=False)
            record(
                ctx,
                session,
                claim.channel,
                claim.version,
                [Outcome(d.id, OUT_SKIPPED, reason) for d in rows],
                rows,
            )
            return reason, [], []
    return None, [], []


def _take(
    ctx: Context, session: Session, claim: Claim, ids: list[int], now: datetime, *, attempted: bool
) -> list[Delivery]:
    """Take the due rows among ``ids`` (one UPDATE ... RETURNING), marked attempted (and
    counted) only when their requests are about to leave: a lost lease with attempted_at unset
    means nothing was sent, so a retry is safe. Rows to be attempted are taken only while the
    version may still be sent (the re-check rides along); rows to be skipped regardless."""
    dialect = session.get_bind().dialect.name
    sendable = _sendable_sql(claim.version, claim.channel) if attempted else ""
    version = claim.version
    statement = select(Delivery).from_statement(_take_statement(dialect, sendable))
    params = {
        "ids": ids if dialect == "postgresql" else json.dumps(ids),
        "sending": SENDING,
        "lease": now + timedelta(seconds=ctx.settings.DELIVERY_LEASE_SECONDS),
        "attempted_at": now if attempted else None,
        "counted": 1 if attempted else 0,
        "dispatch_id": claim.dispatch_id,
        "pending": PENDING,
        "retry_wait": RETRY_WAIT,
        "now": now,
        "alert_id": version.alert_id,
        "seq": version.seq,
        "active": ACTIVE,
    }
    rows = list(session.execute(statement, params).scalars())
    rows.sort(key=lambda d: d.id)
    return rows


def renew(ctx: Context, claim: Claim, rest: list[Delivery]) -> tuple[str | None, list[Delivery]]:
    """While rows wait for the rate limiter: why none may leave any more (a cancel), or None
    and the rows still ours, their lease renewed so the sweeper never takes a row we hold."""
    now = utcnow()
    with ctx.db.transaction() as session:
        reason = skip_reason(session, claim.version, claim.channel, now)
        if reason is not None:
            return reason, rest
        lease = now + timedelta(seconds=ctx.settings.DELIVERY_LEASE_SECONDS)
        ours = set(
            session.execute(
                update(DELIVERIES)
                .where(
                    DELIVERIES.c.id.in_([d.id for d in rest]),
                    unindexed(DELIVERIES.c.state) == SENDING,
                    DELIVERIES.c.lease_until.in_({d.lease_until for d in rest}),
                )
                .values(lease_until=lease)
                .returning(DELIVERIES.c.id)
            ).scalars()
        )
    kept = [d for d in rest if d.id in ours]
    for delivery in kept:
        delivery.lease_until = lease
    return None, kept
