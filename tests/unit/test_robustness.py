"""One failing part must not take others with it (issue 6 item 7): a sweep step that raises is
logged and the sweep goes on; a failing after-commit hook leaves the committed decision standing
and never becomes an error (a 500) for the caller."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

import alertd.sweeper as sweeper
from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import ACTIVE, Alert
from alertd.broker import RecordingPublisher
from alertd.context import Context
from alertd.db import after_commit
from alertd.outbox.models import OutboxMessage
from tests.support.factories import PASSWORD, alert_body


def _boom(*_: object, **__: object) -> int:
    raise RuntimeError("a step's bug")


def test_a_failing_sweep_step_is_logged_and_the_others_still_run(
    ctx: Context, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []
    monkeypatch.setattr(sweeper, "due_for_expiry", _boom)
    monkeypatch.setattr(sweeper, "relay", _boom)
    monkeypatch.setattr(sweeper, "reclaim_expired_leases", lambda _ctx: ran.append("reclaim"))
    monkeypatch.setattr(sweeper, "resume_stalled", lambda _ctx: ran.append("resume"))
    monkeypatch.setattr(sweeper, "purge_old_keys", lambda _ctx: ran.append("purge"))
    report = sweeper.sweep(ctx, holder="test")
    assert report is not None
    assert ran == ["reclaim", "resume", "purge"]
    assert "sweep step relay failed" in caplog.text
    assert "sweep step due_for_expiry failed" in caplog.text
    # The lock was released: the next sweep runs.
    assert sweeper.sweep(ctx, holder="another") is not None


def test_a_failing_after_commit_hook_leaves_the_commit_standing(ctx: Context) -> None:
    with ctx.db.transaction() as session:
        session.add(OutboxMessage(task="t", payload={}))
        after_commit(session, lambda: _boom())
    with ctx.db.session() as session:
        assert session.execute(select(OutboxMessage)).scalars().all()


class FailingPublisher(RecordingPublisher):
    def send(self, task_name: str, args: list[object]) -> bool:
        raise RuntimeError("publisher bug")


def test_an_approval_whose_publish_hook_fails_is_still_approved_not_a_500(
    ctx: Context, client: FlaskClient, officer: Actor, supervisor: Actor
) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    ctx.publisher = FailingPublisher(ctx.settings)
    client.post("/login", data={"username": supervisor.username, "password": PASSWORD})
    response = client.post(f"/alerts/{alert.id}/approve", data={})
    assert response.status_code < 500, response.get_data(as_text=True)
    with ctx.db.session() as session:
        assert session.get(Alert, alert.id).state == ACTIVE  # type: ignore[union-attr]
