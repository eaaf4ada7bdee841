"""Send batch size (ALERTD_SEND_BATCH): time per delivery of the delivery path for a
non-idempotent channel that answers instantly, for sub-batches of 1 (the old per-delivery path),
5, 25 and 50, side by side in one run. Usage (from the checkout):

    PYTHONPATH=. .venv/bin/python -m benchmarks.send_batch sqlite:////tmp/b.db
    PYTHONPATH=. .venv/bin/python -m benchmarks.send_batch postgresql+psycopg://...

It resets the schema of the database it is given: never point it at one that matters.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence

from alertd.alerts import services
from alertd.alerts.models import Version
from alertd.broker import RecordingPublisher
from alertd.channels import dispatch
from alertd.channels.base import Channel
from alertd.channels.models import Delivery
from alertd.channels.registry import OUT_SENT, Outcome, Registry
from alertd.context import Context, make_context
from alertd.settings import load_settings
from tests.support.database import reset_schema
from tests.support.factories import alert_body, make_actor

N = 500
SIZES = (1, 5, 25, 50)
RUNS = 3


class Instant(Channel):
    name = "instant"

    def plan(self, ctx: Context, version: Version) -> Iterable[str]:
        return [f"+1555{i:07d}" for i in range(N)]

    def deliver(
        self, ctx: Context, version: Version, deliveries: Sequence[Delivery]
    ) -> list[Outcome]:
        return [Outcome(d.id, OUT_SENT) for d in deliveries]


def one_run(url: str, send_batch: int) -> float:
    """Milliseconds per delivery for every delivery task of one approved alert."""
    reset_schema(url)
    settings = load_settings(
        {
            "INSTANCE_PATH": tempfile.mkdtemp(prefix="send-batch-"),
            "DATABASE_URL": url,
            "SECRET_KEY": "benchmark",
            "CHANNELS": "log",
            "PUBLIC_URL": "http://alertd.test",
            "SEND_BATCH": send_batch,
            "DELIVERY_BATCH_SIZE": 100,
        },
        environ={},
    )
    publisher = RecordingPublisher(settings)
    ctx = make_context(settings, publisher)
    ctx.use_channels(Registry([Instant()]))
    officer, supervisor = make_actor(ctx, "o", "officer"), make_actor(ctx, "s", "supervisor")
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)
    tasks = []
    while publisher.sent:
        name, args = publisher.sent.pop(0)
        if name == "alertd.dispatch_version":
            dispatch.dispatch_version(ctx, *args)
        elif name == "alertd.plan_dispatch":
            dispatch.plan_dispatch(ctx, *args)
        elif name == "alertd.deliver_batch":
            tasks.append(args)
    started = time.perf_counter()
    for args in tasks:
        dispatch.deliver_batch(ctx, *args)
    elapsed = time.perf_counter() - started
    ctx.db.engine.dispose()
    return elapsed / N * 1e3


def main(url: str) -> None:
    results: dict[int, list[float]] = {size: [] for size in SIZES}
    for _ in range(RUNS):
        for size in SIZES:  # Interleaved, so machine noise falls on every size alike.
            results[size].append(one_run(url, size))
    base = statistics.median(results[1])
    for size, values in results.items():
        median = statistics.median(values)
        print(
            f"SEND_BATCH={size:3d}: median {median:.3f} ms/delivery "
            f"({base / median:.1f}x the per-delivery path), runs {[round(v, 3) for v in values]}"
        )


if __name__ == "__main__":
    main(sys.argv[1])
