"""The delivery engine alone: an instant fake channel that is not idempotent
(tests/support/channels.py's InstantChannel), two Celery worker processes (prefork, one child
each unless --children says otherwise), a private redis-server as broker, on PostgreSQL and on
the embedded default (SQLite). Per database:

- approval → last recorded outcome for N recipients (deliveries/s), worker RSS sampled every
  second (start/median/max/end and over time), and API and console reads (alert, progress)
  p95 sampled during the fan-out;
- the old per-delivery path (SEND_BATCH=1) in the same run, for the ratio;
- approval → first send while a large plan is still being written.

``python -m benchmarks.engine --quick`` is a smoke run (10,000 / 1,000 / 100,000);
the default is the issue's setting (100,000 recipients, first send during a 1,000,000-recipient
plan), with 2,000 on the old path (at 50-100/s, 100,000 would take half an hour). It resets
the PostgreSQL database it is given (ALERTD_BENCH_DATABASE_URL): never point it at one that
matters. It writes its section of docs/benchmarks.md (targets met or missed included) unless
--no-report. Full run: about 6-8 minutes on the shared 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import create_engine, func, select

from alertd.accounts.services import actor_for, create_token, create_user
from alertd.alerts import services
from alertd.alerts.models import Version
from alertd.broker import Publisher
from alertd.channels.dispatch.planning import PLAN_CHUNK
from alertd.channels.models import OPEN_STATES, Delivery
from alertd.context import Context, make_context
from alertd.schema import upgrade
from alertd.settings import load_settings
from alertd.web.app import create_app
from benchmarks.report import percentile, write_section
from benchmarks.sms import _rss_kb
from tests.support.database import reset_schema
from tests.support.factories import alert_body
from tests.support.processes import CeleryProcess, RedisServer, alertd_env, wait_for

POSTGRES = os.environ.get(
    "ALERTD_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test_engine"
)
PASSWORD = "x" * 12
RSS_EVERY_SECONDS = 1.0


@dataclass
class FanOut:
    recipients: int
    seconds: float = 0.0  # approval -> last recorded outcome
    first: float = 0.0  # approval -> first send
    # (seconds since approval, MB) of the worker children together, sampled every second.
    rss: list[tuple[float, float]] = field(default_factory=list)
    reads_ms: dict[str, list[float]] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.recipients / self.seconds if self.seconds else 0.0

    @property
    def rss_mb(self) -> list[float]:
        return [mb for _, mb in self.rss]

    def rss_summary(self) -> str:
        """Start / median / max / end, MB."""
        mb = self.rss_mb
        return f"{mb[0]:.0f} / {statistics.median(mb):.0f} / {max(mb):.0f} / {mb[-1]:.0f}"

    def rss_over_time(self, points: int = 12) -> str:
        """About ``points`` samples spread evenly over the run: flat or growing, at a glance."""
        step = max(1, len(self.rss) // points)
        picked = self.rss[::step]
        if picked[-1] != self.rss[-1]:
            picked.append(self.rss[-1])
        return ", ".join(f"{t:.0f} s {mb:.0f}" for t, mb in picked)


class Bench:
    def __init__(self, db_url: str, redis: RedisServer, root: Path) -> None:
        if db_url.startswith("postgresql"):
            reset_schema(db_url)
        (root / "instance").mkdir(parents=True, exist_ok=True)
        self.root, self.sink = root, root / "sink"
        self.base = {
            "INSTANCE_PATH": str(root / "instance"),
            "DATABASE_URL": db_url,
            "BROKER_URL": redis.url,
            "SECRET_KEY": "bench",
            "CHANNELS": "tests.support.channels:InstantChannel",
            "PUBLIC_URL": "http://alertd.test",
            "LOG_FORMAT": "text",
        }
        settings = load_settings(self.base, environ={})
        self.ctx: Context = make_context(settings, Publisher(settings))
        upgrade(self.ctx.db)
        with self.ctx.db.transaction() as session:
            self.officer = actor_for(create_user(session, "b-officer", "officer", PASSWORD))
            self.supervisor = actor_for(create_user(session, "b-super", "supervisor", PASSWORD))
            self.token = create_token(session, "b-officer", "bench").token
        self.workers: list[CeleryProcess] = []
        self.children = 1

    def start_workers(self, recipients: int, **extra: str) -> None:
        self.stop_workers()
        env = alertd_env(**{**self.base, **extra})
        env.update(ALERTD_TEST_RECIPIENTS=str(recipients), ALERTD_TEST_SINK=str(self.sink))
        self.workers = [
            CeleryProcess(
                "worker",
                env,
                self.root / f"worker-{recipients}-{i}.log",
                f"--concurrency={self.children}",
            )
            for i in range(2)
        ]
        for worker in self.workers:
            worker.wait_ready(60)

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []

    def _alert(self) -> int:
        alert = services.create_alert(self.ctx, alert_body(), by=self.officer)
        services.submit_alert(self.ctx, alert.id, by=self.officer)
        return alert.id

    def _sent_since(self, offset: int) -> list[float]:
        with self.sink.open() as sink:
            sink.seek(offset)
            return [float(line.split(" ", 1)[0]) for line in sink if line.strip()]

    def _open(self, alert_id: int) -> int:
        with self.ctx.db.session() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(Delivery)
                    .where(Delivery.alert_id == alert_id, Delivery.state.in_(OPEN_STATES))
                )
                or 0
            )

    def _recorded(self, alert_id: int) -> tuple[int, float]:
        """Deliveries finished, and seconds from approval to the last recorded outcome."""
        with self.ctx.db.session() as session:
            done, last = session.execute(
                select(func.count(), func.max(Delivery.finished_at)).where(
                    Delivery.alert_id == alert_id, Delivery.state.not_in(OPEN_STATES)
                )
            ).one()
            approved = session.execute(
                select(Version.approved_at).where(Version.alert_id == alert_id)
            ).scalar_one()
        if last is None or approved is None:
            return int(done), 0.0
        return int(done), (last - approved).total_seconds()

    def fan_out(self, recipients: int, *, reads: bool, wait_all: bool = True) -> FanOut:
        result = FanOut(recipients)
        alert_id = self._alert()
        self.sink.touch()
        offset = self.sink.stat().st_size
        pids = [p for w in self.workers for p in w.child_pids()]
        stop = threading.Event()
        approved = time.time()

        def sample() -> None:
            while True:
                result.rss.append((time.time() - approved, _rss_kb(pids) / 1024))
                if stop.wait(RSS_EVERY_SECONDS):
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        reader = None
        if reads:
            reader = threading.Thread(target=self._read, args=(alert_id, stop, result))
            reader.start()
        approved = time.time()
        services.approve_alert(self.ctx, alert_id, by=self.supervisor)
        wait_for(lambda: bool(self._sent_since(offset)), 120, interval=0.05)
        result.first = min(self._sent_since(offset)) - approved
        if wait_all:
            wait_for(
                lambda: self._recorded(alert_id)[0] >= recipients,
                3600,
                interval=0.5,
                message=f"{recipients} recorded outcomes",
            )
            result.seconds = self._recorded(alert_id)[1]
        stop.set()
        sampler.join()
        if reader is not None:
            reader.join()
        result.rss.append((time.time() - approved, _rss_kb(pids) / 1024))
        return result

    def _read(self, alert_id: int, stop: threading.Event, result: FanOut) -> None:
        """An officer's API client and console page polling while the fan-out runs."""
        app = create_app(context=self.ctx, test_config={"WTF_CSRF_ENABLED": False})
        api: FlaskClient = app.test_client()
        console: FlaskClient = app.test_client()
        console.post("/login", data={"username": "b-officer", "password": PASSWORD})
        paths: list[tuple[str, FlaskClient, str, dict[str, str]]] = [
            (
                "API alert",
                api,
                f"/api/v1/alerts/{alert_id}",
                {"Authorization": f"Bearer {self.token}"},
            ),
            ("console progress", console, f"/alerts/{alert_id}/progress", {}),
        ]
        while not stop.is_set():
            for name, client, path, headers in paths:
                started = time.perf_counter()
                status = client.get(path, headers=headers).status_code
                assert status == 200, (path, status)
                result.reads_ms.setdefault(name, []).append((time.perf_counter() - started) * 1e3)
            stop.wait(0.1)


@dataclass(frozen=True)
class Sizes:
    main: int
    old: int
    big: int


def run_database(
    db_url: str, name: str, sizes: Sizes, root: Path, settings: dict[str, str], children: int
) -> dict[str, Any]:
    redis = RedisServer(root / f"redis-{name}")
    redis.start()
    bench = Bench(db_url, redis, root / name)
    bench.children = children
    try:
        bench.start_workers(sizes.main, **settings)
        new = _phase(f"{name} fan-out", lambda: bench.fan_out(sizes.main, reads=True))
        bench.start_workers(sizes.old, **{**settings, "SEND_BATCH": "1"})
        old = _phase(f"{name} old path", lambda: bench.fan_out(sizes.old, reads=False))
        bench.start_workers(sizes.big, **settings)
        big = _phase(
            f"{name} first send", lambda: bench.fan_out(sizes.big, reads=False, wait_all=False)
        )
    finally:
        bench.stop_workers()
        bench.ctx.close()
        redis.stop()
    return {"new": new, "old": old, "big": big}


def _phase(name: str, call: Callable[[], FanOut]) -> FanOut:
    print(f"{name}...", flush=True)
    result = call()
    print(
        f"{name}: {result.recipients} in {result.seconds:.1f} s ({result.rate:.0f}/s), "
        f"first {result.first * 1e3:.0f} ms, RSS start/median/max/end {result.rss_summary()} MB",
        flush=True,
    )
    return result


# Issue 6, "Done when": deliveries/s per database, first send, read p95 on SQLite.
TARGET_RATE = {"PostgreSQL": 5000, "SQLite": 2000}
TARGET_FIRST_SECONDS = 1.0
TARGET_READ_P95_MS = 200.0


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(
    sizes: Sizes,
    results: dict[str, dict[str, Any]],
    load: tuple[Any, Any],
    settings: dict[str, str],
    worker: str,
) -> str:
    chosen = "".join(f"; {k}={v}" for k, v in settings.items())
    flag = "" if sizes.main >= 100_000 else " --quick"
    defaults = load_settings({}, environ={})
    lines = [
        f"## Delivery engine (`python -m benchmarks.engine{flag}`)",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Instant fake channel, not "
        f"idempotent; two Celery worker processes ({worker}); redis-server as broker; "
        f"defaults otherwise (SEND_BATCH {defaults.SEND_BATCH}, DELIVERY_BATCH_SIZE "
        f"{defaults.DELIVERY_BATCH_SIZE}, PLAN_CHUNK {PLAN_CHUNK:,}{chosen}). Deliveries/s = "
        "recipients / (approval → last recorded outcome). Old path: SEND_BATCH=1 (a "
        "transaction per delivery), same run. Worker RSS: the two worker children together, "
        f"sampled every {RSS_EVERY_SECONDS:.0f} s from approval to the last outcome. Reads: an "
        "API client and a console page polling the alert during the fan-out. Load average "
        f"{load[0][0]:.1f} before, {load[1][0]:.1f} after (2 cores).",
        "",
        "| database | recipients | approval → last outcome | deliveries/s | old path/s | "
        "ratio | first send (plan of " + f"{sizes.big:,}) | worker RSS start / median / max / "
        "end MB | read p95 ms (API alert / console progress) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for name, r in results.items():
        new, old, big = r["new"], r["old"], r["big"]
        p95s = {k: percentile(v, 95) for k, v in new.reads_ms.items()}
        p95 = " / ".join(f"{v:.0f}" for v in p95s.values()) or "-"
        lines.append(
            f"| {name} | {new.recipients:,} | {new.seconds:.1f} s | {new.rate:,.0f} | "
            f"{old.rate:,.0f} ({old.recipients:,}) | {new.rate / max(old.rate, 1e-9):.1f}x | "
            f"{big.first * 1e3:.0f} ms | {new.rss_summary()} | {p95} |"
        )
        target = TARGET_RATE.get(name, 0)
        verdict = (
            f"{name}: ≥ {target:,}/s {_met(new.rate >= target)} ({new.rate:,.0f}/s); first send "
            f"≤ 1 s {_met(big.first <= TARGET_FIRST_SECONDS)} ({big.first:.2f} s)"
        )
        if name == "SQLite" and p95s:
            worst = max(p95s.values())
            verdict += f"; read p95 < 200 ms {_met(worst < TARGET_READ_P95_MS)} ({worst:.0f} ms)"
        verdicts.append(verdict + ".")
    lines += ["", "Targets (issue 6" + ("" if sizes.main >= 100_000 else ", at full size") + "):"]
    lines += [f"- {v}" for v in verdicts]
    lines += ["", "Worker RSS over the fan-out (seconds after approval, MB):"]
    lines += [f"- {name}: {r['new'].rss_over_time()}" for name, r in results.items()]
    reads = "; ".join(
        f"{name} "
        + ", ".join(f"{k} {statistics.median(v):.0f}" for k, v in r["new"].reads_ms.items())
        for name, r in results.items()
    )
    lines += ["", f"Read medians (ms): {reads}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10,000 recipients (smoke run)")
    parser.add_argument("--only", choices=("postgresql", "sqlite"))
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a worker setting, e.g. DELIVERY_BATCH_SIZE=500 (without ALERTD_)",
    )
    parser.add_argument(
        "--children", type=int, default=1, help="prefork children per worker process (1)"
    )
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    settings = dict(pair.split("=", 1) for pair in args.set)
    sizes = Sizes(10_000, 1_000, 100_000) if args.quick else Sizes(100_000, 2_000, 1_000_000)
    load_before = os.getloadavg()
    worker = f"prefork, {args.children} child{'ren' if args.children > 1 else ''} each"
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.only != "sqlite":
            create_engine(POSTGRES).connect().close()  # Fails loudly when it does not answer.
            results["PostgreSQL"] = run_database(
                POSTGRES, "postgresql", sizes, root, settings, args.children
            )
        if args.only != "postgresql":
            url = f"sqlite:///{root / 'sqlite' / 'instance' / 'bench.sqlite3'}"
            results["SQLite"] = run_database(url, "sqlite", sizes, root, settings, args.children)
    text = report(sizes, results, (load_before, os.getloadavg()), settings, worker)
    print(text)
    if not args.no_report:
        write_section("engine", text)


if __name__ == "__main__":
    main()
