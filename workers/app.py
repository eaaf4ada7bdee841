"""The Celery app. Start a worker with ``celery -A workers.app worker`` and the scheduler with
``celery -A workers.app beat``; the Procfile does both."""

from __future__ import annotations

from typing import Any

from celery.signals import beat_init, setup_logging, worker_ready

from alertd.broker import make_celery
from alertd.observe.logs import configure_logging
from alertd.serve import READY_FILES
from alertd.settings import load_settings
from workers.schedule import beat_schedule

settings = load_settings()
app = make_celery(settings)
app.conf.include = ["workers.tasks"]
app.conf.beat_schedule = beat_schedule(settings)


@setup_logging.connect
def _logging(loglevel: Any = None, **_: Any) -> None:
    # Connected, this replaces Celery's own logging set-up: JSON lines with the ids of the
    # alert, version and delivery a line is about.
    configure_logging(settings.LOG_FORMAT, loglevel or "INFO")


def _started(kind: str) -> None:
    marker = settings.instance_path / READY_FILES[kind]
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


@worker_ready.connect
def _worker_ready(**_: Any) -> None:
    _started("worker")


@beat_init.connect
def _beat_started(**_: Any) -> None:
    _started("beat")
