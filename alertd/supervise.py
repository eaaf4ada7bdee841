"""``alertd serve``'s supervision of its worker and scheduler: a child that exits is restarted
(with backoff against a crash loop) and the reason logged; a worker alive but taking no work
past ``ALERTD_STALL_SECONDS`` (the age of the oldest untaken work, as ``alertd health``
measures it) is killed and restarted; stopping sends SIGTERM, then SIGKILL after a grace period,
to each child's whole process group (a wedged pool child included)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# Restart delays double from the first to the last while a child keeps dying soon after start;
# a child that ran this long before dying starts again from the first delay.
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
STABLE_SECONDS = 60.0
# How long a child may take to stop after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 10.0
CHECK_SECONDS = 1.0


def describe_exit(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    delay: float = BACKOFF_FIRST_SECONDS
    restarts: int = 0


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def stop_process(process: subprocess.Popen[bytes], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM to the child's process group, SIGKILL to the group if it outlives ``grace``."""
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("pid %s did not stop within %.0f s; killing it", process.pid, grace)
    # Pool children of a worker that died may remain in its group: never leave them behind.
    _signal_group(process, signal.SIGKILL)
    process.wait()


class Supervisor:
    """Runs the children and watches them from a thread of the ``serve`` process."""

    def __init__(
        self,
        commands: dict[str, list[str]],
        *,
        env: dict[str, str],
        cwd: Path,
        stalled_for: Callable[[], float] | None = None,
        stall_seconds: float = 60.0,
    ) -> None:
        self.children = {name: Child(name, command) for name, command in commands.items()}
        self.env = env
        self.cwd = cwd
        # Seconds the oldest untaken work has waited; the worker is judged by it.
        self.stalled_for = stalled_for
        self.stall_seconds = stall_seconds
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [c.process for c in self.children.values() if c.process is not None]

    def _start(self, child: Child) -> None:
        # A session of its own: the whole group (the worker's pool children too) can be
        # signalled, and a Ctrl-C in the terminal reaches serve only, which stops them in order.
        child.process = subprocess.Popen(  # noqa: S603 - our own fixed commands, no shell
            child.command, env=self.env, cwd=self.cwd, start_new_session=True
        )
        child.started_at = time.monotonic()
        child.restart_at = None

    def start(self) -> None:
        for child in self.children.values():
            self._start(child)

    def watch(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopping.wait(CHECK_SECONDS):
            try:
                self.check()
            except Exception:
                # The supervisor must outlive anything it meets (a database briefly away).
                log.exception("supervisor check failed")

    def check(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            now = time.monotonic()
            for child in self.children.values():
                process = child.process
                if process is not None and process.poll() is not None:
                    self._exited(child, process, now)
                elif process is not None and child.name == "worker":
                    self._check_stalled(child, process, now)
                if child.restart_at is not None and now >= child.restart_at:
                    child.restarts += 1
                    log.warning("restarting the %s (restart %d)", child.name, child.restarts)
                    self._start(child)

    def _exited(self, child: Child, process: subprocess.Popen[bytes], now: float) -> None:
        if child.restart_at is not None:
            return
        # Reap what the dead child left in its group (e.g. pool children).
        _signal_group(process, signal.SIGKILL)
        if now - child.started_at >= STABLE_SECONDS:
            child.delay = BACKOFF_FIRST_SECONDS
        log.error(
            "the %s (pid %s) %s; restarting it in %.0f s",
            child.name,
            process.pid,
            describe_exit(process.returncode),
            child.delay,
        )
        child.restart_at = now + child.delay
        child.delay = min(child.delay * 2, BACKOFF_MAX_SECONDS)

    def _check_stalled(self, child: Child, process: subprocess.Popen[bytes], now: float) -> None:
        if self.stalled_for is None or now - child.started_at < self.stall_seconds:
            return  # A worker gets the threshold to start before it is judged.
        waited = self.stalled_for()
        if waited <= self.stall_seconds:
            return
        log.error(
            "the worker (pid %s) is alive but takes no work: the oldest untaken work has "
            "waited %.0f s (more than %.0f s); killing and restarting it",
            process.pid,
            waited,
            self.stall_seconds,
        )
        stop_process(process)
        child.restarts += 1
        self._start(child)

    def kill_all(self) -> None:
        """SIGKILL every child's process group at once, holding no lock: the last resort."""
        for child in self.children.values():
            if child.process is not None:
                _signal_group(child.process, signal.SIGKILL)

    def stop(self) -> None:
        """Stop watching, then stop every child: SIGTERM, SIGKILL after the grace period."""
        self._stopping.set()
        log.warning("stopping the worker and the scheduler")
        with self._lock:
            processes = self.processes
            for process in processes:
                if process.poll() is None:
                    _signal_group(process, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for process in processes:
                try:
                    process.wait(timeout=max(deadline - time.monotonic(), 0.0))
                except subprocess.TimeoutExpired:
                    log.warning("pid %s did not stop after SIGTERM; killing it", process.pid)
                _signal_group(process, signal.SIGKILL)
                process.wait()
