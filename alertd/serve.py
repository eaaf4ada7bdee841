"""``alertd serve``: the whole dispatcher in one command — web, worker and scheduler — on the
embedded default (SQLite and a SQLite-file broker) or on whatever the settings name."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from alertd.accounts.services import ensure_first_admin
from alertd.context import make_context
from alertd.health import backlog
from alertd.observe.logs import configure_logging
from alertd.observe.views import MULTIPROC_ENV
from alertd.schema import upgrade
from alertd.settings import PREFIX, REPO_ROOT, Settings, local_url
from alertd.supervise import STOP_GRACE_SECONDS, Supervisor

WEB_THREADS = 8
# The worker and the scheduler touch these when they have started (workers/app.py); the
# banner waits for both, so their start-up lines come before it.
READY_FILES = {"worker": "worker-ready", "beat": "beat-ready"}
READY_WAIT_SECONDS = 30.0
# Stands for the beat schedule file's path in the command, filled in from the settings.
BEAT_SCHEDULE = "{schedule}"


log = logging.getLogger(__name__)

# After the children's grace period, how long serve may take to finish stopping before the
# watchdog ends it.
STOP_HEADROOM_SECONDS = 15.0


def _force_exit(supervisor: Supervisor) -> None:
    log.error("serve did not stop in time; killing the worker and the scheduler and exiting")
    supervisor.kill_all()
    os._exit(1)


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


def background_commands() -> dict[str, list[str]]:
    """The Celery worker and Celery beat, as ``serve`` runs them."""
    celery = [sys.executable, "-m", "celery", "-A", "workers.app"]
    worker = [
        *celery,
        "worker",
        # Warnings and up: at INFO every sweep writes three lines and the banner scrolls away.
        "--loglevel=WARNING",
        "--concurrency=2",
        "-Q",
        "alertd",
        "--hostname=alertd@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    beat = [*celery, "beat", "--loglevel=WARNING", "--schedule", BEAT_SCHEDULE]
    return {"worker": worker, "beat": beat}


def serve_web(
    settings: Settings,
    *,
    port: int | None = None,
    host: str | None = None,
    listening: Callable[[], None] | None = None,
) -> int:
    """Serve the web app with waitress; ``listening`` runs once the port is bound."""
    import waitress

    from alertd.web.app import create_app

    settings = replace(settings, PORT=port or settings.PORT, HOST=host or settings.HOST)
    configure_logging(settings.LOG_FORMAT)
    server = waitress.create_server(
        create_app(settings),
        host=settings.HOST,
        port=settings.PORT,
        threads=WEB_THREADS,
        ident="alertd",
    )
    server.print_listen("Serving on http://{}:{}")
    if listening is not None:
        listening()
    server.run()
    return 0


def _metrics_folder(settings: Settings) -> None:
    """One folder for every process's metrics (prometheus-client multiprocess mode), emptied
    at each start: figures of processes from an earlier run are not this run's."""
    if os.environ.get(MULTIPROC_ENV):
        return
    folder = settings.instance_path / "metrics"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(folder)


def _wait_until_ready(markers: list[Path], processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + READY_WAIT_SECONDS
    while not all(m.exists() for m in markers) and time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            return
        time.sleep(0.1)


def banner(url: str, password: str | None, settings: Settings) -> str:
    """The lines an operator must not miss, in a box, printed after the start-up noise."""
    lines = [f"alertd is running at {url}", ""]
    if password:
        lines += [
            f"log in as 'admin' with password: {password}",
            "(shown once; create officers and supervisors under Users)",
        ]
    else:
        lines += [
            "log in with an existing account; create one with",
            "alertd users create NAME --role ROLE",
        ]
    lines += [
        "",
        f"database: {settings.database_url}",
        f"broker:   {settings.broker_url}",
        f"metrics:  {url}metrics",
        "press Ctrl-C to stop",
    ]
    width = max(len(line) for line in lines)
    rule = "═" * (width + 2)
    body = [f"║ {line.ljust(width)} ║" for line in lines]
    return "\n".join(["", f"╔{rule}╗", *body, f"╚{rule}╝", ""])


def serve(settings: Settings, *, port: int | None = None, host: str | None = None) -> int:
    public_url_set = PREFIX + "PUBLIC_URL" in os.environ
    settings = replace(settings, PORT=port or settings.PORT, HOST=host or settings.HOST)
    if not public_url_set:
        settings = replace(settings, PUBLIC_URL=local_url(settings.HOST, settings.PORT))
    configure_logging(settings.LOG_FORMAT)
    _metrics_folder(settings)
    ctx = make_context(settings)
    upgrade(ctx.db)
    password = ensure_first_admin(ctx.db)
    ctx.close()
    markers = [settings.instance_path / name for name in READY_FILES.values()]
    for marker in markers:
        marker.unlink(missing_ok=True)
    commands = background_commands()
    commands["beat"] = [
        str(settings.instance_path / "celerybeat-schedule") if part == BEAT_SCHEDULE else part
        for part in commands["beat"]
    ]
    watch_ctx = make_context(settings)
    supervisor = Supervisor(
        commands,
        env=_child_environment(settings),
        cwd=REPO_ROOT,
        stalled_for=lambda: backlog(watch_ctx).oldest_untaken_seconds,
        stall_seconds=settings.STALL_SECONDS,
    )
    # A plain kill must stop the worker and scheduler too, not leave them running orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Ctrl-C must stop serve even when it was started from a shell that ignores SIGINT for
    # its background jobs (a CI runner, a script's `&`): Python keeps an inherited SIG_IGN.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        supervisor.start()
        _wait_until_ready(markers, supervisor.processes)
        supervisor.watch()
        url = f"{local_url(settings.HOST, settings.PORT)}/"
        return serve_web(
            settings, listening=lambda: print(banner(url, password, settings), flush=True)
        )
    except KeyboardInterrupt:
        return 0
    finally:
        # More Ctrl-Cs must not interrupt the stopping: it ends in SIGKILL for a wedged child.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Whatever stopping meets (a child that will not die, a thread that will not end),
        # serve ends within a bound: a daemon timer kills every child and exits the process.
        watchdog = threading.Timer(
            STOP_GRACE_SECONDS + STOP_HEADROOM_SECONDS, _force_exit, [supervisor]
        )
        watchdog.daemon = True
        watchdog.start()
        supervisor.stop()
        watch_ctx.close()
