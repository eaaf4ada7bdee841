"""Fixtures for webhook tests with real processes: the webhook channel only, loopback allowed,
a Celery worker (concurrency 2) and beat on the test's private Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from alertd.actor import Actor
from alertd.context import Context
from tests.support.factories import make_actor
from tests.support.processes import CeleryProcess

WEBHOOK_SETTINGS = {
    "CHANNELS": "webhook",
    "WEBHOOK_ALLOW": "127.0.0.1/32",
    "WEBHOOK_HTTPS_ONLY": "false",
    "WEBHOOK_READ_SECONDS": "3",
}


@pytest.fixture
def webhook_ctx(live_ctx: Context) -> Iterator[Context]:
    live_ctx.settings = live_ctx.settings.with_overrides(
        CHANNELS="webhook", WEBHOOK_ALLOW="127.0.0.1/32", WEBHOOK_HTTPS_ONLY=False
    )
    yield live_ctx


@pytest.fixture
def webhook_workers(
    start_celery: Callable[..., CeleryProcess], worker_env: dict[str, str], tmp_path: Path
) -> list[CeleryProcess]:
    env = worker_env | {f"ALERTD_{k}": v for k, v in WEBHOOK_SETTINGS.items()}
    # Beat keeps its schedule state in the test's folder, not in the checkout.
    schedule = f"--schedule={tmp_path / 'celerybeat-schedule'}"
    return [
        start_celery("worker", "--concurrency=2", env=env),
        start_celery("beat", schedule, env=env),
    ]


@pytest.fixture
def webhook_people(webhook_ctx: Context) -> tuple[Actor, Actor, Actor]:
    return (
        make_actor(webhook_ctx, "off", "officer"),
        make_actor(webhook_ctx, "sup", "supervisor"),
        make_actor(webhook_ctx, "ops", "operator"),
    )
