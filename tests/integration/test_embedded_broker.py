"""The embedded broker under concurrent producers and consumers at full speed (issue 10): the
filesystem transport it replaces killed its worker with a half-read message 7 times in 5,262.
Here producer threads (as web threads and the sweeper publish) and consumer processes (as worker
processes take) run flat out; every message must arrive whole, exactly once, with no error."""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kombu.connection import Connection

from alertd.broker import make_celery
from alertd.settings import load_settings

STRESS_SECONDS = 60.0
PRODUCER_THREADS = 3
CONSUMER_PROCESSES = 2
QUEUE = "stress"
# A few kilobytes per message: a half-written or half-read one would not parse.
PAD = "x" * 4096


def _connection(instance: str) -> Connection:
    settings = load_settings({"INSTANCE_PATH": instance, "SECRET_KEY": "t"}, environ={})
    app = make_celery(settings)
    connection: Connection = app.connection_for_write()
    return connection


def _consume(instance: str, stop: Any, results: Any) -> None:
    taken: list[int] = []
    errors: list[str] = []
    with _connection(instance) as conn, conn.SimpleQueue(QUEUE) as simple:
        while True:
            try:
                message = simple.get(timeout=0.5)
            except simple.Empty:
                if stop.is_set():
                    break
                continue
            except Exception as error:  # any error fails the test, reported
                errors.append(repr(error))
                break
            body = message.payload
            if body.get("pad") != PAD:
                errors.append(f"damaged message {body.get('n')}")
            taken.append(body["n"])
            message.ack()
    results.put((taken, errors))


@pytest.mark.once
def test_producers_and_consumers_at_full_speed_lose_nothing(tmp_path: Path) -> None:
    instance = str(tmp_path / "instance")
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    results = spawn.Queue()
    # Declare the queue before the consumers poll it.
    with _connection(instance) as conn, conn.SimpleQueue(QUEUE):
        pass
    consumers = [
        spawn.Process(target=_consume, args=(instance, stop, results))
        for _ in range(CONSUMER_PROCESSES)
    ]
    for process in consumers:
        process.start()
    sent: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + STRESS_SECONDS

    def produce(first: int) -> None:
        n = first
        try:
            with _connection(instance) as conn, conn.SimpleQueue(QUEUE) as simple:
                while time.monotonic() < deadline:
                    simple.put({"n": n, "pad": PAD})
                    with lock:
                        sent.append(n)
                    n += PRODUCER_THREADS
        except Exception as error:  # reported below
            errors.append(repr(error))

    producers = [threading.Thread(target=produce, args=(i,)) for i in range(PRODUCER_THREADS)]
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    stop.set()
    taken: list[int] = []
    for _ in consumers:
        try:
            got, failed = results.get(timeout=120)
        except queue.Empty:
            pytest.fail("a consumer process died without reporting")
        taken += got
        errors += failed
    for process in consumers:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert errors == []
    assert len(sent) > 1000, "the producers hardly ran"
    assert sorted(taken) == sorted(sent), "lost or duplicated messages"
