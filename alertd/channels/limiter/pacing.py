"""Releasing one sub-batch to its channel no faster than the channel's global rate.

The sub-batch is handed to ``Channel.deliver`` in pieces, each as soon as the shared bucket
grants tokens for it, so a request leaves right after its grant: grants bunched behind a slow
send would make a second carry more than the rate. While it waits, the caller's ``recheck``
runs at least every second: a cancel stops the rest of the sub-batch, and the rows not yet sent
keep their lease. A channel with several requests in flight (``concurrency``) gets its pieces
concurrently, never more than ``concurrency`` requests at once, and tokens are taken only when
there is room to send them at once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from alertd.alerts.models import Version
from alertd.channels.base import (
    OUT_RETRY,
    OUT_SKIPPED,
    OUT_THROTTLED,
    OUT_UNKNOWN,
    Channel,
    Outcome,
)
from alertd.channels.limiter.bucket import Shape, bucket_for
from alertd.channels.models import Delivery
from alertd.observe import metrics

if TYPE_CHECKING:
    from alertd.context import Context

log = logging.getLogger(__name__)

# A cancel must stop new requests within two seconds: waiting re-checks at least this often.
RECHECK_SECONDS = 1.0
# How long a delivery waits before the next try when the shared bucket cannot be reached
# (Redis down): its request never left, so the attempt is given back.
UNREACHABLE_RETRY_SECONDS = 5.0

# Given the rows of the sub-batch not yet recorded: why no more may be sent (a cancel), or None
# and the rows still held (their lease renewed; a row the sweeper took back is left out).
Recheck = Callable[[list[Delivery]], tuple[str | None, list[Delivery]]]


def deliver_paced(
    ctx: Context,
    channel: Channel,
    version: Version,
    deliveries: Sequence[Delivery],
    recheck: Recheck,
) -> list[Outcome]:
    """``channel.deliver`` for ``deliveries``, no faster than ``channel.rate`` across every
    worker. Without a rate it is exactly one ``channel.deliver`` call."""
    if channel.rate is None or channel.rate <= 0:
        return channel.deliver(ctx, version, deliveries)
    pacer = _Pacer(ctx, channel, version, recheck)
    return pacer.run(list(deliveries))


class _Pacer:
    def __init__(self, ctx: Context, channel: Channel, version: Version, recheck: Recheck):
        assert channel.rate is not None
        self.ctx, self.channel, self.version, self.recheck = ctx, channel, version, recheck
        self.shape = Shape.for_rate(channel.rate)
        self.bucket = bucket_for(ctx.settings)
        self.room = max(1, channel.concurrency)
        self.outcomes: list[Outcome] = []
        self.in_flight: dict[Future[list[Outcome]], list[Delivery]] = {}

    def run(self, rest: list[Delivery]) -> list[Outcome]:
        self.held = list(rest)
        pool = ThreadPoolExecutor(self.room) if self.room > 1 else None
        try:
            self._release(rest, pool)
        finally:
            self._settle(block_all=True)
            if pool is not None:
                pool.shutdown(wait=True)
        return self.outcomes

    def _release(self, rest: list[Delivery], pool: ThreadPoolExecutor | None) -> None:
        checked = asked = time.monotonic()
        while rest:
            if time.monotonic() - checked >= RECHECK_SECONDS:
                # Rows already sent are held too until the sub-batch is recorded.
                reason, self.held = self.recheck(self.held)
                checked = time.monotonic()
                if reason is not None:
                    self.outcomes += [Outcome(d.id, OUT_SKIPPED, reason) for d in rest]
                    return
                kept = {d.id for d in self.held}
                rest = [d for d in rest if d.id in kept]
                if not rest:
                    return
            free = self.room - sum(len(p) for p in self.in_flight.values())
            if free <= 0:
                self._settle(block_all=False)
                asked = time.monotonic()
                continue
            # A channel that sends one request at a time takes a piece of any size: it still
            # has one in flight. Fewer, larger pieces cost fewer round trips to the bucket.
            wanted = len(rest) if pool is None else min(free, len(rest))
            try:
                grant = self.bucket.take(self.channel.name, self.shape, wanted)
            except Exception as exc:  # The bucket is unreachable: nothing more leaves.
                log.exception("rate limiter for %s unreachable", self.channel.name)
                error = f"rate limiter unreachable: {type(exc).__name__}: {exc}"
                self.outcomes += [
                    Outcome(d.id, OUT_THROTTLED, error, retry_after=UNREACHABLE_RETRY_SECONDS)
                    for d in rest
                ]
                return
            if grant.granted == 0:
                # Sleep until tokens are likely, but never past the next re-check.
                pause = min(grant.wait, max(0.0, checked + RECHECK_SECONDS - time.monotonic()))
                time.sleep(max(pause, 0.001))
                continue
            metrics.observe_limiter_wait(self.channel.name, time.monotonic() - asked)
            piece, rest = rest[: grant.granted], rest[grant.granted :]
            if pool is None:
                self.outcomes += self._deliver(piece, grant.ticket)
            else:
                self.in_flight[pool.submit(self._deliver, piece, grant.ticket)] = piece
            asked = time.monotonic()

    def _deliver(self, piece: list[Delivery], ticket: str) -> list[Outcome]:
        try:
            return self.channel.deliver(self.ctx, self.version, piece)
        except Exception as exc:  # One piece's failure must not lose the others' outcomes.
            log.exception("channel %s failed on version %s", self.channel.name, self.version.id)
            state = OUT_RETRY if self.channel.idempotent else OUT_UNKNOWN
            return [Outcome(d.id, state, f"{type(exc).__name__}: {exc}") for d in piece]
        finally:
            # Answered: the grant now counts for one more window, not until it is given up on.
            try:
                self.bucket.release(self.channel.name, ticket)
            except Exception:  # Unreleased, the grant only holds its place longer.
                log.warning("rate limiter for %s unreachable on release", self.channel.name)

    def _settle(self, *, block_all: bool) -> None:
        if not self.in_flight:
            return
        until = ALL_COMPLETED if block_all else FIRST_COMPLETED
        done, _ = wait(list(self.in_flight), return_when=until)
        for future in done:
            self.in_flight.pop(future)
            self.outcomes += future.result()
