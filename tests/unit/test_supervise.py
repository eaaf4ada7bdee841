"""`alertd serve`'s supervisor on real child processes: a worker alive but taking no work past
the threshold is killed and restarted; an exited child is restarted with the reason logged; a
child that ignores SIGTERM is killed after the grace period."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

import alertd.supervise as supervise
from alertd.supervise import Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
# Ignores SIGTERM, as a worker wedged on a lock in the walkthrough did.
WEDGED = [
    sys.executable,
    "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True);"
    " time.sleep(600)",
]


def test_a_worker_taking_no_work_past_the_threshold_is_restarted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    waited = [0.0]
    sup = Supervisor(
        {"worker": SLEEPER}, env={}, cwd=tmp_path, stalled_for=lambda: waited[0], stall_seconds=0.2
    )
    sup.start()
    try:
        first = sup.processes[0].pid
        time.sleep(0.3)
        sup.check()
        assert sup.processes[0].pid == first, "work is being taken: left alone"
        waited[0] = 5.0
        sup.check()
        assert sup.processes[0].pid != first
        assert "alive but takes no work" in caplog.text
    finally:
        sup.stop()
    assert all(p.poll() is not None for p in sup.processes)


def test_an_exited_child_is_restarted_after_a_backoff_with_the_reason_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sup = Supervisor({"beat": [sys.executable, "-c", "raise SystemExit(3)"]}, env={}, cwd=tmp_path)
    sup.children["beat"].delay = 0.1
    sup.start()
    try:
        first = sup.processes[0]
        first.wait(timeout=30)
        sup.check()
        assert "the beat (pid" in caplog.text
        assert "exited with code 3" in caplog.text
        time.sleep(0.15)
        sup.check()
        assert sup.processes[0].pid != first.pid
        assert sup.children["beat"].restarts == 1
        # It dies again at once: the next delay is longer.
        assert sup.children["beat"].delay > 0.1
    finally:
        sup.stop()


def test_stop_kills_a_child_that_ignores_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(supervise, "STOP_GRACE_SECONDS", 0.5)
    sup = Supervisor({"worker": WEDGED}, env={}, cwd=tmp_path)
    sup.start()
    deadline = time.monotonic() + 30
    while "up" not in capfd.readouterr().out and time.monotonic() < deadline:
        time.sleep(0.05)
    process = sup.processes[0]
    sup.stop()
    assert process.returncode == -9
