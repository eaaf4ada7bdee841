"""ALERTD_TIMEZONE: one configured zone for CAP offsets, console and public page times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from lxml import etree

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Version
from alertd.channels.cap.channel import build_document, cap_version_for
from alertd.channels.cap.message import CAP_NS
from alertd.channels.cap.validate import validate_cap
from alertd.cli import main
from alertd.context import Context
from alertd.localtime import ipaws_zone_warning, load_zone, to_local
from alertd.settings import load_settings
from tests.support.factories import alert_body

NS = {"cap": CAP_NS}


def test_the_default_zone_is_utc_and_a_named_zone_gives_its_offset() -> None:
    assert load_settings(environ={}).TIMEZONE == "UTC"
    chicago = load_settings(environ={"ALERTD_TIMEZONE": "America/Chicago"})
    winter = to_local(datetime(2026, 1, 15, 18, 0, tzinfo=UTC), chicago)
    summer = to_local(datetime(2026, 7, 15, 18, 0, tzinfo=UTC), chicago)
    assert (winter.hour, winter.utcoffset().total_seconds() / 3600) == (12, -6)  # type: ignore[union-attr]
    assert (summer.hour, summer.utcoffset().total_seconds() / 3600) == (13, -5)  # type: ignore[union-attr]
    # SQLite hands back naive UTC; it is read as UTC, not as local time.
    assert to_local(datetime(2026, 1, 15, 18, 0), chicago) == winter


@pytest.mark.parametrize(
    "name", ["Mars/Olympus_Mons", "", "../etc/passwd", "/UTC", "utc ", "America"]
)
def test_a_zone_that_does_not_exist_is_refused_naming_the_setting(name: str) -> None:
    with pytest.raises(ValueError, match=r"ALERTD_TIMEZONE .* is not an IANA time zone"):
        load_settings(environ={"ALERTD_TIMEZONE": name})
    with pytest.raises(ValueError, match="ALERTD_TIMEZONE"):
        load_zone(name)


def test_the_cli_says_which_setting_is_wrong(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALERTD_TIMEZONE", "Europe/Atlantis")
    assert main(["health"]) == 2
    assert "ALERTD_TIMEZONE 'Europe/Atlantis' is not an IANA time zone" in capsys.readouterr().err


def test_ipaws_without_a_zone_warns_in_init_and_health(
    ctx: Context, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALERTD_DATABASE_URL", ctx.settings.database_url)
    monkeypatch.setenv("ALERTD_INSTANCE_PATH", str(ctx.settings.instance_path))
    monkeypatch.setenv("ALERTD_CAP_IPAWS", "true")
    for command in (["init"], ["health"]):
        assert main(command) == 0
        assert "ALERTD_TIMEZONE is 'UTC'" in capsys.readouterr().err
    monkeypatch.setenv("ALERTD_TIMEZONE", "America/New_York")
    for command in (["init"], ["health"]):
        assert main(command) == 0
        assert "ALERTD_TIMEZONE" not in capsys.readouterr().err
    monkeypatch.setenv("ALERTD_CAP_IPAWS", "false")
    monkeypatch.delenv("ALERTD_TIMEZONE")
    assert ipaws_zone_warning(load_settings()) is None


def test_an_ipaws_message_carries_the_local_offset_in_every_time(
    ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    settings = ctx.settings.with_overrides(CAP_IPAWS=True, TIMEZONE="America/Chicago")
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)
    proposal = services.propose_update(
        ctx, alert.id, alert_body(description="Seen at the mall."), by=officer
    )
    services.approve_update(ctx, alert.id, by=supervisor, proposal_id=proposal.id)
    with ctx.db.session() as session:
        first, second = session.query(Version).filter_by(alert_id=alert.id).order_by(Version.seq)
        xml = build_document(settings, cap_version_for(settings, second, second.alert))
        first_sent = first.sent_at
    root = etree.fromstring(xml)
    offset = to_local(first_sent, settings).strftime("%z")
    offset = f"{offset[:3]}:{offset[3:]}"
    assert offset in ("-06:00", "-05:00")
    times = [root.findtext("cap:sent", namespaces=NS)]
    times += [e.text for e in root.iterfind("cap:info/cap:expires", NS)]
    assert times and all(t.endswith(offset) for t in times)
    # The reference quotes the first message's <sent> in the same local form.
    local_first = to_local(first_sent, settings).strftime("%Y-%m-%dT%H:%M:%S") + offset
    assert root.findtext("cap:references", namespaces=NS).endswith("," + local_first)
    assert root.findtext("cap:code", namespaces=NS) == "IPAWSv1.0"
    assert validate_cap(xml, strict=True) == []


def test_the_public_page_shows_times_in_the_configured_zone(
    ctx: Context, client: FlaskClient, officer: Actor, supervisor: Actor
) -> None:
    ctx.settings = ctx.settings.with_overrides(TIMEZONE="Asia/Kolkata", CHANNELS="cap,log")
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)
    page = client.get(f"/a/{alert.public_id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    # India has no daylight saving, so the zone is known whatever the date.
    assert text.count(" IST") >= 2  # last seen and the time of the message
    assert " UTC" not in text
