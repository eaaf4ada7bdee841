"""Audit cost per delivery: the record step's audit append for a sub-batch of 25 outcomes, as
one entry per delivery carrying the recipient (the path before issue 6) and as one entry per
sub-batch with counts and a digest (alertd/audit/recipients.py), each in its own transaction
as the record step has it, interleaved, medians of RUNS. Usage (from the checkout):

    PYTHONPATH=. .venv/bin/python -m benchmarks.audit_cost sqlite:////tmp/a.db
    PYTHONPATH=. .venv/bin/python -m benchmarks.audit_cost postgresql+psycopg://...

It resets the schema of the database it is given: never point it at one that matters.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable

from alertd.actor import SYSTEM
from alertd.audit.recipients import batch_detail, recipient_key
from alertd.audit.services import AuditRecord, record_many
from alertd.broker import RecordingPublisher
from alertd.context import Context, make_context
from alertd.settings import load_settings
from tests.support.database import reset_schema

DELIVERIES = 1000
SUB_BATCH = 25
RUNS = 5


def _per_delivery(ctx: Context, ids: list[int]) -> None:
    with ctx.db.transaction() as session:
        record_many(
            session,
            [
                AuditRecord(
                    SYSTEM,
                    "delivery.sent",
                    "delivery",
                    i,
                    detail={
                        "version": "alertd.BENCH.1",
                        "channel": "sms",
                        "recipient": f"+1555{i:07d}",
                        "attempt": 1,
                        "error": "",
                        "external_id": f"SM{i:032d}",
                    },
                )
                for i in ids
            ],
        )


def _per_batch(ctx: Context, ids: list[int]) -> None:
    detail = batch_detail(
        recipient_key(ctx.settings),
        [(i, f"+1555{i:07d}", "sent") for i in ids],
        version="alertd.BENCH.1",
        channel="sms",
        errors={},
    )
    with ctx.db.transaction() as session:
        record_many(
            session, [AuditRecord(SYSTEM, "delivery.batch", "delivery", None, detail=detail)]
        )


def _ms_per_delivery(ctx: Context, step: Callable[[Context, list[int]], None]) -> float:
    started = time.perf_counter()
    for start in range(0, DELIVERIES, SUB_BATCH):
        step(ctx, list(range(start, start + SUB_BATCH)))
    return (time.perf_counter() - started) / DELIVERIES * 1e3


def main(url: str) -> None:
    reset_schema(url)
    settings = load_settings(
        {
            "INSTANCE_PATH": tempfile.mkdtemp(prefix="audit-cost-"),
            "DATABASE_URL": url,
            "SECRET_KEY": "benchmark",
            "PUBLIC_URL": "http://alertd.test",
        },
        environ={},
    )
    ctx = make_context(settings, RecordingPublisher(settings))
    results: dict[str, list[float]] = {"per delivery": [], "per sub-batch": []}
    for _ in range(RUNS):  # Interleaved, so machine noise falls on both alike.
        results["per delivery"].append(_ms_per_delivery(ctx, _per_delivery))
        results["per sub-batch"].append(_ms_per_delivery(ctx, _per_batch))
    ctx.db.engine.dispose()
    for name, values in results.items():
        print(
            f"{name}: median {statistics.median(values):.4f} ms/delivery, "
            f"runs {[round(v, 4) for v in values]}"
        )


if __name__ == "__main__":
    main(sys.argv[1])
