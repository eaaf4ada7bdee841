"""Approvals under load, and beside a login flood, against a real ``alertd serve`` on the
embedded default (SQLite, embedded broker, worker and scheduler), on loopback only.

20 clients each raise, submit and approve alerts (an officer's token, then a supervisor's) for
``--seconds``; the approval request's latency is what is measured. Then the same again while
flooders post wrong passwords to the console's sign-in from the same address. Both phases run
against one server in one run, so they compare.

    .venv/bin/python -m benchmarks.approval_load [--clients 20] [--seconds 60] [--flooders 4]
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alertd.accounts.services import create_token, create_user
from alertd.context import make_context
from alertd.settings import REPO_ROOT, load_settings
from benchmarks.report import summary_ms, write_section
from tests.support.factories import alert_body
from tests.support.processes import free_port

PASSWORD = "benchmark password 1234"  # noqa: S105 - users of a throwaway database


@dataclass
class Results:
    approvals: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    logins: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _call(base: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - our own server on loopback
        base + path,
        data=json.dumps(body if body is not None else {}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, None


def _client(base: str, officer: str, supervisor: str, until: float, out: Results) -> None:
    while time.monotonic() < until:
        status, alert = _call(base, "/api/v1/alerts", officer, alert_body())
        if status != 201:
            with out.lock:
                out.errors[f"create {status}"] += 1
            continue
        url = f"/api/v1/alerts/{alert['id']}"
        status, _ = _call(base, f"{url}/submit", officer)
        if status != 200:
            with out.lock:
                out.errors[f"submit {status}"] += 1
            continue
        started = time.perf_counter()
        status, _ = _call(base, f"{url}/approve", supervisor)
        took = time.perf_counter() - started
        with out.lock:
            if status == 200:
                out.approvals.append(took)
            else:
                out.errors[f"approve {status}"] += 1


def _flooder(base: str, target: str, until: float, out: Results) -> None:
    """Wrong passwords for one account from this address, as fast as the server answers,
    through the real form (with its CSRF token)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/login", timeout=30).read().decode()
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    form = urllib.parse.urlencode(
        {"username": target, "password": "wrong guess", "csrf_token": found.group(1)}
    ).encode()
    while time.monotonic() < until:
        try:
            with opener.open(base + "/login", data=form, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        with out.lock:
            out.logins[status] += 1


def _phase(
    base: str, tokens: list[tuple[str, str]], seconds: float, flooders: int, target: str
) -> Results:
    out = Results()
    until = time.monotonic() + seconds
    threads = [
        threading.Thread(target=_client, args=(base, o, s, until, out)) for o, s in tokens
    ] + [
        threading.Thread(target=_flooder, args=(base, target, until, out)) for _ in range(flooders)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return out


def _wait_healthy(base: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"alertd serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2):  # noqa: S310
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("alertd serve did not answer /healthz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--flooders", type=int, default=4)
    parser.add_argument("--block", type=float, default=15.0, help="seconds per alternating block")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the doc")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="alertd-load-") as tmp:
        instance = Path(tmp) / "instance"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ALERTD_")},
            "ALERTD_INSTANCE_PATH": str(instance),
            "ALERTD_CHANNELS": "cap,log",
        }
        subprocess.run(
            [sys.executable, "-m", "alertd.cli", "init"], env=env, cwd=REPO_ROOT, check=True
        )
        ctx = make_context(load_settings({"INSTANCE_PATH": str(instance), "CHANNELS": "cap,log"}))
        tokens = []
        with ctx.db.transaction() as session:
            create_user(session, "flooded", "officer", PASSWORD)
            for i in range(args.clients):
                create_user(session, f"officer{i}", "officer", PASSWORD)
                create_user(session, f"supervisor{i}", "supervisor", PASSWORD)
        for i in range(args.clients):
            with ctx.db.transaction() as session:
                tokens.append(
                    (
                        create_token(session, f"officer{i}", "load").token,
                        create_token(session, f"supervisor{i}", "load").token,
                    )
                )
        ctx.close()

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with (Path(tmp) / "serve.log").open("wb") as log:
            serve = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "alertd.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                env=env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                _wait_healthy(base, serve)
                load_before = os.getloadavg()[0]
                # Alternating blocks, so a neighbour's burst on the shared machine lands on
                # both phases alike rather than on whichever ran second.
                quiet, flood = Results(), Results()
                blocks = max(1, round(args.seconds / args.block))
                for _ in range(blocks):
                    for out, flooders in ((quiet, 0), (flood, args.flooders)):
                        part = _phase(base, tokens, args.seconds / blocks, flooders, "flooded")
                        out.approvals += part.approvals
                        out.errors += part.errors
                        out.logins += part.logins
                load_after = os.getloadavg()[0]
            finally:
                serve.terminate()
                try:
                    serve.wait(30)
                except subprocess.TimeoutExpired:
                    serve.kill()

    body = _report(args, quiet, flood, (load_before, load_after))
    print(body)
    if not args.no_write:
        write_section("approval-load", body)


def _report(
    args: argparse.Namespace, quiet: Results, flood: Results, load: tuple[float, float]
) -> str:
    rows = []
    figures = {}
    for name, result in (("quiet", quiet), ("login flood beside", flood)):
        p50, p95, worst = summary_ms(result.approvals)
        figures[name] = p95
        rate = len(result.approvals) / args.seconds
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(result.errors.items())) or "none"
        logins = sum(result.logins.values())
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result.logins.items())) or "-"
        rows.append(
            f"| {name} | {len(result.approvals)} ({rate:.1f}/s) | {p50:.0f} | {p95:.0f} | "
            f"{worst:.0f} | {errors} | {logins} ({statuses}) |"
        )
    ratio = figures["login flood beside"] / figures["quiet"]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            "## Approvals under load, and beside a login flood",
            "",
            f"`benchmarks/approval_load.py`, {when}, Python {platform.python_version()}, "
            f"{os.cpu_count()} cores (1-minute load "
            f"average {load[0]:.1f} when the run started, {load[1]:.1f} when it ended; figures "
            "are noisy: compare the two rows, measured side by side).",
            "",
            f"A real `alertd serve` on the embedded default (SQLite, embedded broker, worker and "
            f"scheduler; channels cap and log) on loopback. {args.clients} clients each raise, "
            f"submit and approve alerts over the API for {args.seconds:.0f} s; the approval "
            f"request is timed. For another {args.seconds:.0f} s the same runs beside "
            f"{args.flooders} flooders posting wrong passwords for one account through the "
            f"sign-in form from the same address. The two phases alternate in "
            f"{args.block:.0f}-second blocks against one server.",
            "",
            "| phase | approvals | p50 ms | p95 ms | max ms | errors "
            "| login attempts (status: n) |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Approval p95 beside the flood is {ratio:.0%} of the quiet figure "
            f"(target: within 125%); quiet p95 target: under 1000 ms.",
        ]
    )


if __name__ == "__main__":
    main()
