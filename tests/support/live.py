"""Fixtures with real processes: a private redis-server, a Celery worker and beat, and a
context in the test process that publishes to that Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from alertd.broker import Publisher
from alertd.context import Context, make_context
from alertd.settings import Settings, load_settings
from tests.support.database import empty_tables
from tests.support.processes import CeleryProcess, RedisServer, alertd_env, redis_server

CHANNELS = "log,tests.support.channels:RecordingChannel,tests.support.channels:FlakyChannel"


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def live_settings(tmp_path: Path, db_url: str, redis: RedisServer) -> Settings:
    return load_settings(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": db_url,
            "BROKER_URL": redis.url,
            "SECRET_KEY": "test",
            "CHANNELS": CHANNELS,
            "SWEEP_SECONDS": 1.0,
            "OUTBOX_REPUBLISH_SECONDS": 1.0,
            "DELIVERY_LEASE_SECONDS": 5,
            "PUBLISH_TIMEOUT_SECONDS": 1.0,
            "DELIVERY_BATCH_SIZE": 5,
            # Smaller than a task's batch, so a task sends more than one sub-batch.
            "SEND_BATCH": 2,
            # Tests read counts right after changing them.
            "PROGRESS_CACHE_SECONDS": 0,
        },
        environ={},
    )


@pytest.fixture
def sink(tmp_path: Path) -> Path:
    path = tmp_path / "sink.txt"
    path.touch()
    return path


@pytest.fixture
def worker_env(live_settings: Settings, sink: Path, tmp_path: Path) -> dict[str, str]:
    """The environment of worker and beat processes: the same database and broker as
    live_ctx, short sweeps and leases, and the test channels' files."""
    env = alertd_env(
        INSTANCE_PATH=str(live_settings.instance_path),
        DATABASE_URL=live_settings.database_url,
        BROKER_URL=live_settings.broker_url,
        CHANNELS=CHANNELS,
        SWEEP_SECONDS="1",
        OUTBOX_REPUBLISH_SECONDS="1",
        DELIVERY_LEASE_SECONDS="5",
        SECRET_KEY="test",
        DELIVERY_BATCH_SIZE=str(live_settings.DELIVERY_BATCH_SIZE),
        SEND_BATCH=str(live_settings.SEND_BATCH),
    )
    env["ALERTD_TEST_SINK"] = str(sink)
    env["ALERTD_TEST_FLAKY"] = str(tmp_path / "flaky-ok")
    return env


@pytest.fixture
def live_ctx(live_settings: Settings) -> Iterator[Context]:
    context = make_context(live_settings, Publisher(live_settings))
    empty_tables(context.db)
    yield context
    context.close()


@pytest.fixture
def start_celery(
    tmp_path: Path, worker_env: dict[str, str]
) -> Iterator[Callable[..., CeleryProcess]]:
    started: list[CeleryProcess] = []

    def start(
        kind: str = "worker", *extra: str, env: dict[str, str] | None = None, ready: bool = True
    ) -> CeleryProcess:
        log = tmp_path / f"celery-{kind}-{len(started)}.log"
        process = CeleryProcess(kind, env or worker_env, log, *extra)
        started.append(process)
        if ready and kind == "worker":
            process.wait_ready()
        return process

    yield start
    for process in started:
        process.stop()
