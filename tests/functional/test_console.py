"""The console through Flask's test client: signing in, raising, approving and running alerts
through the same forms an officer uses."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from werkzeug.datastructures import MultiDict

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.content import parse_content
from alertd.alerts.forms import form_values, parse_form
from alertd.alerts.models import Alert, Version
from alertd.audit.models import AuditEntry
from alertd.context import Context
from alertd.web.app import create_app
from tests.support.factories import PASSWORD, alert_body, png_bytes


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    return client.post("/login", data={"username": username, "password": password})


def local(moment: datetime) -> str:
    """A time as a ``datetime-local`` input sends it, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def raise_form(**overrides: Any) -> dict[str, Any]:
    """The raise form as an officer fills it in: flat fields, numbered slots, text geometry."""
    now = datetime.now(UTC)
    form: dict[str, Any] = {
        "status": "Actual",
        "jurisdiction": "us-doj",
        "case_reference": "NCIC-2026-000123",
        "criteria-minor": "y",
        "criteria-abduction_confirmed": "y",
        "criteria-imminent_danger": "y",
        "criteria-sufficient_description": "y",
        "criteria-ncic_entered": "y",
        "children-0-name": "Jane Doe",
        "children-0-age": "7",
        "children-0-sex": "female",
        "children-0-height_cm": "120",
        "children-0-weight_kg": "23",
        "children-0-hair": "brown",
        "children-0-eyes": "green",
        "children-0-clothing": "red raincoat",
        "children-1-name": "",  # An empty second slot, as the form always shows one.
        "suspects-0-name": "John Roe",
        "suspects-0-description": "white male, 40s",
        "vehicles-0-make": "Nissan",
        "vehicles-0-model": "Versa",
        "vehicles-0-colour": "blue",
        "vehicles-0-year": "2014",
        "vehicles-0-plate": "6WCU986",
        "vehicles-0-plate_region": "CA",
        "last_seen_at": local(now - timedelta(minutes=40)),
        "last_seen_at_offset": "+00:00",
        "last_seen_place": "Main St & 3rd Ave, Springfield",
        "direction_of_travel": "northbound on I-5",
        "tip_line": "+1 800 555 0199",
        "description": "Jane was taken from a playground.",
        "instruction": "Call the tip line. Do not approach.",
        "languages": "en-US, es-US",
        "translations-0-lang": "es-US",
        "translations-0-description": "Jane fue secuestrada en un parque.",
        "translations-0-instruction": "Llame a la línea de información.",
        "areas-0-description": "Springfield County",
        "areas-0-geocodes": "SAME=006037, FIPS=06037",
        "areas-0-polygon": "34.0,-118.5 34.2,-118.5 34.2,-118.2",
        "areas-1-circle": "",
        "expires_at": local(now + timedelta(hours=3)),
        "expires_at_offset": "+00:00",
    }
    form.update(overrides)
    return form


def only_alert(ctx: Context) -> Alert:
    with ctx.db.session() as session:
        return session.execute(select(Alert)).scalar_one()


def audit_count(ctx: Context, **where: Any) -> int:
    with ctx.db.session() as session:
        query = select(func.count()).select_from(AuditEntry)
        for key, value in where.items():
            query = query.where(getattr(AuditEntry, key) == value)
        return int(session.execute(query).scalar_one())


def raise_through_form(client: FlaskClient, **overrides: Any) -> Any:
    data = raise_form(**overrides)
    data["photo"] = (io.BytesIO(png_bytes()), "jane.png")
    return client.post("/alerts/new", data=data, content_type="multipart/form-data")


def pending_alert(ctx: Context, officer: Actor, **body: Any) -> Alert:
    alert = services.create_alert(ctx, alert_body(**body), by=officer)
    return services.submit_alert(ctx, alert.id, by=officer)


def active_alert(ctx: Context, officer: Actor, supervisor: Actor, **body: Any) -> Alert:
    alert = pending_alert(ctx, officer, **body)
    return services.approve_alert(ctx, alert.id, by=supervisor)


# Signing in ----------------------------------------------------------------------------------


def test_login_works_and_lands_on_the_alert_list(client: FlaskClient, officer: Actor) -> None:
    response = login(client, "officer1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert "officer1" in page.text and "(officer)" in page.text


def test_a_wrong_password_is_refused_and_audited(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    response = login(client, "officer1", "not the password")

    assert response.status_code == 401
    assert "Wrong username or password" in response.text
    assert audit_count(ctx, action="login.failed", target_id="officer1") == 1
    assert client.get("/").status_code == 302


def test_five_failures_then_the_right_password_is_refused_with_429(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    for _ in range(5):
        assert login(client, "officer1", "guess").status_code == 401

    response = login(client, "officer1")

    assert response.status_code == 429
    assert "Too many failed logins" in response.text
    assert audit_count(ctx, action="login.throttled") == 1
    assert client.get("/").status_code == 302


def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil"])
def test_sign_in_never_redirects_off_site(client: FlaskClient, officer: Actor, target: str) -> None:
    response = client.post(
        "/login", data={"username": "officer1", "password": PASSWORD, "next": target}
    )
    assert response.headers["Location"] == "/"


def test_sign_in_returns_to_the_page_asked_for(client: FlaskClient, officer: Actor) -> None:
    response = client.post(
        "/login", data={"username": "officer1", "password": PASSWORD, "next": "/alerts/new"}
    )
    assert response.headers["Location"] == "/alerts/new"


def test_logout_is_audited_and_ends_the_session(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    login(client, "officer1")
    response = client.post("/logout")
    assert response.status_code == 302
    assert audit_count(ctx, action="logout") == 1
    assert client.get("/").status_code == 302


# Raising and approving -----------------------------------------------------------------------


def test_an_officer_raises_an_alert_with_a_photo_and_submits_it(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    login(client, "officer1")
    assert client.get("/alerts/new").status_code == 200

    response = raise_through_form(client)

    assert response.status_code == 302, response.text
    alert = only_alert(ctx)
    assert response.headers["Location"] == f"/alerts/{alert.id}"
    assert alert.state == "draft"
    assert alert.photo_id is not None
    content = alert.content
    assert [c["name"] for c in content["children"]] == ["Jane Doe"]
    assert content["children"][0]["age"] == 7
    assert content["areas"][0]["geocodes"] == {"SAME": "006037", "FIPS": "06037"}
    assert content["areas"][0]["polygon"][0] == content["areas"][0]["polygon"][-1]
    assert "circle" not in content["areas"][0] and len(content["areas"]) == 1
    assert content["languages"] == ["en-US", "es-US"]
    assert content["translations"]["es-US"]["description"].startswith("Jane fue")
    assert content["expires_at"].endswith("+00:00")

    page = client.get(f"/alerts/{alert.id}")
    # Shown to staff from the console's own URL: the public one serves it only once published.
    assert f'src="/alerts/{alert.id}/photo"' in page.text
    assert client.get(f"/alerts/{alert.id}/photo").mimetype == "image/png"
    assert "Submit for approval" in page.text

    response = client.post(f"/alerts/{alert.id}/submit")
    assert response.status_code == 302
    assert only_alert(ctx).state == "pending"


def test_a_malformed_form_gets_field_errors_not_a_crash(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    login(client, "officer1")
    response = raise_through_form(
        client,
        **{
            "children-0-age": "seven",
            "areas-0-polygon": "34.0,-118.5 north,-118.5 34.2",
            "areas-0-geocodes": "006037",
            "vehicles-0-year": "20x4",
            "expires_at": "tomorrow",
        },
    )

    assert response.status_code == 400
    for name in ("children-0-age", "areas-0-geocodes"):
        assert f'id="{name}-error"' in response.text
    assert 'value="seven"' in response.text  # What was typed is kept.
    assert only_alert_count(ctx) == 0


def test_content_errors_appear_next_to_the_slot_the_officer_filled(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    login(client, "officer1")
    # The first child slot is blank, so the body's children[0] is the form's slot 1.
    response = raise_through_form(
        client,
        **{
            "children-0-name": "",
            "children-0-age": "",
            "children-0-sex": "",
            "children-0-height_cm": "",
            "children-0-weight_kg": "",
            "children-0-hair": "",
            "children-0-eyes": "",
            "children-0-clothing": "",
            "children-1-name": "Sam",
            "children-1-age": "seven",
            "areas-0-polygon": "34.0,-118.5 north,-118.5 34.2,-118.2",
            "vehicles-0-year": "20x4",
            "expires_at": "tomorrow",
        },
    )

    assert response.status_code == 400
    for name in ("children-1-age", "areas-0-polygon", "vehicles-0-year", "expires_at"):
        assert f'id="{name}-error"' in response.text, name
    assert only_alert_count(ctx) == 0
    assert audit_count(ctx, action="alert.create", outcome="refused") == 1


def only_alert_count(ctx: Context) -> int:
    with ctx.db.session() as session:
        return int(session.execute(select(func.count()).select_from(Alert)).scalar_one())


def test_the_submitting_officer_may_not_approve(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    alert = pending_alert(ctx, officer)
    login(client, "officer1")

    response = client.post(f"/alerts/{alert.id}/approve")

    assert response.status_code == 403
    assert "may not approve" in response.text
    assert only_alert(ctx).state == "pending"


def test_the_approval_section_says_when_the_viewer_submitted_the_alert(
    client: FlaskClient, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    alert = pending_alert(ctx, officer)
    # As if the supervisor had submitted it (say, after a role change): the page must say so.
    with ctx.db.transaction() as session:
        session.execute(
            update(Alert).where(Alert.id == alert.id).values(submitted_by_id=supervisor.user_id)
        )
    login(client, "supervisor1")

    page = client.get(f"/alerts/{alert.id}")

    assert "so you may not approve it" in page.text
    assert "Approve and publish" not in page.text
    assert client.post(f"/alerts/{alert.id}/approve").status_code == 403


def test_a_supervisor_approves_and_sees_version_1_of_type_alert(
    client: FlaskClient, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    alert = pending_alert(ctx, officer)
    login(client, "supervisor1")

    page = client.get(f"/alerts/{alert.id}")
    assert "Approve and publish" in page.text
    assert "CHILD ABDUCTION ALERT. Jane Doe, 7" in page.text  # The preview.
    assert "The child is 17 years of age or younger" in page.text  # The checklist.

    response = client.post(f"/alerts/{alert.id}/approve", follow_redirects=True)

    assert response.status_code == 200
    assert only_alert(ctx).state == "active"
    versions = re.search(r'<table id="versions">(.*?)</table>', response.text, re.S)
    assert versions is not None
    assert re.search(r"<td>1</td><td>[^<]*\.1</td><td>Alert</td><td>alert</td>", versions.group(1))


def test_rejecting_needs_a_reason_and_keeps_what_was_typed(
    client: FlaskClient, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    alert = pending_alert(ctx, officer)
    login(client, "supervisor1")

    response = client.post(f"/alerts/{alert.id}/reject", data={"reason": "   "})
    assert response.status_code == 400
    assert 'id="reject-reason-error"' in response.text

    response = client.post(
        f"/alerts/{alert.id}/reject", data={"reason": "No plate yet"}, follow_redirects=True
    )
    assert response.status_code == 200
    assert only_alert(ctx).state == "draft"
    assert "No plate yet" in response.text


def test_html_typed_by_an_officer_is_shown_as_text(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    login(client, "officer1")
    raise_through_form(client, description='<script>alert("x")</script><b>bold</b>')
    alert = only_alert(ctx)

    page = client.get(f"/alerts/{alert.id}")

    assert "<script>alert(" not in page.text
    assert "<b>bold</b>" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in page.text


def test_a_test_alert_carries_an_unmistakable_banner(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    alert = services.create_alert(ctx, alert_body(status="Test"), by=officer)
    login(client, "officer1")

    page = client.get(f"/alerts/{alert.id}")

    assert 'class="banner"' in page.text
    assert "TEST — NOT A REAL ALERT" in page.text
    actual = services.create_alert(ctx, alert_body(), by=officer)
    assert "NOT A REAL ALERT" not in client.get(f"/alerts/{actual.id}").text


def test_an_unknown_alert_is_404(client: FlaskClient, officer: Actor) -> None:
    login(client, "officer1")
    assert client.get("/alerts/999").status_code == 404
    assert client.post("/alerts/999/submit").status_code == 404
    assert client.get("/alerts/999/edit").status_code == 404


def test_an_officer_may_not_cancel(
    client: FlaskClient, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    alert = active_alert(ctx, officer, supervisor)
    login(client, "officer1")

    response = client.post(f"/alerts/{alert.id}/cancel", data={"reason": "mistake"})

    assert response.status_code == 403
    assert only_alert(ctx).state == "active"
    assert audit_count(ctx, action="alert.cancel", outcome="refused") == 1


def test_a_supervisor_cancels_with_a_reason(
    client: FlaskClient, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    alert = active_alert(ctx, officer, supervisor)
    login(client, "supervisor1")

    assert client.post(f"/alerts/{alert.id}/cancel", data={"reason": ""}).status_code == 400
    assert only_alert(ctx).state == "active"

    response = client.post(
        f"/alerts/{alert.id}/cancel", data={"reason": "Issued in error"}, follow_redirects=True
    )
    assert response.status_code == 200
    assert only_alert(ctx).state == "cancelled"
    assert "<td>Cancel</td><td>cancel</td>" in response.text


def test_near_expiry_the_page_warns_and_offers_a_one_click_extension(
    client: FlaskClient, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    # Raised through the form with an expiry ten minutes ahead.
    login(client, "officer1")
    raise_through_form(client, expires_at=local(datetime.now(UTC) + timedelta(minutes=10)))
    alert = only_alert(ctx)
    client.post(f"/alerts/{alert.id}/submit")
    client.post("/logout")
    login(client, "supervisor1")
    client.post(f"/alerts/{alert.id}/approve")

    page = client.get(f"/alerts/{alert.id}")
    assert "Expires in" in page.text
    assert "Extend by 60 minutes" in page.text

    response = client.post(f"/alerts/{alert.id}/extend", data={"minutes": "60"})
    assert response.status_code == 302
    extended = only_alert(ctx)
    assert extended.expires_at > datetime.now(UTC) + timedelta(minutes=60)
    assert "Expires in" not in client.get(f"/alerts/{alert.id}").text


def test_an_update_is_proposed_through_the_form_and_approved(
    client: FlaskClient, ctx: Context, officer: Actor, officer2: Actor, supervisor: Actor
) -> None:
    alert = active_alert(ctx, officer, supervisor)
    login(client, "officer2")
    form = client.get(f"/alerts/{alert.id}/update")
    assert form.status_code == 200
    assert 'value="Jane Doe"' in form.text

    values = form_values(alert.content)
    values["vehicles-0-plate"] = "7XYZ123"
    assert client.post(f"/alerts/{alert.id}/update", data=values).status_code == 302
    client.post("/logout")

    login(client, "supervisor1")
    page = client.get(f"/alerts/{alert.id}")
    assert "Proposed update" in page.text and "7XYZ123" in page.text
    proposal_id = re.search(r'name="proposal_id" value="(\d+)"', page.text)
    assert proposal_id is not None
    assert (
        client.post(
            f"/alerts/{alert.id}/update/approve", data={"proposal_id": proposal_id.group(1)}
        ).status_code
        == 302
    )
    with ctx.db.session() as session:
        kinds = [
            v.kind
            for v in session.execute(
                select(Version).where(Version.alert_id == alert.id).order_by(Version.seq)
            ).scalars()
        ]
    assert kinds == ["alert", "update"]


def test_the_alert_list_filters_by_state(client: FlaskClient, ctx: Context, officer: Actor) -> None:
    services.create_alert(ctx, alert_body(children=[{"name": "Draft Kid", "age": 5}]), by=officer)
    pending_alert(ctx, officer, children=[{"name": "Pending Kid", "age": 6}])
    login(client, "officer1")

    assert "Draft Kid" in client.get("/").text and "Pending Kid" in client.get("/").text
    only_pending = client.get("/?state=pending").text
    assert "Pending Kid" in only_pending and "Draft Kid" not in only_pending


# Administration ------------------------------------------------------------------------------


def test_the_admin_creates_a_user_and_a_token(
    client: FlaskClient, ctx: Context, admin: Actor
) -> None:
    login(client, "admin1")
    response = client.post(
        "/users",
        data={
            "username": "officer9",
            "role": "officer",
            "password": "a long enough password",
            "display_name": "Officer Nine",
        },
    )
    assert response.status_code == 302
    assert "officer9" in client.get("/users").text

    # An admin may not mint a token for someone else; officer9 creates their own.
    assert client.post("/users/officer9/tokens", data={"name": "cad"}).status_code == 403
    client.post("/logout")
    assert login(client, "officer9", "a long enough password").status_code == 302
    response = client.post("/users/officer9/tokens", data={"name": "cad"})
    assert response.status_code == 201
    token = re.search(r'value="(alertd_[^"]+)"', response.text)
    assert token is not None
    assert "shown only this once" in response.text
    assert token.group(1) not in client.get("/account").text


def test_a_bad_new_user_is_refused_with_field_messages(client: FlaskClient, admin: Actor) -> None:
    login(client, "admin1")
    response = client.post(
        "/users", data={"username": "x y", "role": "officer", "password": "short"}
    )
    assert response.status_code == 400
    assert 'id="password-error"' in response.text and 'id="username-error"' in response.text


def test_only_an_admin_manages_users(client: FlaskClient, officer: Actor) -> None:
    login(client, "officer1")
    assert client.get("/users").status_code == 403
    assert (
        client.post(
            "/users",
            data={"username": "mallory", "role": "admin", "password": "a long enough password"},
        ).status_code
        == 403
    )
    assert client.post("/users/admin1/tokens", data={"name": "x"}).status_code == 403


# Forms and CSRF ------------------------------------------------------------------------------


def test_the_form_round_trips_a_complete_body(ctx: Context) -> None:
    body = alert_body()
    settings = ctx.settings

    def normalise(raw: dict[str, Any]) -> dict[str, Any]:
        return parse_content(
            raw,
            rule_sets=ctx.rule_sets,
            default_jurisdiction=settings.DEFAULT_JURISDICTION,
            default_expires=datetime.now(UTC) + timedelta(hours=1),
            max_hours=settings.MAX_ALERT_HOURS,
        )

    parsed = parse_form(MultiDict(form_values(normalise(body))), ctx.rule_sets)

    assert parsed.errors == {}
    assert normalise(parsed.body) == normalise(body)


def test_a_post_without_the_csrf_token_is_refused(ctx: Context, officer: Actor) -> None:
    app: Flask = create_app(context=ctx, test_config={"TESTING": True})
    client = app.test_client()

    response = client.post("/login", data={"username": "officer1", "password": PASSWORD})
    assert response.status_code == 400
    assert audit_count(ctx, action="login") == 0

    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post(
        "/login", data={"username": "officer1", "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert response.status_code == 302
