"""Tip lines are phone numbers, checked with phonenumbers on the way in, through the API and the
console form alike: free text is refused with a clear error and nothing is saved."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from alertd.accounts.services import create_token
from alertd.actor import Actor
from alertd.alerts.models import Alert
from alertd.context import Context
from tests.functional.test_console import login, raise_form
from tests.support.factories import alert_body


@pytest.fixture
def officer_h(ctx: Context, officer: Actor) -> dict[str, str]:
    with ctx.db.transaction() as session:
        token = create_token(session, officer.username, "cad").token
    return {"Authorization": f"Bearer {token}"}


def _alerts(ctx: Context) -> int:
    with ctx.db.session() as session:
        return int(session.execute(select(func.count()).select_from(Alert)).scalar_one())


@pytest.mark.parametrize("typed", ["call the sheriff", "911", "555-0199", "+1 555"])
def test_the_api_refuses_a_tip_line_that_is_not_a_number(
    client: FlaskClient, ctx: Context, officer_h: dict[str, str], typed: str
) -> None:
    response = client.post("/api/v1/alerts", json=alert_body(tip_line=typed), headers=officer_h)

    assert response.status_code == 400
    message = response.get_json()["fields"]["tip_line"]
    assert "is not a phone number" in message and "+1 800 555 0199" in message, message
    assert _alerts(ctx) == 0


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("+1 800 555 0199", "+1 800-555-0199"),
        ("+18005550199", "+1 800-555-0199"),
        ("+33 1 45 67 89 10", "+33 1 45 67 89 10"),
    ],
)
def test_the_api_stores_a_number_written_the_international_way(
    client: FlaskClient, officer_h: dict[str, str], typed: str, stored: str
) -> None:
    response = client.post("/api/v1/alerts", json=alert_body(tip_line=typed), headers=officer_h)

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["content"]["tip_line"] == stored


def test_with_a_region_a_national_number_and_its_emergency_number_are_accepted(
    client: FlaskClient, ctx: Context, officer_h: dict[str, str]
) -> None:
    ctx.settings = ctx.settings.with_overrides(SMS_DEFAULT_REGION="US")
    for typed, stored in (("(800) 555-0199", "+1 800-555-0199"), ("911", "911")):
        response = client.post("/api/v1/alerts", json=alert_body(tip_line=typed), headers=officer_h)
        assert response.get_json()["content"]["tip_line"] == stored
    refused = client.post("/api/v1/alerts", json=alert_body(tip_line="1234"), headers=officer_h)
    assert "a number of region US" in refused.get_json()["fields"]["tip_line"]


def test_the_console_form_refuses_free_text_and_keeps_what_was_typed(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    login(client, "officer1")
    form: dict[str, Any] = raise_form(tip_line="ask for Sgt. Miller")

    response = client.post("/alerts/new", data=form)

    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "is not a phone number" in html
    assert 'value="ask for Sgt. Miller"' in html
    assert _alerts(ctx) == 0


def test_the_alert_page_dials_the_tip_line_in_e164(
    client: FlaskClient, ctx: Context, officer: Actor, officer_h: dict[str, str]
) -> None:
    created = client.post("/api/v1/alerts", json=alert_body(), headers=officer_h).get_json()
    login(client, "officer1")

    html = client.get(f"/alerts/{created['id']}").get_data(as_text=True)

    assert '<a href="tel:+18005550199">+1 800-555-0199</a>' in html
