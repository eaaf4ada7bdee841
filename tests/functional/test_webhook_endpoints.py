"""Webhook endpoints through the API, the console and the CLI: the same service, the same
refusals (SSRF reasons included), the secret shown once."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from alertd import cli
from alertd.accounts.services import create_token
from alertd.actor import Actor
from alertd.context import Context
from tests.support.factories import PASSWORD


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
