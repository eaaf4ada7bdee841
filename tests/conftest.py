"""Fixtures chain: settings -> ctx (database, recording publisher) -> app -> client; actors and
alert bodies come from tests.support.factories."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from alertd.actor import Actor
from alertd.broker import RecordingPublisher
from alertd.context import Context, make_context
from alertd.settings import Settings, load_settings
from alertd.web.app import create_app
from tests.support.database import database_url, empty_tables, reset_schema
from tests.support.factories import make_actor

# Real processes (redis-server, Celery worker and beat) for tests/integration and tests/faults.
pytest_plugins = ["tests.support.live", "tests.support.webhook_live"]


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = database_url(tmp_path_factory.mktemp("db"))
    reset_schema(url)
    return url


@pytest.fixture
def settings(tmp_path: Path, db_url: str, request: pytest.FixtureRequest) -> Settings:
    # Only the log channel unless a test asks for more with @pytest.mark.channels("sms", ...):
    # a channel's pages, API and navigation links exist only while it is enabled.
    marker = request.node.get_closest_marker("channels")
    return load_settings(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": db_url,
            "SECRET_KEY": "test-secret-key",
            "CHANNELS": ",".join(marker.args) if marker else "log",
            "PUBLIC_URL": "http://alertd.test",
            # Tests read counts right after changing them.
            "PROGRESS_CACHE_SECONDS": 0,
        },
        environ={},
    )


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    context = make_context(settings, RecordingPublisher(settings))
    empty_tables(context.db)
    yield context
    context.close()


@pytest.fixture
def publisher(ctx: Context) -> RecordingPublisher:
    assert isinstance(ctx.publisher, RecordingPublisher)
    return ctx.publisher


@pytest.fixture
def app(ctx: Context) -> Flask:
    return create_app(context=ctx, test_config={"TESTING": True, "WTF_CSRF_ENABLED": False})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def officer(ctx: Context) -> Actor:
    return make_actor(ctx, "officer1", "officer")


@pytest.fixture
def officer2(ctx: Context) -> Actor:
    return make_actor(ctx, "officer2", "officer")


@pytest.fixture
def supervisor(ctx: Context) -> Actor:
    return make_actor(ctx, "supervisor1", "supervisor")


@pytest.fixture
def operator(ctx: Context) -> Actor:
    return make_actor(ctx, "operator1", "operator")


@pytest.fixture
def admin(ctx: Context) -> Actor:
    return make_actor(ctx, "admin1", "admin")


def pytest_report_header(config: Any) -> str:
    from tests.support.database import POSTGRES_URL

    return f"alertd test database: {'PostgreSQL' if POSTGRES_URL else 'SQLite'}"


SERVER_MARKERS = ("redis", "postgres", "browser")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Where servers are required (CI), a test that needs one and skipped has failed."""
    outcome = yield
    report = outcome.get_result()
    if (
        report.skipped
        and os.environ.get("ALERTD_REQUIRE_SERVERS")
        and any(item.get_closest_marker(m) for m in SERVER_MARKERS)
    ):
        report.outcome = "failed"
        report.longrepr = f"skipped, but servers are required here: {report.longrepr}"
