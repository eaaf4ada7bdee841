"""An officer discards their own draft, from the console or the API: audited, kept for the
record, off the list. Another officer's draft, a submitted alert and a supervisor are refused,
and a refusal changes nothing."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from alertd.accounts.services import create_token
from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Alert
from alertd.audit.models import AuditEntry
from alertd.context import Context
from alertd.errors import ServiceError
from tests.functional.test_console import login
from tests.support.factories import alert_body


def _state(ctx: Context, alert_id: int) -> tuple[str, dict[str, object]]:
    with ctx.db.session() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        return alert.state, dict(alert.content)


def _audits(ctx: Context, alert_id: int) -> list[tuple[str, str, str]]:
    with ctx.db.session() as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.outcome, AuditEntry.actor_name)
            .where(AuditEntry.target_id == str(alert_id), AuditEntry.action == "alert.discard")
            .order_by(AuditEntry.id)
        ).all()
    return [tuple(r) for r in rows]


def test_an_officer_discards_their_own_draft_from_its_page(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    login(client, "officer1")
    page = client.get(f"/alerts/{alert.id}").text
    assert f'action="/alerts/{alert.id}/discard"' in page
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page)
    assert key

    first = client.post(f"/alerts/{alert.id}/discard", data={"idempotency_key": key.group(1)})
    again = client.post(f"/alerts/{alert.id}/discard", data={"idempotency_key": key.group(1)})

    assert first.status_code == again.status_code == 302
    assert _state(ctx, alert.id)[0] == "discarded"
    assert _audits(ctx, alert.id) == [("alert.discard", "ok", "officer1")]
    shown = client.get(first.headers["Location"]).text
    assert "Draft discarded." in shown
    assert f'action="/alerts/{alert.id}/discard"' not in shown
    # Off the list unless asked for.
    assert f'href="/alerts/{alert.id}"' not in client.get("/").text
    assert f'href="/alerts/{alert.id}"' in client.get("/?state=discarded").text


def test_another_officers_draft_cannot_be_discarded_and_nothing_changes(
    client: FlaskClient, ctx: Context, officer: Actor, officer2: Actor
) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    before = _state(ctx, alert.id)
    login(client, "officer2")
    assert f'action="/alerts/{alert.id}/discard"' not in client.get(f"/alerts/{alert.id}").text

    response = client.post(f"/alerts/{alert.id}/discard", data={})

    assert response.status_code == 403
    assert "Only the officer who raised a draft may discard it." in response.text
    assert _state(ctx, alert.id) == before
    assert _audits(ctx, alert.id) == [("alert.discard", "refused", "officer2")]


def test_a_submitted_alert_cannot_be_discarded(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    login(client, "officer1")
    assert f'action="/alerts/{alert.id}/discard"' not in client.get(f"/alerts/{alert.id}").text

    response = client.post(f"/alerts/{alert.id}/discard", data={})

    assert response.status_code == 409
    assert _state(ctx, alert.id)[0] == "pending"
    assert _audits(ctx, alert.id) == [("alert.discard", "refused", "officer1")]


def test_a_supervisor_may_not_discard_a_draft(
    client: FlaskClient, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    login(client, "supervisor1")

    response = client.post(f"/alerts/{alert.id}/discard", data={})

    assert response.status_code == 403
    assert _state(ctx, alert.id)[0] == "draft"
    assert _audits(ctx, alert.id) == [("alert.discard", "refused", "supervisor1")]


def test_a_discarded_draft_cannot_be_edited_or_submitted(ctx: Context, officer: Actor) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.discard_draft(ctx, alert.id, by=officer)

    with pytest.raises(ServiceError) as submitted:
        services.submit_alert(ctx, alert.id, by=officer)
    with pytest.raises(ServiceError) as edited:
        services.edit_alert(ctx, alert.id, alert_body(), by=officer)

    assert submitted.value.status == edited.value.status == 409
    assert _state(ctx, alert.id)[0] == "discarded"


def _token(ctx: Context, actor: Actor) -> dict[str, str]:
    with ctx.db.transaction() as session:
        token = create_token(session, actor.username, "cad").token
    return {"Authorization": f"Bearer {token}"}


def test_an_officer_discards_their_own_draft_through_the_api(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    headers = _token(ctx, officer) | {"Idempotency-Key": "discard-1"}

    first = client.post(f"/api/v1/alerts/{alert.id}/discard", headers=headers)
    again = client.post(f"/api/v1/alerts/{alert.id}/discard", headers=headers)

    assert first.status_code == again.status_code == 200, first.get_json()
    assert first.get_json()["state"] == "discarded"
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert _state(ctx, alert.id)[0] == "discarded"
    assert _audits(ctx, alert.id) == [("alert.discard", "ok", "officer1")]


def test_the_api_refuses_another_officers_draft_and_nothing_changes(
    client: FlaskClient, ctx: Context, officer: Actor, officer2: Actor, supervisor: Actor
) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    before = _state(ctx, alert.id)

    other = client.post(f"/api/v1/alerts/{alert.id}/discard", headers=_token(ctx, officer2))
    boss = client.post(f"/api/v1/alerts/{alert.id}/discard", headers=_token(ctx, supervisor))
    missing = client.post("/api/v1/alerts/999999/discard", headers=_token(ctx, officer))

    assert other.status_code == boss.status_code == 403
    assert "Only the officer who raised a draft may discard it." in other.get_json()["message"]
    assert missing.status_code == 404
    assert _state(ctx, alert.id) == before
    assert _audits(ctx, alert.id) == [
        ("alert.discard", "refused", "officer2"),
        ("alert.discard", "refused", "supervisor1"),
    ]


def test_the_api_refuses_to_discard_a_submitted_alert_and_nothing_changes(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    before = _state(ctx, alert.id)

    response = client.post(f"/api/v1/alerts/{alert.id}/discard", headers=_token(ctx, officer))

    assert response.status_code == 409
    assert response.get_json()["error"] == "conflict"
    assert _state(ctx, alert.id) == before == ("pending", before[1])
    assert _audits(ctx, alert.id) == [("alert.discard", "refused", "officer1")]
