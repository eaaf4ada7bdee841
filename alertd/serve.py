"""``alertd serve``: the whole dispatcher in one command — web, worker and scheduler — on the
embedded default (SQLite and a folder broker) or on whatever the settings name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace

from alertd.cli import ensure_first_admin
from alertd.context import make_context
from alertd.schema import upgrade
from alertd.settings import PREFIX, REPO_ROOT, Settings

WEB_THREADS = 8


def _child_environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            PREFIX + "INSTANCE_PATH": str(settings.instance_path),
            PREFIX + "DATABASE_URL": settings.database_url,
            PREFIX + "BROKER_URL": settings.broker_url,
            PREFIX + "PUBLIC_URL": settings.PUBLIC_URL,
        }
    )
    return env


def start_background(settings: Settings) -> list[subprocess.Popen[bytes]]:
    """Start a Celery worker and Celery beat as child processes."""
    env = _child_environment(settings)
    celery = [sys.executable, "-m", "celery", "-A", "workers.app"]
    worker = [
        *celery,
        "worker",
        "--loglevel=INFO",
        "--concurrency=2",
        "-Q",
        "alertd",
        "--hostname=alertd@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    beat = [
        *celery,
        "beat",
        "--loglevel=INFO",
        "--schedule",
        str(settings.instance_path / "celerybeat-schedule"),
    ]
    return [subprocess.Popen(cmd, env=env, cwd=REPO_ROOT) for cmd in (worker, beat)]


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def serve_web(settings: Settings, *, port: int | None = None, host: str | None = None) -> int:
    import waitress

    from alertd.web.app import create_app

    settings = replace(settings, PORT=port or settings.PORT, HOST=host or settings.HOST)
    waitress.serve(
        create_app(settings),
        host=settings.HOST,
        port=settings.PORT,
        threads=WEB_THREADS,
        ident="alertd",
    )
    return 0


def serve(settings: Settings, *, port: int | None = None, host: str | None = None) -> int:
    settings = replace(settings, PORT=port or settings.PORT, HOST=host or settings.HOST)
    if port and settings.PUBLIC_URL == "http://127.0.0.1:8000":
        settings = replace(settings, PUBLIC_URL=f"http://{settings.HOST}:{port}")
    ctx = make_context(settings)
    upgrade(ctx.db)
    password = ensure_first_admin(ctx)
    ctx.close()
    processes = start_background(settings)
    url = f"http://{settings.HOST}:{settings.PORT}/"
    print(f"\n  alertd is running at {url}", flush=True)
    print(f"  database: {settings.database_url}\n  broker:   {settings.broker_url}", flush=True)
    if password:
        print(
            f"  log in as 'admin' with password: {password}  (shown once; create officers "
            "and supervisors under Users)",
            flush=True,
        )
    else:
        print(
            "  log in with an existing account; create one with "
            "`alertd users create NAME --role ROLE`",
            flush=True,
        )
    print("  press Ctrl-C to stop\n", flush=True)
    # A plain kill must stop the worker and scheduler too, not leave them running orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        return serve_web(settings)
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(processes)
