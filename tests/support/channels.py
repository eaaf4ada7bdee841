"""Channels for tests that run real workers: each delivery appends a line to a file, so the
test process can count sends across process boundaries; one can be told to fail."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from alertd.alerts.models import Version
from alertd.channels.base import Channel
from alertd.channels.models import Delivery
from alertd.channels.registry import OUT_RETRY, OUT_SENT, OUT_THROTTLED, Outcome
from alertd.context import Context

RECIPIENTS = int(os.environ.get("ALERTD_TEST_RECIPIENTS", "5"))


def _sink() -> Path:
    return Path(os.environ["ALERTD_TEST_SINK"])


class RecordingChannel(Channel):
    """Not idempotent, like SMS: a lost lease becomes 'unknown', never a second send, and the
    sweeper settles it from what the sink (the provider's record) says was received."""

    name = "recording"
    idempotent = False
    sends_superseded = False

    def plan(self, ctx: Context, version: Version) -> Iterable[str]:
        return [f"phone-{i}" for i in range(RECIPIENTS)]

    def deliver(
        self, ctx: Context, version: Version, deliveries: Sequence[Delivery]
    ) -> list[Outcome]:
        delay = float(os.environ.get("ALERTD_TEST_SEND_SECONDS", "0"))
        outcomes = []
        for delivery in deliveries:
            time.sleep(delay)
            with _sink().open("a") as sink:
                sink.write(
                    f"{delivery.id} {version.identifier} {delivery.recipient} {time.time():.3f}\n"
                )
            outcomes.append(Outcome(delivery.id, OUT_SENT))
        return outcomes

    def reconcile(self, ctx: Context, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """The sink is this fake provider's own record: a delivery written there was sent; one
        not written never left (the process died before the request), so it is safe to retry."""
        received = {line.split()[0] for line in _sink().read_text().splitlines() if line.strip()}
        return [
            Outcome(d.id, OUT_SENT if str(d.id) in received else OUT_RETRY, "reconciled")
            for d in deliveries
        ]


class FlakyChannel(Channel):
    """Idempotent, like a webhook: fails until the file named by ALERTD_TEST_FLAKY exists."""

    name = "flaky"
    idempotent = True
    sends_superseded = False

    def plan(self, ctx: Context, version: Version) -> Iterable[str]:
        return ["endpoint-1"]

    def deliver(
        self, ctx: Context, version: Version, deliveries: Sequence[Delivery]
    ) -> list[Outcome]:
        if Path(os.environ["ALERTD_TEST_FLAKY"]).exists():
            return [Outcome(d.id, OUT_SENT) for d in deliveries]
        return [Outcome(d.id, OUT_RETRY, "endpoint down", retry_after=1) for d in deliveries]


class StormChannel(Channel):
    """Not idempotent; answers every request with HTTP 429 and a Retry-After while the file
    named by ALERTD_TEST_STORM exists, then accepts. Each answer is a line in the sink:
    ``<id> throttled <time>`` or ``<id> sent <time>``."""

    name = "storm"
    idempotent = False
    sends_superseded = False

    def plan(self, ctx: Context, version: Version) -> Iterable[str]:
        return [f"phone-{i}" for i in range(RECIPIENTS)]

    def deliver(
        self, ctx: Context, version: Version, deliveries: Sequence[Delivery]
    ) -> list[Outcome]:
        storm = Path(os.environ["ALERTD_TEST_STORM"]).exists()
        with _sink().open("a") as sink:
            for delivery in deliveries:
                answer = "throttled" if storm else "sent"
                sink.write(f"{delivery.id} {answer} {time.time():.3f}\n")
        if storm:
            return [
                Outcome(d.id, OUT_THROTTLED, "429 Too Many Requests", retry_after=0.5)
                for d in deliveries
            ]
        return [Outcome(d.id, OUT_SENT) for d in deliveries]


class InstantChannel(Channel):
    """Not idempotent and instant, for the engine benchmark: every request 'arrives' at once;
    one line per sub-batch in the sink (``<time> <id> <id> ...``) records what was sent."""

    name = "instant"
    idempotent = False
    sends_superseded = False

    def plan(self, ctx: Context, version: Version) -> Iterable[str]:
        return (f"+1555{i:07d}" for i in range(RECIPIENTS))

    def deliver(
        self, ctx: Context, version: Version, deliveries: Sequence[Delivery]
    ) -> list[Outcome]:
        with _sink().open("a") as sink:
            sink.write(f"{time.time():.6f} {' '.join(str(d.id) for d in deliveries)}\n")
        return [Outcome(d.id, OUT_SENT) for d in deliveries]
