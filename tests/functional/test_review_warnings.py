"""The reviewer sees, before approving, what CAP readers would trip over."""

from __future__ import annotations

from flask.testing import FlaskClient

from alertd.actor import Actor
from alertd.alerts import services
from alertd.context import Context
from tests.support.factories import PASSWORD, alert_body


def test_the_approval_page_warns_about_html_and_a_missing_same_code_in_ipaws_mode(
    ctx: Context, client: FlaskClient, officer: Actor, supervisor: Actor
) -> None:
    ctx.settings = ctx.settings.with_overrides(CAP_IPAWS=True)
    areas = [{"description": "Downtown", "circle": {"lat": 34.0, "lon": -118.2, "radius_km": 5}}]
    body = alert_body(description="Jane wore a <b>red</b> coat.", areas=areas)
    alert = services.create_alert(ctx, body, by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    client.post("/login", data={"username": "supervisor1", "password": PASSWORD})

    page = client.get(f"/alerts/{alert.id}").get_data(as_text=True)

    assert 'id="content-warnings"' in page
    # In the words of the form, never the machine paths (description, areas[0].geocodes.SAME).
    assert "Description: looks like HTML tags" in page
    assert "Area 1: area codes, SAME: add the area&#39;s SAME county code" in page
    assert "areas[0]" not in page

    clean = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, clean.id, by=officer)
    assert 'id="content-warnings"' not in client.get(f"/alerts/{clean.id}").get_data(as_text=True)
