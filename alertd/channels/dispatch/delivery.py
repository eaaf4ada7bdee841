"""From delivery rows to sends: claim, re-check, send with no transaction open, record."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from alertd.actor import SYSTEM
from alertd.alerts.models import ACTIVE, Alert, Version
from alertd.audit.recipients import batch_detail
from alertd.audit.services import AuditRecord, record_many
from alertd.channels.dispatch.recipients import hashes_of
from alertd.channels.limiter import deliver_paced
from alertd.channels.models import (
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
    OUT_THROTTLED,
    OUT_UNKNOWN,
    Channel,
    Outcome,
    registry_for,
)
from alertd.context import Context
from alertd.db import utcnow
from alertd.observe import metrics
from alertd.observe.logs import log_context

log = logging.getLogger(__name__)


# How long a throttled delivery waits when the provider named no Retry-After.
THROTTLE_SECONDS = 1.0
# Retry delays when the channel names none: quick at first, as Svix does, then spaced out.
RETRY_SCHEDULE = (5, 30, 120, 300, 600, 1200, 1800)


def _skip_reason(session: Session, version: Version, channel: Channel, now: datetime) -> str | None:
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
    if version.kind in ("alert", "update", "extend"):
        if state != ACTIVE:
            return f"the alert is {state}"
        if expires_at <= now:
            return "the alert has expired"
    return None


def deliver_batch(ctx: Context, dispatch_id: int, delivery_ids: Sequence[int]) -> int:
    """Claim, re-check, send, record. Returns how many deliveries this call sent.

    An idempotent channel sends the batch in one call. Any other channel sends it in sub-batches
    of ``ALERTD_SEND_BATCH``: one transaction re-checks the alert and marks the whole sub-batch
    attempted, the channel sends it with no transaction open, one transaction records every
    outcome. A crash then leaves at most one sub-batch 'unknown' (the sweeper asks the channel to
    reconcile it), and a cancel stops new requests within one sub-batch: the ones already marked
    still leave, the ones after the re-check never do.
    """
    with log_context(dispatch_id=dispatch_id):
        claim = _claim(ctx, dispatch_id, delivery_ids)
        if claim is None:
            return 0
        channel, version, claimed = claim
        with log_context(alert_id=version.alert_id, version_id=version.id, channel=channel.name):
            if channel.idempotent:
                return _send(ctx, channel, version, claimed)
            sent, size = 0, max(1, ctx.settings.SEND_BATCH)
            for start in range(0, len(claimed), size):
                marked = _mark_attempts(ctx, channel, version, claimed[start:], size)
                if marked is None:
                    break
                if marked:
                    sent += _send(ctx, channel, version, marked)
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
            _record_skipped(ctx, session, channel, version, claimed, reason)
            return None
        if channel.idempotent:
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_([d.id for d in claimed]))
                .values(attempted_at=now, attempts=Delivery.attempts + 1)
                # The loaded rows are counted below, once: letting SQLAlchemy also apply the
                # increment to them counted every attempt twice.
                .execution_options(synchronize_session=False)
            )
            for delivery in claimed:
                delivery.attempts += 1
        return channel, version, claimed


def _mark_attempts(
    ctx: Context, channel: Channel, version: Version, rest: list[Delivery], size: int
) -> list[Delivery] | None:
    """Re-check the alert and record that the next ``size`` requests of ``rest`` are about to
    leave, renewing their lease. Returns the rows marked (those whose lease the sweeper took
    are left out), or None when nothing more may be sent: then every row of ``rest`` is
    recorded as skipped."""
    now = utcnow()
    batch = rest[:size]
    with ctx.db.transaction() as session:
        reason = _skip_reason(session, version, channel, now)
        if reason is not None:
            _record_skipped(ctx, session, channel, version, rest, reason)
            return None
        lease = now + timedelta(seconds=ctx.settings.DELIVERY_LEASE_SECONDS)
        held = [(d.id, d.lease_until) for d in batch]
        session.execute(
            update(Delivery)
            .where(
                Delivery.id.in_([d.id for d in batch]),
                Delivery.state == SENDING,
                # Every row of one claim shares its lease, so one comparison covers the batch.
                Delivery.lease_until.in_({until for _, until in held}),
            )
            .values(attempted_at=now, lease_until=lease, attempts=Delivery.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        ours = set(
            session.execute(
                select(Delivery.id).where(
                    Delivery.id.in_([d.id for d in batch]), Delivery.lease_until == lease
                )
            ).scalars()
        )
    marked = [d for d in batch if d.id in ours]
    for delivery in marked:
        delivery.lease_until, delivery.attempts = lease, delivery.attempts + 1
    return marked


def _send(ctx: Context, channel: Channel, version: Version, deliveries: list[Delivery]) -> int:
    # No transaction is open while the channel talks to the outside world.
    started = time.perf_counter()
    try:
        # Paced by the channel's global rate, when it has one (alertd/channels/limiter).
        recheck = functools.partial(_recheck, ctx, channel, version)
        outcomes = deliver_paced(ctx, channel, version, deliveries, recheck)
    except Exception as exc:  # A channel bug must not leave rows in "sending" for a lease.
        log.exception("channel %s failed on version %s", channel.name, version.identifier)
        state = OUT_RETRY if channel.idempotent else OUT_UNKNOWN
        outcomes = [Outcome(d.id, state, f"{type(exc).__name__}: {exc}") for d in deliveries]
    answered = {o.delivery_id for o in outcomes}
    missing = [d for d in deliveries if d.id not in answered]
    if missing:
        # A row the channel said nothing about must not sit in "sending" until its lease ends:
        # its request may have left, so it is unknown, unless sending twice is harmless.
        log.error("channel %s returned no outcome for %d deliveries", channel.name, len(missing))
        state = OUT_RETRY if channel.idempotent else OUT_UNKNOWN
        outcomes = [
            *outcomes,
            *(Outcome(d.id, state, "channel returned no outcome") for d in missing),
        ]
    metrics.observe_send(channel.name, time.perf_counter() - started)
    with ctx.db.transaction() as session:
        _record(ctx, session, channel, version, outcomes, deliveries)
    return sum(1 for o in outcomes if o.state == OUT_SENT)


def _recheck(
    ctx: Context, channel: Channel, version: Version, rest: list[Delivery]
) -> tuple[str | None, list[Delivery]]:
    """While rows wait for the rate limiter: why none may leave any more (a cancel), or None
    and the rows still ours, their lease renewed so the sweeper never takes a row we hold."""
    now = utcnow()
    with ctx.db.transaction() as session:
        reason = _skip_reason(session, version, channel, now)
        if reason is not None:
            return reason, rest
        lease = now + timedelta(seconds=ctx.settings.DELIVERY_LEASE_SECONDS)
        ids = [d.id for d in rest]
        session.execute(
            update(Delivery)
            .where(
                Delivery.id.in_(ids),
                Delivery.state == SENDING,
                Delivery.lease_until.in_({d.lease_until for d in rest}),
            )
            .values(lease_until=lease)
            .execution_options(synchronize_session=False)
        )
        ours = set(
            session.execute(
                select(Delivery.id).where(Delivery.id.in_(ids), Delivery.lease_until == lease)
            ).scalars()
        )
    kept = [d for d in rest if d.id in ours]
    for delivery in kept:
        delivery.lease_until = lease
    return None, kept


def _record_skipped(
    ctx: Context,
    session: Session,
    channel: Channel,
    version: Version,
    deliveries: Sequence[Delivery],
    reason: str,
) -> None:
    outcomes = [Outcome(d.id, OUT_SKIPPED, reason) for d in deliveries]
    _record(ctx, session, channel, version, outcomes, deliveries)


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
    """Write each outcome, and one audit entry for the sub-batch. Only rows still held by this
    claim change."""
    now = utcnow()
    by_id = {d.id: d for d in claimed}
    audited: list[tuple[int, str, str]] = []
    errors: dict[str, str] = {}
    newly_sent: list[int] = []
    planned: list[tuple[Delivery, Outcome, str, dict[str, Any]]] = []
    hashes = hashes_of(ctx.settings, claimed)
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
        if outcome.state == OUT_THROTTLED:
            # The provider refused before doing anything (HTTP 429): the attempt is given back,
            # so a storm of refusals delays a delivery but never fails it.
            wait = THROTTLE_SECONDS if outcome.retry_after is None else outcome.retry_after
            next_at = now + timedelta(seconds=max(0.0, min(wait, RETRY_SCHEDULE[-1])))
            if next_at >= version.expires_at and version.kind in ("alert", "update", "extend"):
                state, values["last_error"] = (
                    FAILED,
                    f"alert expires before the provider accepts more: {outcome.error}"[:2000],
                )
            else:
                state = RETRY_WAIT
                values.update(
                    next_attempt_at=next_at, enqueued_at=None, attempts=Delivery.attempts - 1
                )
        elif outcome.state == OUT_RETRY:
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
            # A channel bug must not lose the other outcomes of the batch: treat the answer as
            # we treat a crash of the channel.
            log.error("channel %s reported unknown state %r", channel.name, outcome.state)
            state = RETRY_WAIT if channel.idempotent else UNKNOWN
            values["last_error"] = f"channel reported unknown state {outcome.state!r}"[:2000]
            if state == RETRY_WAIT:
                values.update(next_attempt_at=now + timedelta(seconds=RETRY_SCHEDULE[0]))
                values.update(enqueued_at=None)
        values["state"] = state
        if delivery.recipient_hash is None:  # Planned before rows carried it.
            values["recipient_hash"] = hashes[delivery.id]
        if state != RETRY_WAIT:
            values["finished_at"] = now
        planned.append((delivery, outcome, state, values))
    held = _held(session, [delivery for delivery, *_ in planned])
    _write_outcomes(session, [(d.id, values) for d, _, _, values in planned if d.id in held])
    for delivery, _, state, values in planned:
        if delivery.id in held:
            with log_context(delivery_id=delivery.id):
                log.info(
                    "delivery %s %s attempt %s",
                    state,
                    channel.name,
                    delivery.attempts,
                    extra={"delivery_state": state, "error": values["last_error"][:200]},
                )
            metrics.record_outcome(channel.name, state)
            if state == SENT:
                newly_sent.append(delivery.id)
            audited.append((delivery.id, hashes[delivery.id], state))
            if values["last_error"]:
                # Channels redact numbers from their errors (the sms channel writes "[number]").
                errors[str(delivery.id)] = values["last_error"][:300]
    if audited:
        # One chained entry per sub-batch, with counts and a digest rather than recipients:
        # the chain is append-only and must never hold a phone number (alertd/audit/recipients).
        detail = batch_detail(
            audited,
            version=version.identifier,
            channel=channel.name,
            errors=errors,
        )
        record_many(
            session, [AuditRecord(SYSTEM, "delivery.batch", "delivery", None, detail=detail)]
        )
    if newly_sent:
        _observe_first_send(session, channel, version, claimed[0].dispatch_id, newly_sent, now)


def _held(session: Session, deliveries: Sequence[Delivery]) -> set[int]:
    """The rows still held by this claim (in "sending", under the lease it took), locked until
    the transaction ends so that the writes after change exactly these: the sweeper may have
    taken a row whose lease ran out."""
    by_lease: dict[datetime | None, list[int]] = {}
    for delivery in deliveries:
        by_lease.setdefault(delivery.lease_until, []).append(delivery.id)
    held: set[int] = set()
    for lease, ids in by_lease.items():
        held.update(
            session.execute(
                select(Delivery.id)
                .where(
                    Delivery.id.in_(ids), Delivery.state == SENDING, Delivery.lease_until == lease
                )
                .order_by(Delivery.id)
                .with_for_update()
            ).scalars()
        )
    return held


def _write_outcomes(session: Session, rows: list[tuple[int, dict[str, Any]]]) -> None:
    """One UPDATE per set of columns written, run for all its rows at once (an executemany,
    which psycopg pipelines): a statement per delivery was a round trip per text."""
    table = cast(Table, Delivery.__table__)
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for delivery_id, values in rows:
        # A throttled row gives its attempt back: an expression, the same for every such row.
        plain = {k: v for k, v in values.items() if k != "attempts"}
        key = (*sorted(plain), *(("attempts",) if "attempts" in values else ()))
        params = {"b_id": delivery_id, **{f"b_{k}": v for k, v in plain.items()}}
        shapes.setdefault(key, []).append(params)
    for key, params_list in shapes.items():
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.state == SENDING)
            .values({name: bindparam(f"b_{name}") for name in key if name != "attempts"})
        )
        if "attempts" in key:
            statement = statement.values(attempts=table.c.attempts - 1)
        session.execute(statement, params_list)


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
    earlier = session.execute(
        select(Delivery.id)
        .where(
            Delivery.dispatch_id == dispatch_id,
            Delivery.state == SENT,
            Delivery.id.not_in(sent_ids),
        )
        .limit(1)
    ).first()
    if earlier is None:
        approved = version.approved_at or version.sent_at
        metrics.observe_first_send(channel.name, (now - approved).total_seconds())
