"""Approval -> dispatch started: from the commit that approves an alert (its outbox row) to a
worker taking that row, through a real Celery worker process.

    .venv/bin/python -m benchmarks.dispatch_latency [--approvals 200]

Cases, side by side in one run: the embedded default (SQLite + SQLite-file broker), Redis with
SQLite, and Redis with PostgreSQL (when one answers). Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, select

from alertd.accounts.services import actor_for, create_user
from alertd.alerts import services
from alertd.broker import Publisher
from alertd.channels.models import Delivery
from alertd.context import Context, make_context
from alertd.outbox.models import OutboxMessage
from alertd.schema import upgrade
from alertd.settings import load_settings
from benchmarks.report import summary_ms, write_section
from tests.support.database import reset_schema
from tests.support.factories import alert_body
from tests.support.processes import CeleryProcess, RedisServer, alertd_env, wait_for

# The same variable as dev.py's PostgreSQL pass (a shared machine gives each user a database).
POSTGRES = os.environ.get(
    "ALERTD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# Approvals are spaced so that each one measures latency, not a queue behind the previous.
SPACING_SECONDS = 0.05
WARMUP = 5


def run_case(
    name: str, db_url: str, broker_url: str, workdir: Path, approvals: int
) -> dict[str, object]:
    if db_url.startswith("postgresql"):
        reset_schema(db_url)
    settings = load_settings(
        {
            "INSTANCE_PATH": str(workdir / "instance"),
            "DATABASE_URL": db_url,
            "BROKER_URL": broker_url,
            "CHANNELS": "log",
            "SECRET_KEY": "bench",
        },
        environ={},
    )
    ctx = make_context(settings, Publisher(settings))
    upgrade(ctx.db)
    with ctx.db.transaction() as session:
        officer = actor_for(create_user(session, "bench-officer", "officer", "x" * 12))
        supervisor = actor_for(create_user(session, "bench-supervisor", "supervisor", "x" * 12))
    env = alertd_env(
        INSTANCE_PATH=str(settings.instance_path),
        DATABASE_URL=db_url,
        BROKER_URL=broker_url,
        CHANNELS="log",
        SECRET_KEY="bench",  # noqa: S106 - a throwaway benchmark instance
    )
    worker = CeleryProcess("worker", env, workdir / f"worker-{name}.log", "--concurrency=2")
    try:
        worker.wait_ready(60)
        body = alert_body()
        ids = []
        for _ in range(approvals + WARMUP):
            alert = services.create_alert(ctx, body, by=officer)
            services.submit_alert(ctx, alert.id, by=officer)
            services.approve_alert(ctx, alert.id, by=supervisor)
            ids.append(alert.id)
            time.sleep(SPACING_SECONDS)

        def all_taken() -> bool:
            with ctx.db.session() as session:
                return (
                    session.execute(
                        select(OutboxMessage.id).where(OutboxMessage.consumed_at.is_(None))
                    ).first()
                    is None
                )

        wait_for(all_taken, 120, interval=0.2, message="every outbox row to be taken")
        wait_for(
            lambda: _sent_count(ctx, ids) == len(ids),
            120,
            interval=0.2,
            message="every log delivery to be sent",
        )
        with ctx.db.session() as session:
            # The first approvals pay for each worker child's first connection; skip them.
            rows = (
                session.execute(select(OutboxMessage).order_by(OutboxMessage.id).offset(WARMUP))
                .scalars()
                .all()
            )
            started = [
                (r.consumed_at - r.created_at).total_seconds() for r in rows if r.consumed_at
            ]
            first_sent = []
            for row in rows:
                finished = session.execute(
                    select(Delivery.finished_at).where(
                        Delivery.version_id == row.payload["version_id"]
                    )
                ).scalar()
                if finished:
                    first_sent.append((finished - row.created_at).total_seconds())
    finally:
        worker.stop()
        ctx.close()
    return {
        "case": name,
        "n": len(started),
        "started": summary_ms(started),
        "sent": summary_ms(first_sent),
    }


def _sent_count(ctx: Context, ids: list[int]) -> int:
    with ctx.db.session() as session:
        return len(
            session.execute(
                select(Delivery.id).where(Delivery.alert_id.in_(ids), Delivery.state == "sent")
            ).all()
        )


def postgres_available() -> bool:
    try:
        create_engine(POSTGRES).connect().close()
    except Exception:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--approvals", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="embedded case only, no report")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results.append(
            run_case(
                "embedded (SQLite + SQLite-file broker)",
                f"sqlite:///{root / 'embedded.sqlite3'}",
                "",
                root / "e",
                args.approvals,
            )
        )
        if args.quick:
            return print(results)
        redis = RedisServer(root / "redis")
        redis.start()
        try:
            results.append(
                run_case(
                    "Redis + SQLite",
                    f"sqlite:///{root / 'redis.sqlite3'}",
                    redis.url,
                    root / "r",
                    args.approvals,
                )
            )
            if postgres_available() and not args.quick:
                results.append(
                    run_case("Redis + PostgreSQL", POSTGRES, redis.url, root / "p", args.approvals)
                )
        finally:
            redis.stop()
    lines = [
        "## Approval → dispatch started",
        "",
        f"`python -m benchmarks.dispatch_latency --approvals {args.approvals}`, run "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({platform.machine()}, Python {platform.python_version()}). One real Celery worker "
        "process (prefork, concurrency 2); approvals made one after another through the "
        f"service layer, {SPACING_SECONDS * 1000:.0f} ms apart, after {WARMUP} uncounted "
        "warm-up approvals (each worker child opens its connections on its first task). "
        "*Started* is the approval's "
        "outbox row written → a worker took it and created the dispatches; *first send* is "
        "the same start → the log channel's delivery recorded as sent.",
        "",
        "| case | approvals | started p50 | started p95 | started max | first send p50 "
        "| first send p95 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s, f = r["started"], r["sent"]
        lines.append(
            f"| {r['case']} | {r['n']} | {s[0]:.1f} ms | {s[1]:.1f} ms | "  # type: ignore[index]
            f"{s[2]:.1f} ms | {f[0]:.1f} ms | {f[1]:.1f} ms |"
        )  # type: ignore[index]
    lines += ["", "Target (issue 2): p95 under 200 ms on Redis."]
    write_section("dispatch", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
