"""Local time: the console writes times in ALERTD_TIMEZONE (the browser's zone where its script
runs), a new form's offsets start at that zone's, and a default expiry counts from approval."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from flask.testing import FlaskClient

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Alert
from alertd.context import Context
from alertd.db import utcnow
from alertd.web.app import create_app
from tests.support.factories import PASSWORD, alert_body


def _client(ctx: Context, zone: str) -> FlaskClient:
    ctx.settings = ctx.settings.with_overrides(TIMEZONE=zone)
    client = create_app(
        context=ctx, test_config={"TESTING": True, "WTF_CSRF_ENABLED": False}
    ).test_client()
    client.post("/login", data={"username": "supervisor1", "password": PASSWORD})
    return client


def test_the_alert_page_shows_times_in_the_configured_zone_marked_for_the_browser(
    ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    client = _client(ctx, "America/Chicago")
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    approved = services.approve_alert(ctx, alert.id, by=supervisor)

    page = client.get(f"/alerts/{alert.id}").text

    expires = approved.expires_at
    local = expires.astimezone(ctx.settings.zone).strftime("%Y-%m-%d %H:%M:%S %Z %z")
    assert local.endswith(("CST -0600", "CDT -0500"))
    tag = re.search(rf'<time datetime="([^"]+)" data-local>{local}</time>', page)
    assert tag and datetime.fromisoformat(tag.group(1)) == expires
    assert "localtime.js" in page


def test_an_officer_new_form_offsets_default_to_the_zone(ctx: Context, officer: Actor) -> None:
    ctx.settings = ctx.settings.with_overrides(TIMEZONE="Asia/Kolkata")
    client = create_app(
        context=ctx, test_config={"TESTING": True, "WTF_CSRF_ENABLED": False}
    ).test_client()
    client.post("/login", data={"username": "officer1", "password": PASSWORD})

    page = client.get("/alerts/new").text

    for name in ("last_seen_at_offset", "expires_at_offset"):
        select = re.search(rf'<select id="{name}"[^>]*>(.*?)</select>', page, re.S)
        assert select, name
        assert 'value="+05:30" selected' in select.group(1)
        assert "data-default-offset" in page


def test_a_default_expiry_counts_from_approval_not_from_the_draft(
    ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    # given: a draft saved with no expiry, approved long after (its save time pushed back)
    body = alert_body()
    body.pop("expires_at", None)
    alert = services.create_alert(ctx, body, by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    with ctx.db.transaction() as session:
        row = session.get(Alert, alert.id)
        assert row is not None and row.expires_by_default
        early = utcnow() - timedelta(minutes=ctx.settings.DEFAULT_ALERT_MINUTES - 5)
        row.expires_at = early + timedelta(minutes=ctx.settings.DEFAULT_ALERT_MINUTES)

    # when
    before = utcnow()
    approved = services.approve_alert(ctx, alert.id, by=supervisor)

    # then: the full default from the moment of approval, in the alert and its version
    minutes = ctx.settings.DEFAULT_ALERT_MINUTES
    assert before - timedelta(seconds=1) + timedelta(minutes=minutes) <= approved.expires_at
    assert approved.expires_at <= utcnow() + timedelta(minutes=minutes)
    assert approved.versions[0].expires_at == approved.expires_at
    assert approved.content["expires_at"] == approved.expires_at.isoformat()
    assert not approved.expires_by_default


def test_an_expiry_the_officer_chose_is_kept_at_approval(
    ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    chosen = (utcnow() + timedelta(hours=5)).replace(microsecond=0)
    alert = services.create_alert(ctx, alert_body(expires_at=chosen.isoformat()), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)

    approved = services.approve_alert(ctx, alert.id, by=supervisor)

    assert approved.expires_at == chosen
