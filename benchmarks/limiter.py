"""The global limiter at R = 200/s: two Celery worker processes send one alert each round to a
channel that answers at once (tests.support.channels.RecordingChannel, which stamps each send),
through the shared bucket. Cases, side by side in one run: Redis (the Lua script) with
PostgreSQL when one is given and with SQLite, and the embedded default (SQLite + SQLite-file
broker, the flock'ed file bucket).

    PYTHONPATH=. .venv/bin/python -m benchmarks.limiter [--rounds 3] [--recipients 1000]
        [--postgres URL]   (also the Redis case on this PostgreSQL; its schema is reset)

For each round: the achieved rate (sends - 1 over first to last send), the busiest one-second
window (sliding, by the send stamps), and the limiter's waits (alertd_limiter_wait_seconds, as
the workers recorded them; its p95 interpolated within the histogram's buckets, as Prometheus'
histogram_quantile does). Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select

from alertd.alerts import services
from alertd.broker import Publisher
from alertd.channels.models import Delivery
from alertd.context import make_context
from alertd.observe.views import MULTIPROC_ENV
from alertd.settings import load_settings
from benchmarks.report import write_section
from tests.support.database import reset_schema
from tests.support.factories import alert_body, make_actor
from tests.support.processes import CeleryProcess, RedisServer, alertd_env, wait_for

RATE = 200
WORKERS = 2
CHANNEL = "tests.support.channels:RecordingChannel"


def busiest_window(times: list[float], width: float = 1.0) -> int:
    times, best, start = sorted(times), 0, 0
    for end, t in enumerate(times):
        while t - times[start] > width:
            start += 1
        best = max(best, end - start + 1)
    return best


def wait_quantile(metrics_dir: Path, q: float) -> float:
    """The q-quantile of the limiter's waits, in seconds, from the workers' histogram."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))
    buckets: dict[float, float] = {}
    for family in registry.collect():
        for s in family.samples:
            if s.name == "alertd_limiter_wait_seconds_bucket":
                le = float(s.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + s.value
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if not total:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if bound == float("inf"):
                return lower
            share = (rank - below) / max(buckets[bound] - below, 1e-9)
            return lower + (bound - lower) * share
        lower, below = bound, buckets[bound]
    return lower


def steady_rate(times: list[float]) -> float:
    """Sends per second with the first and last second left out: a run's first and last
    windows are not full seconds of the steady pace (a fresh bucket, the last few sends). A
    whole number of seconds: over 7.5 s, eight windows of R sends could read as 8 R / 7.5,
    above R though no second carried more."""
    start, end = min(times) + 1, max(times) - 1
    if end - start < 1:  # Too short to have a steady part (an unlimited run): the whole run.
        return (len(times) - 1) / max(max(times) - min(times), 1e-6)
    seconds = math.floor(end - start)
    return sum(1 for t in times if start <= t < start + seconds) / seconds


def run_case(
    name: str, db_url: str, broker_url: str, root: Path, rounds: int, n: int, rate: int = RATE
) -> dict:
    reset_schema(db_url)
    root.mkdir()
    sink, metrics_dir = root / "sink.txt", root / "metrics"
    sink.touch()
    metrics_dir.mkdir()
    settings = load_settings(
        {
            "INSTANCE_PATH": str(root / "instance"),
            "DATABASE_URL": db_url,
            "BROKER_URL": broker_url,
            "CHANNELS": "log",
            "SECRET_KEY": "bench",
        },
        environ={},
    )
    env = alertd_env(
        INSTANCE_PATH=str(settings.instance_path),
        DATABASE_URL=db_url,
        BROKER_URL=settings.broker_url,
        CHANNELS=CHANNEL,
        SECRET_KEY="bench",  # noqa: S106 - a throwaway database's key
        RECORDING_RATE=str(rate),
        DELIVERY_BATCH_SIZE="100",
        SEND_BATCH="25",
    )
    env |= {"ALERTD_TEST_SINK": str(sink), "ALERTD_TEST_RECIPIENTS": str(n)}
    env[MULTIPROC_ENV] = str(metrics_dir)
    ctx = make_context(settings, Publisher(settings))
    workers: list[CeleryProcess] = []
    try:
        # One after the other: two workers creating a fresh embedded broker's queue at once
        # race on its row (kombu's SQLAlchemy transport; a UNIQUE error kills one).
        for i in range(WORKERS):
            workers.append(
                CeleryProcess("worker", env, root / f"worker-{i}.log", "--concurrency=1")
            )
            workers[-1].wait_ready(60)
        officer, supervisor = make_actor(ctx, "o", "officer"), make_actor(ctx, "s", "supervisor")
        rates, windows = [], []
        for _ in range(rounds):
            alert = services.create_alert(ctx, alert_body(), by=officer)
            services.submit_alert(ctx, alert.id, by=officer)
            services.approve_alert(ctx, alert.id, by=supervisor)

            def done(alert_id: int = alert.id) -> bool:
                with ctx.db.session() as session:
                    sent = session.execute(
                        select(func.count()).where(
                            Delivery.alert_id == alert_id, Delivery.state == "sent"
                        )
                    ).scalar_one()
                return bool(sent == n)

            wait_for(done, 120, interval=0.2, message=f"{n} sends")
            lines = [line.split() for line in sink.read_text().splitlines()]
            sink.write_text("")
            times = [float(line[3]) for line in lines]
            rates.append(steady_rate(times))
            windows.append(busiest_window(times))
            time.sleep(1.5)  # Let the bucket fill again: each round starts from idle.
        return {
            "name": name,
            "rates": rates,
            "windows": windows,
            "p50_wait": wait_quantile(metrics_dir, 0.5),
            "p95_wait": wait_quantile(metrics_dir, 0.95),
        }
    finally:
        for worker in workers:
            worker.stop()
        ctx.close()


def report(cases: list[dict], rounds: int, n: int) -> str:
    lines = [
        f"## Global limiter at R = {RATE}/s (`benchmarks/limiter.py`)",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores; load average "
        f"{os.getloadavg()[1]:.1f} over the last 5 minutes of the run: what else ran shows there).",
        "",
        f"Two Celery worker processes (`--concurrency=1`) send {n} deliveries per round to an "
        "instant, non-idempotent channel with `ALERTD_RECORDING_RATE="
        f"{RATE}`; {rounds} rounds per case, each from an idle bucket. Achieved rate: sends "
        "per second between one second after the first and one second before the last send "
        "stamp (the steady pace). Busiest window: the most send stamps in any sliding second. "
        "Waits: each released piece's wait for tokens, from the workers' "
        "`alertd_limiter_wait_seconds` histogram (quantiles interpolated within its buckets). "
        "Unlimited: one round of the same setup with no rate, what the two workers reach by "
        "themselves.",
        "",
        "| case | achieved rate, median (rounds) | % of R | busiest 1-s window (rounds) "
        "| wait p50 | wait p95 | unlimited |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in cases:
        median = statistics.median(c["rates"])
        lines.append(
            f"| {c['name']} | {median:.1f}/s ({', '.join(f'{r:.1f}' for r in c['rates'])}) "
            f"| {median / RATE:.1%} | {max(c['windows'])} "
            f"({', '.join(str(w) for w in c['windows'])}) "
            f"| {c['p50_wait'] * 1000:.1f} ms | {c['p95_wait'] * 1000:.1f} ms "
            f"| {c['unlimited']:.0f}/s |"
        )
    lines += [
        "",
        f"Target: within 5% of R ({RATE * 0.95:.0f}/s or more) and never above R in any "
        "one-second window. The limiter counts each request from its grant until 1.005 s "
        "after its answer and never more than R at once, so where the workers alone exceed R "
        "an instant channel is expected near 99.5% of R. Where they do not (the unlimited "
        "column below R), the engine, not the limiter, sets the pace.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--recipients", type=int, default=2000)
    parser.add_argument("--postgres", default="", help="also Redis + this PostgreSQL (reset!)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    cases = []
    with tempfile.TemporaryDirectory(prefix="limiter-bench-") as tmp:
        root = Path(tmp)
        redis = RedisServer(root / "redis")
        redis.start()
        setups = [("Redis bucket, SQLite", f"sqlite:///{root / 'redis.sqlite3'}", redis.url)]
        if args.postgres:
            setups.insert(0, ("Redis bucket, PostgreSQL", args.postgres, redis.url))
        embedded = f"sqlite:///{root / 'embedded.sqlite3'}"
        setups.append(("embedded default (SQLite, SQLite broker, file bucket)", embedded, ""))
        try:
            for i, (label, db, broker) in enumerate(setups):
                case = run_case(label, db, broker, root / f"case-{i}", args.rounds, args.recipients)
                # The same setup with no limit: what the two workers reach by themselves.
                free = run_case(label, db, broker, root / f"free-{i}", 1, args.recipients, 0)
                case["unlimited"] = free["rates"][0]
                cases.append(case)
        finally:
            redis.stop()
    body = report(cases, args.rounds, args.recipients)
    print(body)
    if not args.no_write:
        write_section("limiter", body)


if __name__ == "__main__":
    main()
