"""Bad input is refused, never guessed: malformed and deeply nested JSON on every API write, 405
with Allow, null for absent times, and the console's own error pages."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from alertd.accounts.services import create_token
from alertd.actor import Actor
from alertd.context import Context
from config import defaults
from tests.support.factories import PASSWORD, alert_body

# Every API write of the default channel set, the channels' own (endpoints, subscribers) too.
pytestmark = pytest.mark.channels(*defaults.CHANNELS.split(","))


@pytest.fixture
def headers(ctx: Context, admin: Actor) -> dict[str, str]:
    # An admin's token: it passes authentication everywhere, so the body is what is judged.
    with ctx.db.transaction() as session:
        return {"Authorization": f"Bearer {create_token(session, 'admin1', 't').token}"}


def _writes(app: Flask) -> list[tuple[str, str]]:
    """Every API route that takes a body, with sample path arguments filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        for method in sorted((rule.methods or set()) & {"POST", "PUT", "PATCH"}):
            path = re.sub(r"<(?:int:)?(\w+)>", "1", rule.rule)
            path = re.sub(r"<any\(([\w, ]+)\):\w+>", lambda m: m.group(1).split(",")[0], path)
            found.append((method, path))
    assert len(found) >= 12
    return found


BAD_BODIES = {
    "malformed": b'{"reason": "oops",',
    "truncated": b"{",
    "not an object": b'["reason"]',
    "deeply nested": b"[" * 100_000 + b"]" * 100_000,
    "nested object": b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    "not UTF-8": b'{"reason": "\xff\xfe"}',
}


@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
def test_every_api_write_refuses_a_bad_json_body_with_400(
    app: Flask, client: FlaskClient, headers: dict[str, str], kind: str
) -> None:
    for method, path in _writes(app):
        response = client.open(
            path,
            method=method,
            data=BAD_BODIES[kind],
            headers=headers,
            content_type="application/json",
        )
        assert response.status_code == 400, (method, path, response.status_code)
        assert response.get_json()["error"] == "invalid", (method, path)


def test_a_body_that_is_not_json_is_refused_not_ignored(
    client: FlaskClient, ctx: Context, supervisor: Actor
) -> None:
    with ctx.db.transaction() as session:
        token = create_token(session, "supervisor1", "t").token
    response = client.post(
        "/api/v1/alerts/1/cancel",
        data="reason=x",
        headers={"Authorization": f"Bearer {token}"},
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert "application/json" in response.get_json()["message"]


def test_a_405_carries_allow_on_the_api_and_the_console(client: FlaskClient) -> None:
    api = client.delete("/api/v1/alerts")
    assert api.status_code == 405 and api.is_json
    assert set(api.headers["Allow"].split(", ")) >= {"GET", "POST"}
    console = client.put("/login")
    assert console.status_code == 405
    assert set(console.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_an_unknown_api_path_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing/here")
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


def test_an_absent_last_seen_time_comes_back_as_null(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    with ctx.db.transaction() as session:
        token = create_token(session, "officer1", "t").token
    response = client.post(
        "/api/v1/alerts",
        json=alert_body(last_seen_at=""),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201
    assert response.get_json()["content"]["last_seen_at"] is None


# The console's own error pages -----------------------------------------------------------------


def _signed_in(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    assert client.post("/login", data={"username": username, "password": PASSWORD}).status_code
    return client


def _is_console_page(text: str) -> bool:
    # Styled like every console page, with its navigation, not Werkzeug's bare page.
    return 'class="topbar"' in text and 'aria-label="Main"' in text and "Sign out" in text


def test_the_console_shows_its_own_error_pages(
    ctx: Context, officer: Actor, settings: object
) -> None:
    from alertd.web.app import create_app

    # CSRF on, as in production, for the 400.
    app = create_app(context=ctx, test_config={"TESTING": True})
    client = _signed_in_csrf(app)
    cases = {
        400: client.post("/alerts/new", data={"status": "Actual"}),
        403: client.get("/users"),
        404: client.get("/no/such/page"),
        405: client.delete("/alerts/new"),
        413: client.post(
            "/alerts/new",
            data=b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1),
            content_type="application/octet-stream",
        ),
    }
    expected = {
        400: "The form was not sent from this console or has expired",
        403: "Only an admin manages users and tokens.",
        404: "There is nothing here.",
        405: "That action is not available here.",
        413: "The upload is too large: a photo may be at most 5.0 MB. Go back to keep",
    }
    for status, response in cases.items():
        assert response.status_code == status, (status, response.status_code)
        assert expected[status] in response.text, status
        assert _is_console_page(response.text), status
    assert "Allow" in cases[405].headers


def _signed_in_csrf(app: Flask) -> FlaskClient:
    client = app.test_client()
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    response = client.post(
        "/login",
        data={"username": "officer1", "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert response.status_code == 302
    return client
