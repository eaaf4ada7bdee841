"""A channel owns its routes, navigation entries and API paths: the web app serves them, the
console links them and the OpenAPI document lists them only while the channel is enabled."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from alertd.accounts.services import create_token
from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Alert
from alertd.broker import RecordingPublisher
from alertd.channels.cap.models import CapDocument
from alertd.context import Context
from tests.support.factories import PASSWORD, alert_body
from tests.support.tasks import run_pending_tasks

SMS_PAGES = ("/sms/subscribers", "/sms/texts", "/sms/alerts/1")
SMS_API = ("/api/v1/subscribers", "/api/v1/subscribers/1")
TWILIO = ("/twilio/inbound", "/twilio/status/1")


def _token(ctx: Context, actor: Actor) -> dict[str, str]:
    with ctx.db.transaction() as session:
        return {"Authorization": f"Bearer {create_token(session, actor.username, 't').token}"}


def _nav(client: FlaskClient) -> str:
    page = client.get("/").get_data(as_text=True)
    return page[page.index('<nav aria-label="Main">') : page.index("</nav>")]


def test_with_the_sms_channel_disabled_its_routes_links_and_api_paths_are_gone(
    client: FlaskClient, ctx: Context, operator: Actor
) -> None:
    assert "sms" not in ctx.channels.names()
    client.post("/login", data={"username": operator.username, "password": PASSWORD})
    assert 'href="/sms/' not in _nav(client) and ">SMS<" not in _nav(client)
    for path in SMS_PAGES:
        assert client.get(path).status_code == 404, path
    for path in SMS_API:
        assert client.get(path, headers=_token(ctx, operator)).status_code == 404, path
    for path in TWILIO:
        assert client.post(path).status_code == 404, path
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert not [p for p in paths if p.startswith("/api/v1/subscribers")]
    assert "/api/v1/alerts" in paths


@pytest.mark.channels("log", "sms")
def test_with_the_sms_channel_enabled_they_are_there(
    client: FlaskClient, ctx: Context, operator: Actor, officer: Actor
) -> None:
    client.post("/login", data={"username": operator.username, "password": PASSWORD})
    assert '<a href="/sms/subscribers">SMS</a>' in _nav(client)
    assert client.get("/sms/subscribers").status_code == 200
    assert client.get("/api/v1/subscribers", headers=_token(ctx, operator)).status_code == 200
    # Twilio's callbacks are there, and refuse an unsigned request.
    assert client.post("/twilio/inbound").status_code == 403
    doc = client.get("/api/v1/openapi.json").get_json()
    assert {"get", "post"} <= set(doc["paths"]["/api/v1/subscribers"])
    assert "Subscriber" in doc["components"]["schemas"]
    # The link is there only for a role that may open the page.
    client.post("/logout")
    client.post("/login", data={"username": officer.username, "password": PASSWORD})
    assert ">SMS<" not in _nav(client)


@pytest.mark.channels("log", "webhook")
def test_the_webhook_channel_brings_its_own_and_not_the_sms_channels(
    client: FlaskClient, ctx: Context, operator: Actor
) -> None:
    client.post("/login", data={"username": operator.username, "password": PASSWORD})
    nav = _nav(client)
    assert '<a href="/webhooks/">Webhooks</a>' in nav and ">SMS<" not in nav
    assert client.get("/webhooks/").status_code == 200
    assert client.get("/sms/subscribers").status_code == 404
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "/api/v1/endpoints" in paths and "/api/v1/subscribers" not in paths


def _published(
    ctx: Context, publisher: RecordingPublisher, officer: Actor, supervisor: Actor
) -> Alert:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    approved = services.approve_alert(ctx, alert.id, by=supervisor)
    run_pending_tasks(ctx, publisher)
    return approved


@pytest.mark.channels("cap", "log")
def test_the_cap_channel_brings_its_document_links_to_the_public_page_and_versions_table(
    client: FlaskClient,
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
) -> None:
    alert = _published(ctx, publisher, officer, supervisor)
    with ctx.db.session() as session:
        identifier = session.execute(
            select(CapDocument.identifier).where(CapDocument.alert_id == alert.id)
        ).scalar_one()
    path = f"/cap/{quote(identifier, safe='@.-_~+')}.xml"
    page = client.get(f"/a/{alert.public_id}").get_data(as_text=True)
    assert f'<link rel="alternate" type="application/cap+xml" href="{path}">' in page
    assert f'<a href="{path}">CAP message</a>' in page
    # In the page's language, from the catalogue (the factory's alert carries es-US).
    spanish = client.get(f"/a/{alert.public_id}?lang=es-US").get_data(as_text=True)
    assert f'<a href="{path}">Mensaje CAP</a>' in spanish
    client.post("/login", data={"username": supervisor.username, "password": PASSWORD})
    show = client.get(f"/alerts/{alert.id}").get_data(as_text=True)
    assert "<th>Channels</th>" in show
    assert ">CAP: published</a>" in show


def test_without_the_cap_channel_neither_page_links_a_cap_document(
    client: FlaskClient,
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
) -> None:
    alert = _published(ctx, publisher, officer, supervisor)
    page = client.get(f"/a/{alert.public_id}").get_data(as_text=True)
    assert "application/cap+xml" not in page and "CAP message" not in page
    client.post("/login", data={"username": supervisor.username, "password": PASSWORD})
    assert "CAP:" not in client.get(f"/alerts/{alert.id}").get_data(as_text=True)
