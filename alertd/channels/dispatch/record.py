"""Recording a sub-batch's outcomes: one statement for the rows, one audit entry for the
sub-batch, in the caller's transaction. Only rows still held by the claim change."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from typing import cast as typed

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    case,
    func,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from alertd.actor import SYSTEM
from alertd.alerts.models import Version
from alertd.audit.recipients import batch_detail
from alertd.audit.services import AuditRecord, record_many
from alertd.channels.dispatch.recipients import hashes_of
from alertd.channels.models import (
    FAILED,
    RETRY_WAIT,
    SENDING,
    SENT,
    SKIPPED,
    UNKNOWN,
    Delivery,
)
from alertd.channels.registry import (
    OUT_FAILED,
    OUT_RETRY,
    OUT_SENT,
    OUT_SKIPPED,
    OUT_THROTTLED,
    OUT_UNKNOWN,
    Channel,
    Outcome,
)
from alertd.context import Context
from alertd.db import UTCDateTime, after_commit, utcnow
from alertd.observe import metrics
from alertd.observe.logs import log_context

log = logging.getLogger(__name__)

# How long a throttled delivery waits when the provider named no Retry-After.
THROTTLE_SECONDS = 1.0
# Retry delays when the channel names none: quick at first, as Svix does, then spaced out.
RETRY_SCHEDULE = (5, 30, 120, 300, 600, 1200, 1800)

DELIVERIES = typed(Table, Delivery.__table__)


def unindexed(column: ColumnElement[Any] | InstrumentedAttribute[Any]) -> ColumnElement[Any]:
    """``column`` as an expression no index serves, for statements that name their rows by id.

    With a dispatch's rows fresh (statistics stale) PostgreSQL took a sub-batch's 50 rows
    through ix_delivery_dispatch_state or ix_delivery_due, walking every pending row of the
    dispatch and every dead 'sending' entry: 27 ms per take at 20,000 recipients, growing with
    the plan, where the primary key finds them in well under a millisecond."""
    if isinstance(column.type, String):
        return column.concat(literal_column("''"))
    return column + literal_column("0")


_STATES = {OUT_SENT: SENT, OUT_FAILED: FAILED, OUT_UNKNOWN: UNKNOWN, OUT_SKIPPED: SKIPPED}
# Kinds sent only while the alert is active and unexpired, and never retried past its expiry
# (an ending is sent regardless).
EXPIRING_KINDS = ("alert", "update", "extend")

# Dispatches (with the version's approval moment) this process has recorded a send for: their
# first send has been observed, by this process or another, so the query that looks for an
# earlier one is not needed again. A fact that never becomes false once committed; bounded so
# a long-lived worker does not grow with it.
_FIRST_SEND_SEEN: dict[tuple[int, datetime], None] = {}
_FIRST_SEND_SEEN_MAX = 1000


@dataclass
class _Row:
    """One outcome as the row will be written."""

    delivery: Delivery
    state: str
    error: str
    external_id: str | None = None
    next_attempt_at: datetime | None = None
    give_back: int = 0  # A throttled attempt is given back.

    @property
    def finished(self) -> bool:
        return self.state != RETRY_WAIT


def _retry_delay(outcome: Outcome, attempts: int) -> float:
    if outcome.retry_after is not None:
        return max(0.0, min(outcome.retry_after, RETRY_SCHEDULE[-1]))
    return RETRY_SCHEDULE[min(attempts - 1, len(RETRY_SCHEDULE) - 1)]


def _row(
    ctx: Context,
    channel: Channel,
    version: Version,
    outcome: Outcome,
    delivery: Delivery,
    now: datetime,
) -> _Row:
    error = outcome.error
    expiring = version.kind in EXPIRING_KINDS
    state = _STATES.get(outcome.state)
    if outcome.state == OUT_THROTTLED:
        # The provider refused before doing anything (HTTP 429): the attempt is given back,
        # so a storm of refusals delays a delivery but never fails it.
        wait = THROTTLE_SECONDS if outcome.retry_after is None else outcome.retry_after
        next_at = now + timedelta(seconds=max(0.0, min(wait, RETRY_SCHEDULE[-1])))
        if next_at >= version.expires_at and expiring:
            return _Row(
                delivery, FAILED, f"alert expires before the provider accepts more: {error}"
            )
        return _Row(delivery, RETRY_WAIT, error, outcome.external_id, next_at, give_back=1)
    if outcome.state == OUT_RETRY:
        next_at = now + timedelta(seconds=_retry_delay(outcome, delivery.attempts))
        if delivery.attempts >= ctx.settings.DELIVERY_MAX_ATTEMPTS:
            return _Row(delivery, FAILED, f"gave up after {delivery.attempts} attempts: {error}")
        if next_at >= version.expires_at and expiring:
            return _Row(delivery, FAILED, f"alert expires before the next attempt: {error}")
        return _Row(delivery, RETRY_WAIT, error, outcome.external_id, next_at)
    if state is None:
        # A channel bug must not lose the other outcomes of the batch: treat the answer as we
        # treat a crash of the channel.
        log.error("channel %s reported unknown state %r", channel.name, outcome.state)
        error = f"channel reported unknown state {outcome.state!r}"
        if channel.idempotent:
            return _Row(
                delivery, RETRY_WAIT, error, None, now + timedelta(seconds=RETRY_SCHEDULE[0])
            )
        return _Row(delivery, UNKNOWN, error)
    return _Row(delivery, state, error, outcome.external_id)


def record(
    ctx: Context,
    session: Session,
    channel: Channel,
    version: Version,
    outcomes: Sequence[Outcome],
    claimed: Sequence[Delivery],
) -> None:
    """Write each outcome, and one audit entry for the sub-batch. Only rows still held by this
    claim change."""
    now = utcnow()
    by_id = {d.id: d for d in claimed}
    rows = [
        _row(ctx, channel, version, o, by_id[o.delivery_id], now)
        for o in outcomes
        if o.delivery_id in by_id
    ]
    if not rows:
        return
    hashes = hashes_of(ctx.settings, [r.delivery for r in rows])
    held = _write(session, rows, hashes, now)
    audited: list[tuple[int, str, str]] = []
    errors: dict[str, str] = {}
    sent_ids: list[int] = []
    for row in rows:
        delivery = row.delivery
        if delivery.id not in held:
            continue
        if row.state == SENT:
            sent_ids.append(delivery.id)
        else:
            # Each outcome but a plain success gets a line of its own, with its reason.
            metrics.record_outcome(channel.name, row.state)
            with log_context(delivery_id=delivery.id):
                log.info(
                    "delivery %s %s attempt %s",
                    row.state,
                    channel.name,
                    delivery.attempts,
                    extra={"delivery_state": row.state, "error": row.error[:200]},
                )
        audited.append((delivery.id, hashes[delivery.id], row.state))
        if row.error:
            # Channels redact numbers from their errors (the sms channel writes "[number]").
            errors[str(delivery.id)] = row.error[:300]
    if sent_ids:
        # Successes, one line per sub-batch: a line each was 100,000 lines per national alert,
        # and the delivery rows and the audit entry already name every one.
        metrics.record_outcome(channel.name, SENT, len(sent_ids))
        log.info(
            "deliveries sent %s: %d",
            channel.name,
            len(sent_ids),
            extra={"delivery_state": SENT, "delivery_ids": sent_ids},
        )
    if sent_ids:
        _observe_first_send(session, channel, version, claimed[0].dispatch_id, sent_ids, now)
    if audited:
        # One chained entry per sub-batch, with counts and a digest rather than recipients:
        # the chain is append-only and must never hold a phone number (alertd/audit/recipients).
        # Last before the commit: it takes the chain's lock, which every writer waits for.
        detail = batch_detail(
            audited,
            version=version.identifier,
            channel=channel.name,
            errors=errors,
        )
        record_many(
            session, [AuditRecord(SYSTEM, "delivery.batch", "delivery", None, detail=detail)]
        )


def _write(session: Session, rows: list[_Row], hashes: dict[int, str], now: datetime) -> set[int]:
    """Write the rows still held by their claim (in "sending", under the lease it took: the
    sweeper may have taken a row whose lease ran out), and the recipient hash of a row planned
    before rows carried one. Returns the ids written."""
    if session.get_bind().dialect.name == "postgresql":
        return _write_postgresql(session, rows, hashes, now)
    return _write_sqlite(session, rows, hashes, now)


# One statement for a whole sub-batch, whatever shapes its outcomes take (each SMS carries its
# own provider id): the outcomes travel as one JSON document, so the text is the same for every
# size and is prepared once per connection. A VALUES list was compiled afresh for each
# sub-batch; nine arrays cost more to convert in Python (psycopg dumps array items one by
# one) than the UPDATE took to run. The ids also travel as an array, so the primary key finds
# the rows: the planner guesses 100 rows from any JSON set and then preferred to read the whole
# table (5.5-7 ms a sub-batch at 20,000); the state is compared as an expression no index
# serves (see unindexed).
_UPDATE_FROM_JSON = (
    text(
        """
    UPDATE deliveries SET
        state = given.state,
        lease_until = NULL,
        last_error = coalesce(given.error, ''),
        external_id = coalesce(given.external_id, deliveries.external_id),
        finished_at = CASE WHEN given.state = :retry_wait THEN deliveries.finished_at
                      ELSE :now END,
        next_attempt_at = coalesce(given.next_attempt_at, deliveries.next_attempt_at),
        enqueued_at = CASE WHEN given.state = :retry_wait THEN NULL
                      ELSE deliveries.enqueued_at END,
        attempts = deliveries.attempts - coalesce(given.give_back, 0),
        recipient_hash = coalesce(deliveries.recipient_hash, given.recipient_hash)
    FROM json_to_recordset(CAST(:rows AS JSON)) AS given(
        id INTEGER, lease TIMESTAMPTZ, state VARCHAR, error TEXT, external_id VARCHAR,
        next_attempt_at TIMESTAMPTZ, give_back INTEGER, recipient_hash VARCHAR)
    WHERE deliveries.id = ANY(CAST(:ids AS INTEGER[])) AND deliveries.id = given.id
        AND deliveries.state || '' = :sending AND deliveries.lease_until = given.lease
    RETURNING deliveries.id
    """
    )
    .bindparams(bindparam("now", type_=UTCDateTime()))
    .columns(DELIVERIES.c.id)
)


def _json_row(row: _Row, hashes: dict[int, str]) -> dict[str, Any]:
    """One outcome for _UPDATE_FROM_JSON: what is absent is read as NULL there."""
    delivery = row.delivery
    lease = delivery.lease_until
    given: dict[str, Any] = {
        "id": delivery.id,
        "lease": lease.isoformat() if lease else None,
        "state": row.state,
    }
    if row.error:
        given["error"] = row.error[:2000]
    if row.external_id is not None:
        given["external_id"] = row.external_id
    if row.next_attempt_at is not None:
        given["next_attempt_at"] = row.next_attempt_at.isoformat()
    if row.give_back:
        given["give_back"] = row.give_back
    if delivery.recipient_hash is None:  # Planned before rows carried one.
        given["recipient_hash"] = hashes[delivery.id]
    return given


def _write_postgresql(
    session: Session, rows: list[_Row], hashes: dict[int, str], now: datetime
) -> set[int]:
    """One UPDATE ... FROM json_to_recordset RETURNING: one round trip for the sub-batch."""
    params = {
        "rows": json.dumps([_json_row(r, hashes) for r in rows]),
        "ids": [r.delivery.id for r in rows],
        "now": now,
        "retry_wait": RETRY_WAIT,
        "sending": SENDING,
    }
    return set(session.execute(_UPDATE_FROM_JSON, params).scalars())


def _write_sqlite(
    session: Session, rows: list[_Row], hashes: dict[int, str], now: datetime
) -> set[int]:
    """SQLite: the write lock is held from BEGIN IMMEDIATE, so the rows read as held stay
    held; then one executemany (in process, no round trips to save)."""
    held: set[int] = set()
    by_lease: dict[datetime | None, list[int]] = {}
    for row in rows:
        by_lease.setdefault(row.delivery.lease_until, []).append(row.delivery.id)
    for lease, ids in by_lease.items():
        held.update(
            session.execute(
                select(DELIVERIES.c.id).where(
                    DELIVERIES.c.id.in_(ids),
                    unindexed(DELIVERIES.c.state) == SENDING,
                    DELIVERIES.c.lease_until == lease,
                )
            ).scalars()
        )
    t = DELIVERIES
    params = [
        {
            "b_id": r.delivery.id,
            "b_state": r.state,
            "b_error": r.error[:2000],
            "b_external_id": r.external_id,
            "b_finished_at": now if r.finished else None,
            "b_next_attempt_at": r.next_attempt_at,
            "b_give_back": r.give_back,
            "b_hash": hashes[r.delivery.id],
        }
        for r in rows
        if r.delivery.id in held
    ]
    if params:
        retry = bindparam("b_state", type_=String) == RETRY_WAIT
        session.execute(
            update(t)
            .where(t.c.id == bindparam("b_id"), t.c.state == SENDING)
            .values(
                state=bindparam("b_state", type_=String),
                lease_until=None,
                last_error=bindparam("b_error", type_=Text),
                external_id=func.coalesce(
                    bindparam("b_external_id", type_=String), t.c.external_id
                ),
                finished_at=func.coalesce(
                    bindparam("b_finished_at", type_=t.c.finished_at.type), t.c.finished_at
                ),
                next_attempt_at=func.coalesce(
                    bindparam("b_next_attempt_at", type_=t.c.next_attempt_at.type),
                    t.c.next_attempt_at,
                ),
                enqueued_at=case((retry, None), else_=t.c.enqueued_at),
                attempts=t.c.attempts - bindparam("b_give_back", type_=Integer),
                recipient_hash=func.coalesce(t.c.recipient_hash, bindparam("b_hash", type_=String)),
            ),
            params,
        )
    return held


def _observe_first_send(
    session: Session,
    channel: Channel,
    version: Version,
    dispatch_id: int,
    sent_ids: list[int],
    now: datetime,
) -> None:
    """Approval to first message, once per version and channel: when no other delivery of
    this dispatch was sent before these."""
    approved = version.approved_at or version.sent_at
    key = (dispatch_id, approved)
    if key in _FIRST_SEND_SEEN:
        return
    earlier = session.execute(
        select(DELIVERIES.c.id)
        .where(
            DELIVERIES.c.dispatch_id == dispatch_id,
            DELIVERIES.c.state == SENT,
            DELIVERIES.c.id.not_in(sent_ids),
        )
        .limit(1)
    ).first()
    if earlier is None:
        metrics.observe_first_send(channel.name, (now - approved).total_seconds())
    after_commit(session, lambda: _seen(key))


def _seen(key: tuple[int, datetime]) -> None:
    if len(_FIRST_SEND_SEEN) >= _FIRST_SEND_SEEN_MAX:
        _FIRST_SEND_SEEN.pop(next(iter(_FIRST_SEND_SEEN)))
    _FIRST_SEND_SEEN[key] = None
