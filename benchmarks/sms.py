"""SMS fan-out: approval → last request at the Twilio simulator, with two real Celery worker
processes, a private redis-server and PostgreSQL (SQLite when it is not reachable), the
simulator on loopback in this process. One run measures, against the same simulator:

- the fan-out to every subscriber of one area (msg/s, first request, worker RSS, duplicates);
- the same engine as one Celery task per message (delivery and send batches of one);
- a bare loop over the Twilio SDK in one process (the SDK as it comes, and our gateway);
- first request after approval over several small alerts (p50/p95);
- a cancel in the middle of a large fan-out: how late the last text of the old version left;
- ``ALERTD_SMS_RATE=R`` with two workers: the achieved rate and the busiest one-second window;
- the simulator alone, driven by two client processes.

``python -m benchmarks.sms`` is the quick run (5,000 subscribers, a 10,000-recipient cancel);
``python -m benchmarks.sms --full`` is the issue's setting (100,000 and 50,000).
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select

from alertd.accounts.services import actor_for, create_user
from alertd.alerts import services
from alertd.broker import Publisher
from alertd.channels import dispatch
from alertd.channels.models import OPEN_STATES, Delivery
from alertd.channels.sms import services as sms
from alertd.channels.sms.gateway import Text, TwilioGateway
from alertd.context import Context, make_context
from alertd.schema import upgrade
from alertd.settings import Settings, load_settings
from alertd.task_names import DELIVER_TASK, DISPATCH_TASK, PLAN_TASK
from benchmarks.report import write_section
from benchmarks.sms_report import Results, report
from tests.support import twilio_sim
from tests.support.database import reset_schema
from tests.support.factories import alert_body
from tests.support.processes import CeleryProcess, RedisServer, alertd_env, wait_for

POSTGRES = os.environ.get(
    "ALERTD_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test_sms_bench"
)
TWILIO = {
    "TWILIO_ACCOUNT_SID": twilio_sim.ACCOUNT_SID,
    "TWILIO_AUTH_TOKEN": twilio_sim.AUTH_TOKEN,
    "TWILIO_FROM_NUMBER": "+15005550006",
}
# One area per measurement, so each alert's texts are told apart at the simulator.
MAIN, CANCEL, BASELINE, RATED, PROBE = "006037", "006059", "006065", "006071", "006073"


@dataclass(frozen=True)
class Sizes:
    main: int
    cancel: int
    cancel_after: int
    baseline: int
    rate: float
    rate_seconds: int
    probes: int
    probe_area: int
    sdk_loop: int

    @classmethod
    def of(cls, full: bool) -> Sizes:
        if full:
            return cls(100_000, 50_000, 5_000, 2_000, 200.0, 15, 20, 50, 3_000)
        return cls(5_000, 10_000, 2_000, 1_000, 200.0, 10, 10, 50, 2_000)


def _rss_kb(pids: list[int]) -> int:
    out = subprocess.run(
        ["ps", "-o", "rss=", "-p", ",".join(map(str, pids))],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return sum(int(x) for x in out.split())


def _cpu_seconds(pids: list[int]) -> float:
    """User and system CPU the processes used so far (Linux /proc): a cost per text that the
    machine's other load does not change, unlike a rate."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / ticks


def _postgres_pids() -> list[int]:
    """The local PostgreSQL server's processes (none when it runs elsewhere)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _machine_busy() -> tuple[int, int, int]:
    """(all, idle, stolen) CPU ticks of the whole machine so far (Linux /proc/stat). Stolen
    ticks are the hypervisor running someone else on our cores: a machine of the same size
    that is several times slower shows it there."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    stolen = ticks[7] if len(ticks) > 7 else 0
    return sum(ticks), ticks[3] + ticks[4], stolen  # idle and iowait; steal


def _windows(stamps: list[float]) -> list[int]:
    """Requests in the one-second window starting at each request (so the busiest second)."""
    counts, j = [], 0
    for i, start in enumerate(stamps):
        while j < len(stamps) and stamps[j] < start + 1.0:
            j += 1
        counts.append(j - i)
    return counts or [0]


class Bench:
    def __init__(
        self,
        db_url: str,
        redis: RedisServer,
        sim: twilio_sim.Simulator,
        root: Path,
        extra: dict[str, str],
    ):
        if db_url.startswith("postgresql"):
            reset_schema(db_url)
        os.environ.update(TWILIO)
        base = {
            "INSTANCE_PATH": str(root / "instance"),
            "DATABASE_URL": db_url,
            "BROKER_URL": redis.url,
            "SECRET_KEY": "bench",
            "CHANNELS": "sms",
            "SMS_BACKEND": "twilio",
            "TWILIO_API_BASE": sim.url,
            "PUBLIC_URL": "http://alertd.test",
            **extra,
        }
        self.base, self.root, self.sim = base, root, sim
        # Read as the workers read them, so a number given as text is a number here too.
        self.settings = load_settings(environ={f"ALERTD_{k}": v for k, v in base.items()})
        self.ctx: Context = make_context(self.settings, Publisher(self.settings))
        upgrade(self.ctx.db)
        with self.ctx.db.transaction() as session:
            self.officer = actor_for(create_user(session, "b-officer", "officer", "x" * 12))
            self.supervisor = actor_for(create_user(session, "b-super", "supervisor", "x" * 12))
            self.operator = actor_for(create_user(session, "b-ops", "operator", "x" * 12))
        self.workers: list[CeleryProcess] = []

    def start_workers(self, **extra: str) -> None:
        """Two worker processes (prefork, one child each), as the issue sets it."""
        self.stop_workers()
        env = alertd_env(**{**self.base, **extra})
        env.update(TWILIO)
        tag = "-".join(f"{k}{v}" for k, v in extra.items()) or "default"
        self.workers = [
            CeleryProcess("worker", env, self.root / f"worker-{tag}-{i}.log", "--concurrency=1")
            for i in range(2)
        ]
        for worker in self.workers:
            worker.wait_ready(60)
        # The sweeper, as deployed: it resumes a plan whose task ran out of time.
        beat = self.root / f"beat-{tag}"
        self.workers.append(
            CeleryProcess("beat", env, beat.with_suffix(".log"), f"--schedule={beat}.db")
        )

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []

    def subscribers(self, sizes: Sizes) -> float:
        """One import: the first of them follow the smaller areas as well."""
        started = time.perf_counter()
        total = max(sizes.main, sizes.cancel)
        for start in range(0, total, 20000):
            rows = []
            for i in range(start, min(total, start + 20000)):
                areas = [
                    code
                    for code, size in (
                        (MAIN, sizes.main),
                        (CANCEL, sizes.cancel),
                        (BASELINE, sizes.baseline),
                        (RATED, int(sizes.rate * sizes.rate_seconds)),
                        (PROBE, sizes.probe_area),
                    )
                    if i < size
                ]
                rows.append(f"+1415{i // 10000 + 300:03d}{i % 10000:04d},en,")
                rows.append(" ".join(f"SAME={code}" for code in areas) + ",,\n")
            report = sms.import_csv(
                self.ctx,
                io.StringIO("phone,language,areas,lat,lon\n" + "".join(rows)),
                by=self.operator,
            )
            assert not report.rejected, report.rejected[:3]
        return time.perf_counter() - started

    def alert(self, code: str) -> tuple[int, str]:
        body = alert_body(areas=[{"description": f"County {code}", "geocodes": {"SAME": code}}])
        alert = services.create_alert(self.ctx, body, by=self.officer)
        services.submit_alert(self.ctx, alert.id, by=self.officer)
        return alert.id, alert.public_id

    def approve(self, alert_id: int) -> float:
        started = time.time()
        services.approve_alert(self.ctx, alert_id, by=self.supervisor)
        return started

    def texts(self, public_id: str, start: int = 0) -> list[twilio_sim.Taken]:
        with self.sim.lock:
            return [t for t in self.sim.taken[start:] if f"/a/{public_id}" in t.body]

    def open_deliveries(self, alert_id: int) -> int:
        with self.ctx.db.session() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(Delivery)
                    .where(Delivery.alert_id == alert_id, Delivery.state.in_(OPEN_STATES))
                )
                or 0
            )

    def fan_out(
        self,
        code: str,
        expected: int,
        *,
        sample_rss: bool = False,
        approve: Callable[[int], float] | None = None,
    ) -> dict[str, Any]:
        """Approve an alert for ``code`` and wait for ``expected`` texts at the simulator."""
        before = len(self.sim.taken)
        alert_id, public_id = self.alert(code)
        pids = [p for w in self.workers[:2] for p in w.child_pids()]
        # (texts so far, MB): the first samples include the workers' warm-up.
        rss = [(0, _rss_kb(pids) / 1024)]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                rss.append((len(self.sim.taken) - before, _rss_kb(pids) / 1024))

        sampler = threading.Thread(target=sample, daemon=True)
        if sample_rss:
            sampler.start()
        servers = _postgres_pids() if self.settings.DATABASE_URL.startswith("postgresql") else []
        cpu, pg, here, machine = (
            _cpu_seconds(pids),
            _cpu_seconds(servers),
            time.process_time(),
            _machine_busy(),
        )
        approved = (approve or self.approve)(alert_id)
        wait_for(lambda: len(self.sim.taken) - before >= expected, 3600, interval=0.2)
        cpu, pg, here = (
            _cpu_seconds(pids) - cpu,
            _cpu_seconds(servers) - pg,
            time.process_time() - here,
        )
        ticks, idle, stolen = (
            now - then for now, then in zip(_machine_busy(), machine, strict=True)
        )
        stop.set()
        if sample_rss:
            sampler.join()
        wait_for(lambda: self.open_deliveries(alert_id) == 0, 600, interval=0.5)
        mine = self.texts(public_id, before)
        stamps = sorted(t.at.timestamp() for t in mine)
        counts = Counter(t.to for t in mine)
        return {
            "texts": len(mine),
            "first": stamps[0] - approved,
            "last": stamps[-1] - approved,
            "rate": (len(stamps) - 1) / max(1e-9, stamps[-1] - stamps[0]),
            "overall": len(stamps) / max(1e-9, stamps[-1] - approved),
            "busiest": max(_windows(stamps)),
            "duplicates": sum(1 for c in counts.values() if c > 1),
            "cpu_ms": 1000 * cpu / max(1, len(mine)),
            # PostgreSQL's processes (when local) and this one: the simulator's thread, mostly.
            "pg_cpu_ms": 1000 * pg / max(1, len(mine)) if servers else None,
            "bench_cpu_ms": 1000 * here / max(1, len(mine)),
            "busy": 1 - idle / max(1, ticks),
            "stolen": stolen / max(1, ticks),
            "rss": rss,
        }

    def one_task_per_message(self, code: str, expected: int) -> dict[str, Any]:
        """The same engine queueing one Celery task per text: planned here in the usual chunks
        (so planning in ones does not slow the baseline), each chunk's delivery task split into
        one task per delivery for the workers, which send batches of one."""
        publisher = _OneTaskPerMessage(self.settings)
        ctx = make_context(self.settings, publisher)

        def approve(alert_id: int) -> float:
            started = time.time()
            services.approve_alert(ctx, alert_id, by=self.supervisor)
            while publisher.inline:
                name, args = publisher.inline.pop(0)
                if name == DISPATCH_TASK:
                    dispatch.dispatch_version(ctx, args[0])
                else:
                    dispatch.plan_dispatch(ctx, args[0])
            return started

        try:
            return self.fan_out(code, expected, approve=approve)
        finally:
            ctx.close()

    def first_requests(self, count: int) -> list[float]:
        return [self._first_request() for _ in range(count)]

    def _first_request(self) -> float:
        alert_id, public_id = self.alert(PROBE)
        before = len(self.sim.taken)
        approved = self.approve(alert_id)
        wait_for(lambda: bool(self.texts(public_id, before)), 60, interval=0.01)
        latency = self.texts(public_id, before)[0].at.timestamp() - approved
        wait_for(lambda: self.open_deliveries(alert_id) == 0, 120, interval=0.2)
        time.sleep(0.5)
        return latency

    def cancel_mid_fan_out(self, sizes: Sizes) -> dict[str, Any]:
        alert_id, public_id = self.alert(CANCEL)
        before = len(self.sim.taken)
        self.approve(alert_id)
        wait_for(lambda: len(self.sim.taken) - before >= sizes.cancel_after, 600, interval=0.05)
        # Before the call, so the lateness measured is an upper bound of the real one.
        cancelled = time.time()
        services.cancel_alert(self.ctx, alert_id, "Entered in error.", by=self.supervisor)

        def settled() -> bool:
            # The cancellation is a version of its own, planned after the cancel: done when
            # everyone texted the alert has it, or nothing is left to send.
            mine = self.texts(public_id, before)
            texted = {t.to for t in mine if "CANCELLED" not in t.body}
            ending = sum(1 for t in mine if "CANCELLED" in t.body)
            return ending >= len(texted) and self.open_deliveries(alert_id) == 0

        wait_for(settled, 1200, interval=0.5)
        mine = self.texts(public_id, before)
        old = sorted(t.at.timestamp() for t in mine if "CANCELLED" not in t.body)
        ending = [t for t in mine if "CANCELLED" in t.body]
        old_to = {t.to for t in mine if "CANCELLED" not in t.body}
        return {
            "recipients": sizes.cancel,
            "old_texts": len(old),
            "latest": old[-1] - cancelled,
            "after_2s": sum(1 for s in old if s > cancelled + 2.0),
            "cancel_texts": len(ending),
            "cancel_matches": {t.to for t in ending} == old_to and len(ending) == len(old_to),
        }


class _OneTaskPerMessage(Publisher):
    """Runs dispatch and planning in this process and queues one delivery task per delivery."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.inline: list[tuple[str, list[Any]]] = []

    def send(self, task_name: str, args: list[Any]) -> bool:
        if task_name == DELIVER_TASK:
            send = super().send
            return all([send(task_name, [args[0], [i]]) for i in args[1]])
        if task_name in (DISPATCH_TASK, PLAN_TASK):
            self.inline.append((task_name, list(args)))
            return True
        return super().send(task_name, args)


# The SDK as it comes (its own HTTP client, keep-alive), one text after another, in a process
# of its own as the workers are: run inside the benchmark process, its thread and the
# simulator's took turns on one interpreter lock, which set its pace (544/s against 940-1,090/s
# with a thread per connection in the simulator before).
_STOCK_SDK = """
import sys, time
from twilio.rest import Client
url, count, sid, token = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
client = Client(sid, token, environment={"ALERTD_EXPLICIT": "1"})
client.api.base_url = url
started = time.perf_counter()
for i in range(count):
    client.messages.create(
        to=f"+1416555{i % 10000:04d}", body="bench", from_="+15005550006", validity_period=600
    )
print(count / (time.perf_counter() - started))
"""


def stock_sdk_loop(url: str, count: int) -> float:
    """The bare SDK loop's texts per second (_STOCK_SDK), in a process of its own."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _STOCK_SDK,
            url,
            str(count),
            twilio_sim.ACCOUNT_SID,
            twilio_sim.AUTH_TOKEN,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return float(out.stdout.strip().splitlines()[-1])


def gateway_loop(ctx: Context, count: int) -> float:
    """Our gateway (the SDK over our keep-alive stream transport), in sub-batches as the
    channel sends them, with no database and no queue: what the sending alone reaches in one
    process."""
    gateway = TwilioGateway(ctx, environ=TWILIO)
    size = max(1, ctx.settings.SEND_BATCH)
    texts = [
        Text(0, 0, f"+1417555{i % 10000:04d}", "bench", "http://x/y", 600) for i in range(count)
    ]
    started = time.perf_counter()
    for start in range(0, count, size):
        gateway.send_many(texts[start : start + size])
    return count / (time.perf_counter() - started)


_LOAD = """
import http.client, sys, threading, urllib.parse
port, n, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def run(t):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(n):
        body = urllib.parse.urlencode({"To": f"+1418{t:03d}{i:04d}", "From": "+15005550006",
                                       "Body": "load"})
        c.request("POST", "/2010-04-01/Accounts/AC/Messages.json", body,
                  {"Content-Type": "application/x-www-form-urlencoded"})
        c.getresponse().read()
ts = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
[t.start() for t in ts]; [t.join() for t in ts]
"""


def simulator_alone(
    sim: twilio_sim.Simulator, clients: int = 2, threads: int = 8
) -> dict[str, float]:
    """Two client processes of eight keep-alive connections each, raw HTTP, nothing else."""
    port, per_thread = sim.url.rsplit(":", 1)[1], 400
    before, cpu = len(sim.taken), time.process_time()
    procs = [
        subprocess.Popen([sys.executable, "-c", _LOAD, port, str(per_thread), str(threads)])
        for _ in range(clients)
    ]
    for proc in procs:
        proc.wait(120)
    cpu = time.process_time() - cpu
    with sim.lock:
        stamps = sorted(t.at.timestamp() for t in sim.taken[before:])
    return {
        "requests": len(stamps),
        "rate": (len(stamps) - 1) / max(1e-9, stamps[-1] - stamps[0]),
        "cpu_us": 1e6 * cpu / max(1, len(stamps)),
    }


def postgres_available() -> bool:
    try:
        create_engine(POSTGRES).connect().close()
    except Exception:
        return False
    return True


def _phase(name: str, call: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    print(f"{name}...", flush=True)
    result = call()
    print(f"{name}: {time.perf_counter() - started:.1f} s {result!r:.300}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="100,000 subscribers (long)")
    size.add_argument("--quick", action="store_true", help="5,000 subscribers (the default)")
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument(
        "--delivery-batch", type=int, default=0, help="ALERTD_DELIVERY_BATCH_SIZE (planning chunk)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a worker setting, e.g. SMS_CONCURRENCY=50 (without ALERTD_)",
    )
    args = parser.parse_args()
    sizes = Sizes.of(args.full)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, twilio_sim.running() as sim:
        root = Path(tmp)
        redis = RedisServer(root / "redis")
        redis.start()
        use_pg = postgres_available()
        db_url = POSTGRES if use_pg else f"sqlite:///{root / 'bench.sqlite3'}"
        extra = {"DELIVERY_BATCH_SIZE": str(args.delivery_batch)} if args.delivery_batch else {}
        extra |= dict(pair.split("=", 1) for pair in args.set)
        bench = Bench(db_url, redis, sim, root, extra)
        try:
            results = Results(sizes=sizes, database="PostgreSQL" if use_pg else "SQLite")
            results.import_seconds = _phase("import", lambda: bench.subscribers(sizes))
            results.simulator = _phase("simulator alone", lambda: simulator_alone(sim))
            results.stock_sdk = _phase("stock SDK", lambda: stock_sdk_loop(sim.url, sizes.sdk_loop))
            results.gateway = _phase("gateway", lambda: gateway_loop(bench.ctx, sizes.sdk_loop))
            results.send_batch = bench.settings.SEND_BATCH
            bench.start_workers()
            results.main = _phase(
                "fan-out", lambda: bench.fan_out(MAIN, sizes.main, sample_rss=True)
            )
            results.probes = _phase("first requests", lambda: bench.first_requests(sizes.probes))
            results.cancel = _phase("cancel", lambda: bench.cancel_mid_fan_out(sizes))
            bench.start_workers(SEND_BATCH="1", SMS_CONCURRENCY="1")
            results.baseline = _phase(
                "one task per message",
                lambda: bench.one_task_per_message(BASELINE, sizes.baseline),
            )
            bench.start_workers(SMS_RATE=str(sizes.rate))
            rated = int(sizes.rate * sizes.rate_seconds)
            results.rated = _phase("rate", lambda: bench.fan_out(RATED, rated))
        finally:
            bench.stop_workers()
            bench.ctx.close()
            redis.stop()
    results.load = (load_before, os.getloadavg())
    results.arguments = sys.argv[1:]
    text = report(args.full, results)
    print(text)
    if not args.no_report:
        write_section("sms", text)


if __name__ == "__main__":
    main()
