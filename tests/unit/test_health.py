"""`alertd health` tells from outside whether workers are taking work."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alertd.cli import main
from alertd.context import Context
from alertd.db import utcnow
from alertd.health import backlog
from alertd.outbox.models import OutboxMessage


@pytest.fixture
def cli_env(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> Context:
    monkeypatch.setenv("ALERTD_DATABASE_URL", ctx.settings.database_url)
    monkeypatch.setenv("ALERTD_INSTANCE_PATH", str(ctx.settings.instance_path))
    return ctx


def test_an_idle_system_is_healthy(cli_env: Context) -> None:
    assert main(["health"]) == 0


def test_an_outbox_row_nobody_took_for_two_minutes_is_unhealthy(
    cli_env: Context, capsys: pytest.CaptureFixture[str]
) -> None:
    with cli_env.db.transaction() as session:
        session.add(
            OutboxMessage(
                task="alertd.dispatch_version",
                payload={"version_id": 1},
                created_at=utcnow() - timedelta(minutes=2),
            )
        )

    assert main(["health", "--max-age", "60"]) == 1
    assert "UNHEALTHY" in capsys.readouterr().err
    assert backlog(cli_env).oldest_untaken_outbox_seconds >= 119
