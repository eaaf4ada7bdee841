"""From delivery rows to sends: claim, re-check, send with no transaction open, record
(claim.py takes and marks the rows, record.py writes the outcomes)."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence

from alertd.channels.dispatch.claim import Claim, claim, renew, take_next
from alertd.channels.dispatch.record import RETRY_SCHEDULE, record
from alertd.channels.limiter import deliver_paced
from alertd.channels.models import Delivery
from alertd.channels.registry import (
    OUT_RETRY,
    OUT_SENT,
    OUT_UNKNOWN,
    Outcome,
)
from alertd.context import Context
from alertd.db import utcnow
from alertd.observe import metrics
from alertd.observe.logs import log_context

log = logging.getLogger(__name__)

__all__ = ["RETRY_SCHEDULE", "deliver_batch"]


def deliver_batch(ctx: Context, dispatch_id: int, delivery_ids: Sequence[int]) -> int:
    """Claim, re-check, send, record. Returns how many deliveries this call sent.

    An idempotent channel sends the batch in one call. Any other channel sends it in sub-batches
    of ``ALERTD_SEND_BATCH``, each taken and marked attempted (after a re-check of the alert)
    in the transaction that records the one before (the first in the claim's), and sent with
    no transaction open: one commit per sub-batch. A crash then leaves at most one sub-batch
    'unknown' (the sweeper asks the channel to reconcile it) and the rest pending, and a cancel
    stops new requests within one sub-batch: the ones already marked still leave, the ones
    after the re-check never do.
    """
    size = max(1, ctx.settings.SEND_BATCH)
    with log_context(dispatch_id=dispatch_id):
        taken = claim(ctx, dispatch_id, delivery_ids, size)
        if taken is None:
            return 0
        channel, version = taken.channel, taken.version
        with log_context(alert_id=version.alert_id, version_id=version.id, channel=channel.name):
            if channel.idempotent:
                outcomes = _outcomes(ctx, taken, taken.marked)
                with ctx.db.transaction() as session:
                    record(ctx, session, channel, version, outcomes, taken.marked)
                return _sent(outcomes)
            sent, marked = 0, taken.marked
            while marked:
                outcomes = _outcomes(ctx, taken, marked)
                sent += _sent(outcomes)
                with ctx.db.transaction() as session:
                    # The next sub-batch's re-check, take and mark ride on this record's commit;
                    # first, so the audit chain's lock (taken by record) is held only briefly.
                    _, following, taken.rest = take_next(ctx, session, taken, size, utcnow())
                    record(ctx, session, channel, version, outcomes, marked)
                marked = following
            return sent


def _sent(outcomes: Sequence[Outcome]) -> int:
    return sum(1 for o in outcomes if o.state == OUT_SENT)


def _outcomes(ctx: Context, taken: Claim, deliveries: list[Delivery]) -> list[Outcome]:
    """Send, with no transaction open while the channel talks to the outside world; one
    outcome per delivery, whatever the channel did."""
    channel, version = taken.channel, taken.version
    started = time.perf_counter()
    try:
        # Paced by the channel's global rate, when it has one (alertd/channels/limiter).
        recheck = functools.partial(renew, ctx, taken)
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
    return outcomes
