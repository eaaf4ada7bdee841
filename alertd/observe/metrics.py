"""Metrics recorded where things happen (the worker that sends, the limiter that waits).

Each process records into prometheus-client's own values. With ``PROMETHEUS_MULTIPROC_DIR``
set (gunicorn, Celery prefork, ``alertd serve``) every process writes its figures to a file in
that folder and ``/metrics`` adds them up; without it (one process) they stay in memory. The
variable is read when prometheus-client is first imported, so it must be set before the process
starts, not by the code.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Seconds: a send that takes longer than a minute is a fault, not a latency.
SEND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# From approval to the first message on a channel; the budget is one second.
FIRST_SEND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)

DELIVERIES = Counter(
    "alertd_delivery_outcomes",
    "Delivery outcomes recorded by this deployment's workers, by channel and outcome.",
    ["channel", "outcome"],
)
SEND_SECONDS = Histogram(
    "alertd_send_seconds",
    "How long one send call to a channel took (a batch for idempotent channels).",
    ["channel"],
    buckets=SEND_BUCKETS,
)
FIRST_SEND_SECONDS = Histogram(
    "alertd_approval_to_first_send_seconds",
    "From a version's approval to its first successful delivery on a channel.",
    ["channel"],
    buckets=FIRST_SEND_BUCKETS,
)
LIMITER_WAIT_SECONDS = Histogram(
    "alertd_limiter_wait_seconds",
    "How long a send waited for the rate limiter before it could leave.",
    ["channel"],
    buckets=SEND_BUCKETS,
)


def record_outcome(channel: str, outcome: str, count: int = 1) -> None:
    DELIVERIES.labels(channel=channel, outcome=outcome).inc(count)


def observe_send(channel: str, seconds: float) -> None:
    SEND_SECONDS.labels(channel=channel).observe(seconds)


def observe_first_send(channel: str, seconds: float) -> None:
    FIRST_SEND_SECONDS.labels(channel=channel).observe(max(0.0, seconds))


def observe_limiter_wait(channel: str, seconds: float) -> None:
    """Called by a rate limiter each time it makes a send wait (zero waits count too)."""
    LIMITER_WAIT_SECONDS.labels(channel=channel).observe(max(0.0, seconds))
