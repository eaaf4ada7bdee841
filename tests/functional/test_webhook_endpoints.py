"""Webhook endpoints through the API, the console and the CLI: the same service, the same
refusals (SSRF reasons included), the secret shown once."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from alertd import cli
from alertd.accounts.services import create_token
from alertd.actor import Actor
from alertd.alerts import services
from alertd.broker import RecordingPublisher
from alertd.channels.models import Delivery
from alertd.channels.webhooks import services as webhooks
from alertd.context import Context
from tests.support.factories import PASSWORD, alert_body
from tests.support.tasks import run_pending_tasks
from tests.support.webhook_receivers import Receiver, Script, running

# The endpoint pages and API are the webhook channel's: served only while it is enabled.
pytestmark = pytest.mark.channels("webhook")


@pytest.fixture
def local_ctx(ctx: Context) -> Context:
    ctx.settings = ctx.settings.with_overrides(
        WEBHOOK_ALLOW="127.0.0.1/32", WEBHOOK_HTTPS_ONLY=False
    )
    return ctx


def _headers(ctx: Context, actor: Actor) -> dict[str, str]:
    with ctx.db.transaction() as session:
        return {"Authorization": f"Bearer {create_token(session, actor.username, 't').token}"}


def test_api_add_list_rotate_disable(
    local_ctx: Context, client: FlaskClient, operator: Actor, officer: Actor
) -> None:
    h = _headers(local_ctx, operator)
    refused = client.post("/api/v1/endpoints", json={"url": "http://10.0.0.1/x"}, headers=h)
    assert refused.status_code == 400
    assert "private address" in refused.json["fields"]["url"]
    not_https = client.post(
        "/api/v1/endpoints", json={"url": "http://[::ffff:127.0.0.1]/x"}, headers=h
    )
    assert "inside IPv6" in not_https.json["fields"]["url"]
    bad = client.post(
        "/api/v1/endpoints",
        json={"url": "http://127.0.0.1:9/x", "events": ["alert.eaten"], "format": "fax"},
        headers=h,
    )
    assert set(bad.json["fields"]) == {"events", "format"}

    created = client.post(
        "/api/v1/endpoints",
        json={"url": "http://127.0.0.1:9/x", "description": "newsroom"},
        headers=h,
    )
    assert created.status_code == 201 and created.json["secret"].startswith("whsec_")
    endpoint_id = created.json["id"]
    listed = client.get("/api/v1/endpoints", headers=h).json["endpoints"]
    assert [e["id"] for e in listed] == [endpoint_id] and "secret" not in listed[0]
    assert listed[0]["circuit"] == "closed"

    rotated = client.post(f"/api/v1/endpoints/{endpoint_id}/rotate-secret", headers=h).json
    assert rotated["secret"] != created.json["secret"] and rotated["rotating"] is True
    disabled = client.post(
        f"/api/v1/endpoints/{endpoint_id}/disable", json={"reason": "partner asked"}, headers=h
    ).json
    assert disabled["enabled"] is False and disabled["disabled_reason"] == "partner asked"
    assert client.get(f"/api/v1/endpoints/{endpoint_id}/attempts", headers=h).json == {
        "attempts": []
    }
    assert client.post(f"/api/v1/endpoints/{endpoint_id}/replay", headers=h).json == {"replayed": 0}

    officer_h = _headers(local_ctx, officer)
    assert client.get("/api/v1/endpoints", headers=officer_h).status_code == 403
    assert (
        client.post(
            "/api/v1/endpoints", json={"url": "http://127.0.0.1:9/y"}, headers=officer_h
        ).status_code
        == 403
    )
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert (
        "/api/v1/endpoints" in paths and "/api/v1/webhook-deliveries/{delivery_id}/replay" in paths
    )


def test_console_add_shows_the_secret_once(
    local_ctx: Context, client: FlaskClient, operator: Actor
) -> None:
    client.post("/login", data={"username": operator.username, "password": PASSWORD})
    page = client.post(
        "/webhooks/",
        data={"url": "https://10.9.8.7/x", "events": ["alert.published"], "format": "slack"},
    )
    assert page.status_code == 400 and b"private address" in page.data
    page = client.post(
        "/webhooks/",
        data={"url": "http://127.0.0.1:9/x", "events": ["alert.published"], "format": "slack"},
    )
    assert page.status_code == 200 and b"whsec_" in page.data
    listing = client.get("/webhooks/")
    assert b"127.0.0.1:9/x" in listing.data and b"whsec_" not in listing.data
    detail = client.get("/webhooks/1")
    assert b"Delivery log" in detail.data and b"whsec_" not in detail.data
    assert client.post("/webhooks/1/disable").status_code == 302
    assert b"disabled" in client.get("/webhooks/1").data


def test_cli_add_list_disable(
    local_ctx: Context,
    operator: Actor,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    settings = local_ctx.settings
    for name, value in (
        ("DATABASE_URL", settings.database_url),
        ("INSTANCE_PATH", str(settings.instance_path)),
        ("SECRET_KEY", settings.SECRET_KEY),
        ("WEBHOOK_ALLOW", "127.0.0.1/32"),
        ("WEBHOOK_HTTPS_ONLY", "false"),
    ):
        monkeypatch.setenv(f"ALERTD_{name}", value)
    assert cli.main(["endpoints", "add", "http://10.1.1.1/x", "--as", operator.username]) == 2
    assert "private address" in capsys.readouterr().err
    assert (
        cli.main(
            [
                "endpoints",
                "add",
                "http://127.0.0.1:9/x",
                "--as",
                operator.username,
                "--event",
                "alert.cancelled",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "whsec_" in out
    assert cli.main(["endpoints", "disable", "1", "--as", operator.username]) == 0
    cli.main(["endpoints", "list"])
    listed = capsys.readouterr().out
    assert "disabled" in listed and "whsec_" not in listed


def test_console_delivery_log_and_replay_one(
    local_ctx: Context,
    client: FlaskClient,
    operator: Actor,
    officer: Actor,
    supervisor: Actor,
    publisher: RecordingPublisher,
) -> None:
    local_ctx.settings = local_ctx.settings.with_overrides(CHANNELS="webhook")
    with running(Receiver()) as receiver:
        receiver.respond = Script([(400, {}, b"no such channel"), (200, {}, b"ok")])
        endpoint = webhooks.add_endpoint(local_ctx, {"url": receiver.url}, by=operator).endpoint
        alert = services.create_alert(local_ctx, alert_body(), by=officer)
        services.submit_alert(local_ctx, alert.id, by=officer)
        services.approve_alert(local_ctx, alert.id, by=supervisor)
        run_pending_tasks(local_ctx, publisher)
        client.post("/login", data={"username": operator.username, "password": PASSWORD})
        # The channel's line in the alert page's progress, linking its delivery log.
        page = client.get(f"/alerts/{alert.id}").get_data(as_text=True)
        assert "1 request to partners" in page
        assert f'href="/webhooks/alerts/{alert.id}"' in page
        log = client.get(f"/webhooks/alerts/{alert.id}").data
        assert b"400" in log and b"no such channel" in log
        page = client.get(f"/webhooks/{endpoint.id}").data
        assert b"Dead letters" in page and b"Replay" in page
        with local_ctx.db.session() as session:
            [delivery_id] = session.execute(select(Delivery.id)).scalars().all()
        replayed = client.post(
            f"/webhooks/deliveries/{delivery_id}/replay", data={"endpoint_id": endpoint.id}
        )
        assert replayed.status_code == 302
        run_pending_tasks(local_ctx, publisher)
        assert [s.headers["webhook-id"] for s in receiver.requests()] == [str(delivery_id)] * 2
    assert b"No failed deliveries" in client.get(f"/webhooks/{endpoint.id}").data
