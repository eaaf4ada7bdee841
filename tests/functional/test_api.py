"""The JSON API: the issue's scenario end to end, and bad input answered with JSON 4xx."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from alertd.accounts.services import create_token
from alertd.actor import Actor
from alertd.audit.models import AuditEntry
from alertd.audit.services import verify_chain
from alertd.context import Context
from tests.support.factories import alert_body, png_bytes


def _token(ctx: Context, actor: Actor) -> dict[str, str]:
    with ctx.db.transaction() as session:
        token = create_token(session, actor.username, "cad").token
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def officer_h(ctx: Context, officer: Actor) -> dict[str, str]:
    return _token(ctx, officer)


@pytest.fixture
def supervisor_h(ctx: Context, supervisor: Actor) -> dict[str, str]:
    return _token(ctx, supervisor)


def _create(client: FlaskClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/alerts", json=alert_body(**body), headers=headers)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def test_the_issue_scenario_alert_update_cancel_through_the_api(
    client: FlaskClient, ctx: Context, officer_h: dict[str, str], supervisor_h: dict[str, str]
) -> None:
    alert = _create(client, officer_h)
    url = f"/api/v1/alerts/{alert['id']}"
    assert client.post(f"{url}/submit", headers=officer_h).get_json()["state"] == "pending"

    refused = client.post(f"{url}/approve", headers=officer_h)
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"

    approved = client.post(f"{url}/approve", headers=supervisor_h).get_json()
    assert approved["state"] == "active"
    assert [(v["seq"], v["msg_type"]) for v in approved["versions"]] == [(1, "Alert")]

    proposed = client.post(
        f"{url}/update", json=alert_body(direction_of_travel="south"), headers=officer_h
    )
    assert proposed.status_code == 202
    proposal_id = proposed.get_json()["pending_update"]["id"]
    updated = client.post(
        f"{url}/update/approve", json={"proposal_id": proposal_id}, headers=supervisor_h
    ).get_json()
    first, update = updated["versions"]
    assert update["msg_type"] == "Update"
    assert [r["identifier"] for r in update["references"]] == [first["identifier"]]

    cancelled = client.post(
        f"{url}/cancel", json={"reason": "issued in error"}, headers=supervisor_h
    ).get_json()
    assert cancelled["state"] == "cancelled"
    cancel = cancelled["versions"][-1]
    assert cancel["msg_type"] == "Cancel"
    assert [r["identifier"] for r in cancel["references"]] == [
        first["identifier"],
        update["identifier"],
    ]
    with ctx.db.session() as session:
        assert verify_chain(session).ok


def test_the_same_officer_cannot_approve_their_own_update(
    client: FlaskClient,
    ctx: Context,
    officer_h: dict[str, str],
    supervisor_h: dict[str, str],
    supervisor: Actor,
) -> None:
    alert = _create(client, officer_h)
    url = f"/api/v1/alerts/{alert['id']}"
    client.post(f"{url}/submit", headers=officer_h)
    client.post(f"{url}/approve", headers=supervisor_h)
    # The supervisor proposes nothing; an officer does, and only someone else may approve it.
    client.post(f"{url}/update", json=alert_body(tip_line="+1 800 555 0100"), headers=officer_h)

    pending = client.get(url, headers=officer_h).get_json()["pending_update"]["id"]
    assert (
        client.post(
            f"{url}/update/approve", json={"proposal_id": pending}, headers=officer_h
        ).status_code
        == 403
    )
    assert client.get(url, headers=officer_h).get_json()["pending_update"] is not None


def test_a_photo_is_stored_and_served_at_a_stable_url(
    client: FlaskClient, officer_h: dict[str, str]
) -> None:
    photo = png_bytes()
    body = alert_body()
    body["photo"] = base64.b64encode(photo).decode()

    created = client.post("/api/v1/alerts", json=body, headers=officer_h).get_json()

    served = client.get(created["photo_url"].replace("http://localhost", ""), headers=officer_h)
    assert served.status_code == 200 and served.data == photo
    assert served.mimetype == "image/png"
    assert served.headers["Cache-Control"] == "private, no-store"


def test_a_non_image_photo_is_refused(client: FlaskClient, officer_h: dict[str, str]) -> None:
    body = alert_body()
    body["photo"] = base64.b64encode(b"%PDF-1.4 not an image").decode()

    response = client.post("/api/v1/alerts", json=body, headers=officer_h)

    assert response.status_code == 400
    assert response.get_json()["fields"]["photo"] == "not an image"


def test_requests_without_a_token_get_401_json(client: FlaskClient) -> None:
    response = client.get("/api/v1/alerts")
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthenticated"
    assert client.get("/api/v1/alerts", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_unknown_ids_and_endpoints_are_404_json(
    client: FlaskClient, officer_h: dict[str, str]
) -> None:
    assert client.get("/api/v1/alerts/999", headers=officer_h).status_code == 404
    assert (
        client.post("/api/v1/alerts/999/submit", headers=officer_h).get_json()["error"]
        == "not_found"
    )
    assert client.get("/api/v1/nothing", headers=officer_h).status_code == 404


def test_an_officer_may_not_cancel_and_the_refusal_is_audited(
    client: FlaskClient, ctx: Context, officer_h: dict[str, str]
) -> None:
    alert = _create(client, officer_h)

    response = client.post(f"/api/v1/alerts/{alert['id']}/cancel", headers=officer_h)

    assert response.status_code == 403
    with ctx.db.session() as session:
        refused = session.execute(
            select(AuditEntry).where(AuditEntry.action == "alert.cancel")
        ).scalar_one()
        assert refused.outcome == "refused" and refused.target_id == str(alert["id"])
        # The token that acted has a field of its own; the user agent is only what was sent.
        assert refused.token_id is not None
        assert "token" not in (refused.user_agent or "")


def test_the_openapi_document_lists_every_endpoint(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()

    assert doc["openapi"].startswith("3.")
    for action in ("submit", "approve", "reject", "update", "cancel", "resolve", "extend"):
        assert f"/api/v1/alerts/{{alert_id}}/{action}" in doc["paths"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "status",
        "jurisdiction",
        "criteria",
        "children",
        "suspects",
        "vehicles",
        "areas",
        "languages",
        "translations",
        "expires_at",
        "last_seen_at",
        "tip_line",
        "description",
        "photo",
    ]
)


@settings(
    max_examples=int(os.environ.get("ALERTD_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.dictionaries(field_names, json_values, max_size=6))
def test_any_malformed_body_gets_a_json_4xx_never_a_500(
    client: FlaskClient, officer_h: dict[str, str], body: dict[str, Any]
) -> None:
    response = client.post("/api/v1/alerts", json=body, headers=officer_h)

    assert response.status_code in (201, 400), response.get_data(as_text=True)
    assert response.is_json


def test_a_body_that_is_not_json_is_a_400(client: FlaskClient, officer_h: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/alerts", data="{not json", headers=officer_h, content_type="application/json"
    )
    assert response.status_code == 400 and response.get_json()["error"] == "invalid"


def test_an_oversized_photo_is_refused_and_nothing_is_saved(
    client: FlaskClient, ctx: Context, officer_h: dict[str, str]
) -> None:
    body = alert_body()
    too_big = png_bytes(2000, 2000) + b"\0" * ctx.settings.MAX_PHOTO_BYTES
    body["photo"] = base64.b64encode(too_big).decode()

    response = client.post("/api/v1/alerts", json=body, headers=officer_h)

    assert response.status_code in (400, 413) and response.is_json
    assert client.get("/api/v1/alerts", headers=officer_h).get_json()["alerts"] == []


def test_a_photo_just_over_the_limit_names_the_limit(
    client: FlaskClient, ctx: Context, officer_h: dict[str, str]
) -> None:
    body = alert_body()
    body["photo"] = base64.b64encode(b"\x89PNG" + b"\0" * ctx.settings.MAX_PHOTO_BYTES).decode()

    response = client.post("/api/v1/alerts", json=body, headers=officer_h)

    assert response.status_code == 400
    assert response.get_json()["fields"]["photo"] == "too large"
