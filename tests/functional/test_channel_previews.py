"""Before approval, the alert page shows what each enabled channel will carry, per language,
from the channels' own preview hooks."""

from __future__ import annotations

import re

from alertd.actor import Actor
from alertd.alerts import services
from alertd.context import Context
from alertd.web.app import create_app
from tests.support.factories import PASSWORD, alert_body


def test_a_pending_alert_shows_each_channels_text_per_language(
    ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    # given: the log channel, which previews, and the CAP channel, whose message exists only
    # once the version does
    ctx.settings = ctx.settings.with_overrides(CHANNELS="log,cap")
    client = create_app(
        context=ctx, test_config={"TESTING": True, "WTF_CSRF_ENABLED": False}
    ).test_client()
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    client.post("/login", data={"username": "supervisor1", "password": PASSWORD})

    # when
    page = client.get(f"/alerts/{alert.id}").text

    # then
    section = re.search(
        r'<div class="channel-previews" id="alert-channel-previews">(.*?)\n</div>', page, re.S
    )
    assert section, page
    log = re.search(r'data-channel="log" data-language="en-US">(.*?)</div>', section.group(1), re.S)
    assert log and "CHILD ABDUCTION ALERT. Jane Doe, 7" in log.group(1)
    assert re.search(r"log · en-US · \d+ characters", log.group(1))
    assert "Shown once the version is published: cap." in section.group(1)
