"""The authorization matrix: every route of the application, for every role and anonymous.

``ROUTES`` has one line per route and method. A route missing from it, or a line for a route
that no longer exists, fails the test: adding a route means adding its line here. A role listed
on a line must not be refused (403; for the console, a redirect to sign in; for the API, 401);
every other role must be refused with 403; anonymous gets what the line's kind says.

Set ``ALERTD_PRINT_MATRIX=1`` to print what each route answered, to write a new line from.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from alertd.accounts.services import create_token
from alertd.actor import ROLES, Actor
from alertd.alerts import services
from alertd.context import Context
from config import defaults
from tests.support.factories import PASSWORD, alert_body

# Channels bring their own routes (console pages, API, feeds, callbacks): the matrix covers
# those of the default channel set, every built-in one, not only the tests' default (log).
pytestmark = pytest.mark.channels(*defaults.CHANNELS.split(","))


@dataclass(frozen=True)
class Row:
    roles: frozenset[str]
    # What an anonymous caller gets: "login" (redirect to sign in), "401", "403" or "open".
    anonymous: str
    # What a listed role gets: "open" (anything but a refusal), or "login" for signing out.
    allowed: str = "open"


def console(*roles: str) -> Row:
    return Row(frozenset(roles), "login")


def api(*roles: str) -> Row:
    return Row(frozenset(roles), "401")


def public() -> Row:
    return Row(frozenset(ROLES), "open")


EVERYONE = ROLES
WRITERS = ("officer",)
APPROVERS = ("supervisor",)
RUNNERS = ("supervisor", "operator")  # cancel, resolve, extend
PROPOSERS = ("officer", "operator")
CHANNELS = ("operator",)
ADMIN = ("admin",)
SUBSCRIBERS = ("operator", "admin")

ROUTES: dict[str, Row] = {
    # Console --------------------------------------------------------------------------------
    "GET /": console(*EVERYONE),
    "GET /account": console(*EVERYONE),
    "POST /account/password": console(*EVERYONE),
    "GET /alerts/<int:alert_id>": console(*EVERYONE),
    "POST /alerts/<int:alert_id>/approve": console(*APPROVERS),
    "POST /alerts/<int:alert_id>/cancel": console(*RUNNERS),
    "POST /alerts/<int:alert_id>/discard": console(*WRITERS),
    "GET /alerts/<int:alert_id>/edit": console(*WRITERS),
    "POST /alerts/<int:alert_id>/edit": console(*WRITERS),
    "POST /alerts/<int:alert_id>/extend": console(*RUNNERS),
    "POST /alerts/<int:alert_id>/reject": console(*APPROVERS),
    "POST /alerts/<int:alert_id>/resolve": console(*RUNNERS),
    "POST /alerts/<int:alert_id>/submit": console(*WRITERS),
    "GET /alerts/<int:alert_id>/photo": console(*EVERYONE),
    "GET /alerts/<int:alert_id>/progress": console(*EVERYONE),
    "GET /alerts/<int:alert_id>/update": console(*PROPOSERS),
    "POST /alerts/<int:alert_id>/update": console(*PROPOSERS),
    "POST /alerts/<int:alert_id>/update/approve": console(*APPROVERS),
    "POST /alerts/<int:alert_id>/update/reject": console(*APPROVERS),
    "GET /alerts/new": console(*WRITERS),
    "POST /alerts/new": console(*WRITERS),
    "POST /logout": Row(frozenset(EVERYONE), "login", allowed="login"),
    "POST /tokens/<int:token_id>/revoke": console(*EVERYONE),  # one's own; an admin any
    "GET /users": console(*ADMIN),
    "POST /users": console(*ADMIN),
    "POST /users/<name>/<any(deactivate, activate):change>": console(*ADMIN),
    "POST /users/<name>/tokens": console("officer"),  # only for oneself: sample is officer1
    "GET /sms/subscribers": console(*SUBSCRIBERS),
    "POST /sms/subscribers": console(*SUBSCRIBERS),
    "POST /sms/subscribers/<int:subscriber_id>/delete": console(*SUBSCRIBERS),
    "GET /sms/texts": console(*SUBSCRIBERS),
    "GET /sms/alerts/<int:alert_id>": console(*SUBSCRIBERS),
    "POST /sms/deliveries/<int:delivery_id>/retry": console(*SUBSCRIBERS),
    "GET /webhooks/": console(*CHANNELS),
    "POST /webhooks/": console(*CHANNELS),
    "GET /webhooks/<int:endpoint_id>": console(*CHANNELS),
    "POST /webhooks/<int:endpoint_id>/<action>": console(*CHANNELS),
    "GET /webhooks/alerts/<int:alert_id>": console(*CHANNELS),
    "POST /webhooks/deliveries/<int:delivery_id>/replay": console(*CHANNELS),
    # API ------------------------------------------------------------------------------------
    "GET /api/v1/alerts": api(*EVERYONE),
    "POST /api/v1/alerts": api(*WRITERS),
    "GET /api/v1/alerts/<int:alert_id>": api(*EVERYONE),
    "PUT /api/v1/alerts/<int:alert_id>": api(*WRITERS),
    "POST /api/v1/alerts/<int:alert_id>/approve": api(*APPROVERS),
    "POST /api/v1/alerts/<int:alert_id>/cancel": api(*RUNNERS),
    "POST /api/v1/alerts/<int:alert_id>/discard": api(*WRITERS),
    "GET /api/v1/alerts/<int:alert_id>/photo": api(*EVERYONE),
    "POST /api/v1/alerts/<int:alert_id>/extend": api(*RUNNERS),
    "POST /api/v1/alerts/<int:alert_id>/reject": api(*APPROVERS),
    "POST /api/v1/alerts/<int:alert_id>/resolve": api(*RUNNERS),
    "POST /api/v1/alerts/<int:alert_id>/submit": api(*WRITERS),
    "POST /api/v1/alerts/<int:alert_id>/update": api(*PROPOSERS),
    "POST /api/v1/alerts/<int:alert_id>/update/approve": api(*APPROVERS),
    "POST /api/v1/alerts/<int:alert_id>/update/reject": api(*APPROVERS),
    "GET /api/v1/alerts/<int:alert_id>/webhook-attempts": api(*CHANNELS),
    "GET /api/v1/subscribers": api(*SUBSCRIBERS),
    "POST /api/v1/subscribers": api(*SUBSCRIBERS),
    "GET /api/v1/subscribers/<int:subscriber_id>": api(*SUBSCRIBERS),
    "DELETE /api/v1/subscribers/<int:subscriber_id>": api(*SUBSCRIBERS),
    "GET /api/v1/endpoints": api(*CHANNELS),
    "POST /api/v1/endpoints": api(*CHANNELS),
    "GET /api/v1/endpoints/<int:endpoint_id>": api(*CHANNELS),
    "GET /api/v1/endpoints/<int:endpoint_id>/attempts": api(*CHANNELS),
    "POST /api/v1/endpoints/<int:endpoint_id>/disable": api(*CHANNELS),
    "POST /api/v1/endpoints/<int:endpoint_id>/enable": api(*CHANNELS),
    "POST /api/v1/endpoints/<int:endpoint_id>/replay": api(*CHANNELS),
    "POST /api/v1/endpoints/<int:endpoint_id>/rotate-secret": api(*CHANNELS),
    "GET /api/v1/jurisdictions": api(*EVERYONE),
    "GET /api/v1/openapi.json": public(),
    "GET /api/v1/tokens": api(*EVERYONE),  # one's own; an admin all
    "POST /api/v1/tokens": api(*EVERYONE),  # for oneself only
    "POST /api/v1/tokens/<int:token_id>/revoke": api(*EVERYONE),
    "POST /api/v1/users/<name>/<any(deactivate, activate):change>": api(*ADMIN),
    "POST /api/v1/webhook-deliveries/<int:delivery_id>/replay": api(*CHANNELS),
    # Public ---------------------------------------------------------------------------------
    "GET /a/<public_id:public_id>": public(),
    "GET /alerts/<public_id:public_id>": public(),
    "GET /cap/<identifier>.xml": public(),
    "GET /feeds/alerts.geojson": public(),
    "GET /feeds/alerts.rss": public(),
    "GET /feeds/cap-full.atom": public(),
    "GET /feeds/cap.atom": public(),
    "GET /feeds/test/alerts.geojson": public(),
    "GET /feeds/test/alerts.rss": public(),
    "GET /feeds/test/cap-full.atom": public(),
    "GET /feeds/test/cap.atom": public(),
    "GET /healthz": public(),
    "GET /login": public(),
    "POST /login": public(),
    "GET /photos/<name>": public(),
    "GET /static/<path:filename>": public(),
    # Scraped from loopback or with its own bearer token (ALERTD_METRICS_TOKEN), never with a
    # user's credentials.
    "GET /metrics": Row(frozenset(), "403"),
    # Twilio callbacks prove themselves by signature; no credential of ours opens them.
    "POST /twilio/inbound": Row(frozenset(), "403"),
    "POST /twilio/status/<int:delivery_id>": Row(frozenset(), "403"),
}

# Values for path arguments. Ids name the sample alert or nothing; a name is officer1.
SAMPLES = {
    "endpoint_id": "1",
    "delivery_id": "1",
    "subscriber_id": "1",
    "token_id": "999999",
    "name": "officer1",
    "change": "activate",
    "action": "disable",
    "identifier": "nothing",
    "filename": "nothing.css",
}


def _key(rule: Rule, method: str) -> str:
    return f"{method} {rule.rule}"


def _routes(app: Flask) -> list[tuple[Rule, str]]:
    found = [
        (rule, method)
        for rule in app.url_map.iter_rules()
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    ]
    # Signing out last: it ends the session the other requests use.
    return sorted(found, key=lambda rm: (rm[0].rule == "/logout", rm[0].rule, rm[1]))


def test_every_route_has_a_line_in_the_matrix(app: Flask) -> None:
    keys = {_key(rule, method) for rule, method in _routes(app)}
    assert sorted(keys - set(ROUTES)) == [], "add these routes to ROUTES"
    assert sorted(set(ROUTES) - keys) == [], "these ROUTES lines name no route"


def _path(rule: Rule, alert: Any) -> str:
    values = dict(SAMPLES, alert_id=str(alert.id), public_id=alert.public_id)

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"add a sample value for <{name}> to SAMPLES"
        return values[name]

    return re.sub(r"<(?:[^:>]+(?:\([^)]*\))?:)?(\w+)>", fill, rule.rule)


def _outcome(response: Any, is_api: bool) -> str:
    if response.status_code == 403:
        return "403"
    if is_api and response.status_code == 401:
        return "401"
    if response.status_code in (301, 302, 303) and response.headers.get("Location", "").startswith(
        "/login"
    ):
        return "login"
    return "open"


@pytest.fixture
def callers(app: Flask, ctx: Context) -> dict[str, tuple[FlaskClient, dict[str, str]]]:
    """A signed-in console client and an API token for every role, and anonymous."""

    def remote() -> FlaskClient:
        # From elsewhere on the network: loopback is trusted for /metrics.
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = "203.0.113.5"
        return client

    found: dict[str, tuple[FlaskClient, dict[str, str]]] = {"anonymous": (remote(), {})}
    for role in ROLES:
        client = remote()
        assert (
            client.post("/login", data={"username": f"{role}1", "password": PASSWORD}).status_code
            == 302
        )
        with ctx.db.transaction() as session:
            token = create_token(session, f"{role}1", "matrix").token
        found[role] = (client, {"Authorization": f"Bearer {token}"})
    return found


def test_the_authorization_matrix(
    app: Flask,
    ctx: Context,
    officer: Actor,
    supervisor: Actor,
    operator: Actor,
    admin: Actor,
    callers: dict[str, tuple[FlaskClient, dict[str, str]]],
) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    printing = bool(os.environ.get("ALERTD_PRINT_MATRIX"))
    wrong: list[str] = []
    for rule, method in _routes(app):
        key = _key(rule, method)
        row = ROUTES.get(key)
        is_api = rule.rule.startswith("/api/")
        path = _path(rule, alert)
        seen = {}
        for who, (client, token) in callers.items():
            # An empty JSON object (or form): enough to reach the role check, never a change.
            options: dict[str, Any] = {"headers": token} if is_api else {}
            if method in ("POST", "PUT") and is_api:
                options["json"] = {}
            seen[who] = _outcome(client.open(path, method=method, **options), is_api)
        if printing:
            allowed = [r for r in ROLES if seen[r] == "open"]
            print(f"{key:70} anonymous={seen['anonymous']:6} allowed={allowed}")
            continue
        assert row is not None, f"add {key!r} to ROUTES"
        for role in ROLES:
            expected = row.allowed if role in row.roles else "403"
            if seen[role] != expected:
                wrong.append(f"{key}: {role} got {seen[role]}, expected {expected}")
        if seen["anonymous"] != row.anonymous:
            wrong.append(f"{key}: anonymous got {seen['anonymous']}, expected {row.anonymous}")
    assert wrong == []


def test_an_operator_proposes_an_update_that_a_supervisor_approves(
    client: FlaskClient, ctx: Context, officer: Actor, supervisor: Actor, operator: Actor
) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)
    with ctx.db.transaction() as session:
        operator_h = {"Authorization": f"Bearer {create_token(session, 'operator1', 'o').token}"}
        supervisor_h = {
            "Authorization": f"Bearer {create_token(session, 'supervisor1', 's').token}"
        }
    url = f"/api/v1/alerts/{alert.id}"

    proposed = client.post(
        f"{url}/update", json=alert_body(direction_of_travel="east on Route 9"), headers=operator_h
    )
    assert proposed.status_code == 202, proposed.get_json()
    proposal_id = proposed.get_json()["pending_update"]["id"]
    # The operator is the proposer: a second person must approve.
    own = client.post(
        f"{url}/update/approve", json={"proposal_id": proposal_id}, headers=operator_h
    )
    assert own.status_code == 403

    approved = client.post(
        f"{url}/update/approve", json={"proposal_id": proposal_id}, headers=supervisor_h
    )
    assert approved.status_code == 200
    body = approved.get_json()
    assert body["versions"][-1]["msg_type"] == "Update"
    assert body["content"]["direction_of_travel"] == "east on Route 9"
