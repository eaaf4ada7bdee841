"""Real processes for integration tests: a private redis-server, Celery workers and beat."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

import pytest

from alertd.settings import REPO_ROOT

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    check: Callable[[], T], timeout: float, interval: float = 0.1, message: str = "condition"
) -> T:
    """Poll until ``check`` returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class RedisServer:
    def __init__(self, directory: Path, *, appendonly: bool = False) -> None:
        self.port = free_port()
        self.directory = directory
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        wait_for(self.ping, 10, message="redis-server to accept connections")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, sig: int = 15) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)
        self.process = None


def require_redis_server() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")


@contextmanager
def redis_server(directory: Path, *, appendonly: bool = False) -> Iterator[RedisServer]:
    require_redis_server()
    server = RedisServer(directory, appendonly=appendonly)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def alertd_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTD_")}
    env.update({f"ALERTD_{k}": v for k, v in values.items()})
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


class CeleryProcess:
    def __init__(self, kind: str, env: dict[str, str], log: Path, *extra: str) -> None:
        cmd = [sys.executable, "-m", "celery", "-A", "workers.app", kind, "--loglevel=INFO"]
        if kind == "worker":
            cmd += [
                "-Q",
                "alertd",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                f"--hostname=test-{os.getpid()}-{free_port()}@%h",
            ]
        cmd += list(extra)
        self.log = log
        self._log_file = log.open("ab")
        self.process = subprocess.Popen(
            cmd,
            env=env,
            cwd=REPO_ROOT,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        wait_for(
            lambda: b"ready." in self.log.read_bytes() or self._died(),
            timeout,
            message=f"celery to start (log: {self.log})",
        )
        if self.process.poll() is not None:
            pytest.fail(f"celery exited early:\n{self.log.read_text()[-3000:]}")

    def _died(self) -> bool:
        return self.process.poll() is not None

    def child_pids(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
        ).stdout
        return [int(p) for p in out.split()]

    def stop(self, sig: int = 15) -> None:
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(timeout=10)
        self._log_file.close()
