"""`alertd serve` on the embedded default: one command starts web, worker and scheduler with
no server installed, an approved alert reaches its channels, and stopping it stops them all."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from alertd.settings import REPO_ROOT
from tests.support.factories import alert_body
from tests.support.processes import alertd_env, free_port, wait_for

ALERTD = [sys.executable, "-m", "alertd.cli"]


def _call(url: str, token: str, body: Any = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 - our own server on loopback
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.load(response)


def _cli(env: dict[str, str], *args: str, stdin: str = "") -> str:
    return subprocess.run(
        [*ALERTD, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    ).stdout.strip()


# Serve itself waits at most its grace period per child; the rest is headroom for a loaded CI
# machine, where a whole suite shares two cores.
STOP_WAIT_SECONDS = 90


def _stop(serve: subprocess.Popen[bytes], sig: int, log_path: Path) -> None:
    """Signal serve and wait for it; if it hangs, kill it (so no process outlives the test)
    and fail with the end of its log, which says where it stopped."""
    serve.send_signal(sig)
    try:
        serve.wait(timeout=STOP_WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(serve.pid, signal.SIGKILL)
        serve.wait()
        tail = log_path.read_text()[-3000:]
        pytest.fail(f"serve did not stop within {STOP_WAIT_SECONDS} s of {sig!r}:\n{tail}")


def test_serve_runs_the_whole_dispatcher_on_the_embedded_default(tmp_path: Path) -> None:
    port = free_port()
    env = alertd_env(INSTANCE_PATH=str(tmp_path / "instance"), CHANNELS="cap,log")
    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen(
        [*ALERTD, "serve", "--port", str(port)],
        env=env,
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        banner = wait_for(
            lambda: re.search(r"password: (\S+)", (tmp_path / "serve.log").read_text()),
            60,
            message="the start-up banner",
        )
        assert banner.group(1)
        output = (tmp_path / "serve.log").read_text()
        assert f"http://127.0.0.1:{port}/" in output
        # The box comes after the start-up lines of the worker, the scheduler and the web
        # server, not lost among them.
        assert output.index("╔") > max(
            output.index("[queues]"), output.index("beat"), output.index("Serving on")
        )
        _cli(env, "users", "create", "officer1", "--role", "officer", stdin="officer password\n")
        _cli(env, "users", "create", "super1", "--role", "supervisor", stdin="supervisor pass\n")
        officer, supervisor = (
            _cli(env, "tokens", "create", "officer1"),
            _cli(env, "tokens", "create", "super1"),
        )
        base = f"http://127.0.0.1:{port}/api/v1/alerts"

        alert = _call(base, officer, alert_body())
        _call(f"{base}/{alert['id']}/submit", officer, {})
        _call(f"{base}/{alert['id']}/approve", supervisor, {})

        def delivered() -> bool:
            counts = _call(f"{base}/{alert['id']}", supervisor)["deliveries"]
            return counts.get("cap") == {"sent": 1} and counts.get("log") == {"sent": 1}

        wait_for(delivered, 30, interval=0.2, message="the worker to deliver on cap and log")
        assert _cli(env, "audit", "verify").startswith("audit trail intact")
        # The sends were counted in the worker's processes; the web process adds them up.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        assert 'alertd_delivery_outcomes_total{channel="log",outcome="sent"} 1.0' in metrics
        assert 'alertd_approval_to_first_send_seconds_count{channel="cap"} 1.0' in metrics
        groups = _children(serve.pid)
        assert len(groups) == 2, "a worker and a scheduler"
    finally:
        try:
            _stop(serve, signal.SIGTERM, tmp_path / "serve.log")
        finally:
            log.close()
    # Each child runs in a process group of its own; nothing of any of them may be left.
    leftovers = [pid for group in [serve.pid, *groups] for pid in _pgrep("-g", str(group))]
    assert leftovers == [], "worker or scheduler still running after serve stopped"


def _pgrep(*args: str) -> list[str]:
    return subprocess.run(
        ["pgrep", *args], capture_output=True, text=True, check=False
    ).stdout.split()


def _children(pid: int) -> list[int]:
    return [int(each) for each in _pgrep("-P", str(pid))]


def _worker_pid(serve_pid: int) -> int:
    found = _pgrep("-P", str(serve_pid), "-f", "celery -A workers.app worker")
    assert len(found) == 1, found
    return int(found[0])


def test_serve_restarts_a_killed_worker_and_the_backlog_drains(tmp_path: Path) -> None:
    port = free_port()
    env = alertd_env(INSTANCE_PATH=str(tmp_path / "instance"), CHANNELS="log")
    log_path = tmp_path / "serve.log"
    log = log_path.open("w")
    serve = subprocess.Popen(
        [*ALERTD, "serve", "--port", str(port)],
        env=env,
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: "password: " in log_path.read_text(), 60, message="the banner")
        _cli(env, "users", "create", "officer1", "--role", "officer", stdin="officer password\n")
        _cli(env, "users", "create", "super1", "--role", "supervisor", stdin="supervisor pass\n")
        officer = _cli(env, "tokens", "create", "officer1")
        supervisor = _cli(env, "tokens", "create", "super1")
        base = f"http://127.0.0.1:{port}/api/v1/alerts"
        first = _worker_pid(serve.pid)
        os.kill(first, signal.SIGKILL)
        # Approved while no worker runs: the backlog the restarted worker must drain.
        alerts = []
        for _ in range(3):
            alert = _call(base, officer, alert_body())
            _call(f"{base}/{alert['id']}/submit", officer, {})
            _call(f"{base}/{alert['id']}/approve", supervisor, {})
            alerts.append(alert["id"])

        def restarted() -> bool:
            found = _pgrep("-P", str(serve.pid), "-f", "celery -A workers.app worker")
            return bool(found) and int(found[0]) != first

        wait_for(restarted, 30, interval=0.2, message="serve to restart the worker")
        assert "the worker (pid" in log_path.read_text()
        assert "killed by SIGKILL" in log_path.read_text()

        def drained() -> bool:
            return all(
                _call(f"{base}/{each}", supervisor)["deliveries"].get("log") == {"sent": 1}
                for each in alerts
            )

        wait_for(drained, 60, interval=0.3, message="the restarted worker to drain the backlog")
        assert _cli(env, "health").startswith("oldest untaken outbox row: 0 s")
        groups = _children(serve.pid)
    finally:
        try:
            _stop(serve, signal.SIGINT, log_path)
        finally:
            log.close()
    leftovers = [pid for group in [serve.pid, *groups] for pid in _pgrep("-g", str(group))]
    assert leftovers == [], "worker or scheduler still running after serve stopped"
