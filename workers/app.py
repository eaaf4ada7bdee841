"""The Celery app. Start a worker with ``celery -A workers.app worker`` and the scheduler with
``celery -A workers.app beat``; the Procfile does both."""

from __future__ import annotations

import logging

from alertd.broker import make_celery
from alertd.settings import load_settings
from workers.schedule import beat_schedule

settings = load_settings()
app = make_celery(settings)
app.conf.include = ["workers.tasks"]
app.conf.beat_schedule = beat_schedule(settings)
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
