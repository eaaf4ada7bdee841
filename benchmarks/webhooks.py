"""Webhooks: approval -> first webhook at a local receiver, and a fan-out to many endpoints of
which some hang, through a real Celery worker process and a real Redis.

    .venv/bin/python -m benchmarks.webhooks [--approvals 40] [--endpoints 200] [--hanging 20]

The receiver verifies every request with ``standardwebhooks``, as a partner would. Results go
to docs/benchmarks.md. Database: PostgreSQL (ALERTD_BENCH_DATABASE_URL, default this helper's
``test_webhooks``) when it answers, otherwise SQLite.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, func, select

from alertd.accounts.services import actor_for, create_user
from alertd.actor import Actor
from alertd.alerts import services
from alertd.broker import Publisher
from alertd.channels.models import SENDING, Delivery
from alertd.channels.webhooks import services as webhooks
from alertd.channels.webhooks.models import Endpoint
from alertd.context import Context, make_context
from alertd.schema import upgrade
from alertd.settings import load_settings
from benchmarks.report import percentile, summary_ms, write_section
from tests.support.database import reset_schema
from tests.support.factories import alert_body
from tests.support.processes import CeleryProcess, RedisServer, alertd_env, wait_for
from tests.support.webhook_receivers import HANG, Receiver, Seen, StandardReceiver, running

POSTGRES = os.environ.get(
    "ALERTD_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test_webhooks"
)
SPACING_SECONDS = 0.2
WARMUP = 3
WEBHOOK = {
    "CHANNELS": "webhook",
    "WEBHOOK_ALLOW": "127.0.0.1/32",
    "WEBHOOK_HTTPS_ONLY": "false",
    "WEBHOOK_READ_SECONDS": "5",
}


class Bench:
    def __init__(self, db_url: str, redis: RedisServer, workdir: Path) -> None:
        if db_url.startswith("postgresql"):
            reset_schema(db_url)
        self.settings = load_settings(
            {
                "INSTANCE_PATH": str(workdir / "instance"),
                "DATABASE_URL": db_url,
                "BROKER_URL": redis.url,
                "SECRET_KEY": "bench",
                "CHANNELS": "webhook",
                "WEBHOOK_ALLOW": "127.0.0.1/32",
                "WEBHOOK_HTTPS_ONLY": False,
            },
            environ={},
        )
        self.ctx: Context = make_context(self.settings, Publisher(self.settings))
        upgrade(self.ctx.db)
        with self.ctx.db.transaction() as session:
            self.officer = actor_for(create_user(session, "b-officer", "officer", "x" * 12))
            self.supervisor = actor_for(create_user(session, "b-super", "supervisor", "x" * 12))
            self.operator: Actor = actor_for(create_user(session, "b-ops", "operator", "x" * 12))
        env = alertd_env(
            INSTANCE_PATH=str(self.settings.instance_path),
            DATABASE_URL=db_url,
            BROKER_URL=redis.url,
            SECRET_KEY="bench",  # noqa: S106 - a throwaway benchmark instance
            **WEBHOOK,
        )
        self.worker = CeleryProcess("worker", env, workdir / "worker.log", "--concurrency=2")
        self.worker.wait_ready(60)

    def approve(self) -> float:
        """Create, submit and approve; returns the time.time() just before the approval."""
        alert = services.create_alert(self.ctx, alert_body(), by=self.officer)
        services.submit_alert(self.ctx, alert.id, by=self.officer)
        started = time.time()
        services.approve_alert(self.ctx, alert.id, by=self.supervisor)
        return started

    def settle(self) -> None:
        def done() -> bool:
            with self.ctx.db.session() as session:
                return not session.execute(
                    select(func.count()).where(Delivery.state == SENDING)
                ).scalar_one()

        wait_for(done, 60, interval=0.2, message="no delivery in flight")

    def close(self) -> None:
        self.worker.stop()
        self.ctx.close()


def latency(bench: Bench, approvals: int) -> list[float]:
    with running(StandardReceiver()) as receiver:
        new = webhooks.add_endpoint(bench.ctx, {"url": receiver.url}, by=bench.operator)
        receiver.secret = new.secret
        starts = []
        for _ in range(approvals + WARMUP):
            starts.append(bench.approve())
            time.sleep(SPACING_SECONDS)
        wait_for(
            lambda: len(receiver.requests()) >= len(starts), 60, message="every webhook received"
        )
        seen = receiver.requests()
        webhooks.set_enabled(bench.ctx, new.endpoint.id, False, by=bench.operator)
    assert all(s.verified for s in seen), "a delivery failed verification"
    # One request per approval, in approval order (each approval is a separate alert).
    got = sorted(s.at for s in seen)[: len(starts)]
    return [g - s for s, g in zip(starts, got, strict=True)][WARMUP:]


def fanout(bench: Bench, endpoints: int, hanging: int) -> dict[str, float]:
    hang_paths = {f"/e/{i}" for i in range(0, endpoints, max(1, endpoints // max(hanging, 1)))}
    hang_paths = set(sorted(hang_paths)[:hanging])
    with running(Receiver()) as receiver:
        receiver.respond = lambda seen: HANG if seen.path in hang_paths else (200, {}, b"ok")
        for i in range(endpoints):
            webhooks.add_endpoint(bench.ctx, {"url": f"{receiver.url}/e/{i}"}, by=bench.operator)
        start = time.time()
        bench.approve()
        healthy_count = endpoints - len(hang_paths)

        def healthy() -> list[Seen]:
            return [s for s in receiver.requests() if s.path not in hang_paths]

        wait_for(lambda: len(healthy()) >= healthy_count, 60, message="every healthy endpoint")
        times = sorted(s.at - start for s in healthy())
        wait_for(
            lambda: _open_sending(bench.ctx) == 0, 60, interval=0.1, message="outcomes recorded"
        )
        recorded = time.time() - start
    bench.settle()
    _disable_all(bench)
    return {
        "healthy": healthy_count,
        "hanging": len(hang_paths),
        "first": times[0],
        "p50": statistics.median(times),
        "p95": percentile(times, 95),
        "all": times[-1],
        "recorded": recorded,
    }


def _open_sending(ctx: Context) -> int:
    with ctx.db.session() as session:
        return int(
            session.execute(select(func.count()).where(Delivery.state == SENDING)).scalar_one()
        )


def _disable_all(bench: Bench) -> None:
    for endpoint in webhooks_list(bench):
        webhooks.set_enabled(bench.ctx, endpoint, False, by=bench.operator)


def webhooks_list(bench: Bench) -> list[int]:
    with bench.ctx.db.session() as session:
        return list(
            session.execute(select(Endpoint.id).where(Endpoint.enabled.is_(True))).scalars()
        )


def postgres_available() -> bool:
    try:
        create_engine(POSTGRES).connect().close()
    except Exception:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--approvals", type=int, default=40)
    parser.add_argument("--endpoints", type=int, default=200)
    parser.add_argument("--hanging", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        redis = RedisServer(root / "redis")
        redis.start()
        use_pg = postgres_available()
        db_url = POSTGRES if use_pg else f"sqlite:///{root / 'bench.sqlite3'}"
        bench = Bench(db_url, redis, root)
        try:
            lat = latency(bench, args.approvals)
            rounds = []
            for _ in range(args.rounds):
                # Side by side: the same fan-out with no endpoint hanging, then with some.
                rounds.append(
                    (fanout(bench, args.endpoints, 0), fanout(bench, args.endpoints, args.hanging))
                )
        finally:
            bench.close()
            redis.stop()
    report(args, "PostgreSQL" if use_pg else "SQLite", lat, rounds)


def report(
    args: argparse.Namespace,
    database: str,
    lat: list[float],
    rounds: list[tuple[dict[str, float], dict[str, float]]],
) -> None:
    p50, p95, worst = summary_ms(lat)
    lines = [
        "## Webhooks: approval → first webhook, and fan-out with hanging endpoints",
        "",
        f"`python -m benchmarks.webhooks --approvals {args.approvals} --endpoints "
        f"{args.endpoints} --hanging {args.hanging} --rounds {args.rounds}`, run "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({platform.machine()}, "
        f"{os.cpu_count()} CPUs shared with seven other helpers' work, Python "
        f"{platform.python_version()}). One real Celery worker process (prefork, concurrency "
        f"2), a private redis-server, {database}; receivers are threaded HTTP servers on "
        "loopback in the benchmark process (the standard one verifies every request with "
        "`standardwebhooks`). Times run from just before the approval call to the "
        "receiver's clock on arrival.",
        "",
        f"**Approval → first webhook** ({len(lat)} approvals, {SPACING_SECONDS * 1000:.0f} ms "
        f"apart, after {WARMUP} uncounted warm-ups): p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
        f"max {worst:.0f} ms. Target p95 under 1 s: "
        f"**{'met' if p95 < 1000 else 'not met'}**.",
        "",
        f"**Fan-out to {args.endpoints} endpoints**, one approval; rows side by side: none "
        f"hanging, then {args.hanging} that accept the connection and never answer (read "
        "timeout 5 s). *All healthy* is when the last healthy endpoint had its request; "
        "*recorded* is when every outcome (the hanging ones' timeouts included) was written.",
        "",
        "| round | hanging | healthy | first | p50 | p95 | all healthy | recorded |",
        "|---|---|---|---|---|---|---|---|",
    ]
    worst_all = 0.0
    for i, pair in enumerate(rounds, 1):
        for r in pair:
            if r["hanging"]:
                worst_all = max(worst_all, r["all"])
            lines.append(
                f"| {i} | {r['hanging']:.0f} | {r['healthy']:.0f} | {r['first'] * 1000:.0f} ms "
                f"| {r['p50'] * 1000:.0f} ms | {r['p95'] * 1000:.0f} ms | "
                f"{r['all'] * 1000:.0f} ms | {r['recorded'] * 1000:.0f} ms |"
            )
    lines += [
        "",
        f"Target: with {args.hanging} hanging, the healthy ones all receive within 2 s — worst "
        f"round {worst_all * 1000:.0f} ms: **{'met' if worst_all < 2 else 'not met'}**.",
        "",
        "Healthy endpoints in the same delivery task as a hanging one are *received* at once, but "
        "their outcomes are *recorded* with the task's others, when the hanging requests time "
        "out (the *recorded* column): the channel interface returns a batch's outcomes together. "
        "The machine was shared with seven other helpers' test runs during the measurement.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_report:
        write_section("webhooks", text)


if __name__ == "__main__":
    main()
