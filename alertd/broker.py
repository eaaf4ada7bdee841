"""The one seam between the domain and Celery: building the Celery app from settings, and
sending a task by name. ``alertd`` never imports ``workers``."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

import config.celery as celery_config
from alertd.settings import Settings

log = logging.getLogger(__name__)

# The embedded broker polls its folder; 50 ms keeps dispatch well under the one-second budget
# at the cost of a few idle wake-ups a second.
EMBEDDED_POLL_SECONDS = 0.01


def transport_options(settings: Settings) -> dict[str, Any]:
    if settings.embedded_broker:
        queue = settings.broker_folder / "queue"
        (settings.broker_folder / "control").mkdir(parents=True, exist_ok=True)
        queue.mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(queue),
            "data_folder_out": str(queue),
            "control_folder": str(settings.broker_folder / "control"),
            "polling_interval": EMBEDDED_POLL_SECONDS,
        }
    timeout = settings.PUBLISH_TIMEOUT_SECONDS
    return {
        # Unacknowledged tasks come back after this; every delay is kept well under it.
        "visibility_timeout": settings.VISIBILITY_TIMEOUT_SECONDS,
        "socket_timeout": max(timeout, 5.0),
        "socket_connect_timeout": timeout,
        "max_retries": 0,
    }


def make_celery(settings: Settings, main: str = "alertd") -> Celery:
    app = Celery(main, set_as_current=False)
    app.config_from_object(celery_config)
    app.conf.broker_url = settings.broker_url
    app.conf.broker_transport_options = transport_options(settings)
    app.conf.broker_connection_timeout = settings.PUBLISH_TIMEOUT_SECONDS
    app.conf.alertd_settings = settings
    return app


class Publisher:
    """Sends tasks by name. Failing to publish is logged and left to the outbox relay."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._app: Celery | None = None

    @property
    def app(self) -> Celery:
        if self._app is None:
            self._app = make_celery(self.settings, main="alertd-producer")
        return self._app

    def send(self, task_name: str, args: list[Any]) -> bool:
        try:
            self.app.send_task(task_name, args=args, retry=False)
        except Exception:  # The broker is a fast path; the database relay is the safe path.
            log.warning(
                "could not publish %s%r; the relay will retry", task_name, args, exc_info=True
            )
            return False
        return True


class RecordingPublisher(Publisher):
    """Keeps what would have been sent; for unit tests that run no broker."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.sent: list[tuple[str, list[Any]]] = []

    def send(self, task_name: str, args: list[Any]) -> bool:
        self.sent.append((task_name, list(args)))
        return True
