"""Two workers starting at once on a fresh embedded broker file: each turns it to WAL, creates
kombu's tables and declares the same queues. Before the fix (alertd/broker.py), 35 and 39 of 80
starts in two runs failed: "table kombu_queue already exists" (kombu guards its look-then-create
with a lock of its own process only), "UNIQUE constraint failed: kombu_queue.name" (the same for
the queue row) and "database is locked" (the switch to WAL does not wait out the other's lock).
Each round uses a fresh file and releases both processes together."""

from __future__ import annotations

import multiprocessing
import queue
from pathlib import Path
from typing import Any

import pytest
from kombu.connection import Connection

from alertd.broker import make_celery
from alertd.settings import load_settings

ROUNDS = 40
PROCESSES = 2
QUEUES = ("celery", "deliveries", "sweeper")


def _declare_rounds(root: str, barrier: Any, results: Any) -> None:
    for n in range(ROUNDS):
        barrier.wait(timeout=60)
        settings = load_settings(
            {"INSTANCE_PATH": str(Path(root) / f"round-{n}"), "SECRET_KEY": "t"}, environ={}
        )
        try:
            connection: Connection = make_celery(settings).connection_for_write()
            with connection:
                for name in QUEUES:
                    with connection.SimpleQueue(name):
                        pass
            results.put((n, ""))
        except Exception as error:  # reported to the test
            results.put((n, repr(error)))


@pytest.mark.once
def test_two_processes_declaring_queues_on_a_fresh_broker_file(tmp_path: Path) -> None:
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(PROCESSES)
    results = spawn.Queue()
    processes = [
        spawn.Process(target=_declare_rounds, args=(str(tmp_path), barrier, results))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    errors = []
    for _ in range(ROUNDS * PROCESSES):
        try:
            n, error = results.get(timeout=120)
        except queue.Empty:
            pytest.fail("a process died without reporting")
        if error:
            errors.append(f"round {n}: {error}")
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert errors == []
