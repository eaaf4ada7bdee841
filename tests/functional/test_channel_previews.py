"""Before approval, the alert page shows what each enabled channel will carry, per language,
from the channels' own preview hooks."""

from __future__ import annotations

import re
from html import unescape

from alertd.actor import Actor
from alertd.alerts import services
from alertd.channels.cap.wea import wea_length
from alertd.channels.sms.segments import count_segments
from alertd.context import Context
from alertd.web.app import create_app
from tests.support.factories import PASSWORD, alert_body


def _previews(page: str, section_id: str) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(channel, language, label) -> (the count line, the text) for each preview shown."""
    section = re.search(
        rf'<div class="channel-previews" id="{section_id}">(.*?)\n</div>', page, re.S
    )
    assert section, page
    return {
        (channel, language, label): (unescape(count), unescape(text))
        for channel, language, label, count, text in re.findall(
            r'data-channel="([^"]+)" data-language="([^"]+)" data-label="([^"]+)">\s*'
            r'<p class="hint">.*?<span class="[a-z]+">(.*?)</span>.*?</p>\s*<pre>(.*?)</pre>',
            section.group(1),
            re.S,
        )
    }


def test_a_pending_alert_shows_each_channels_texts_per_language_against_their_limits(
    ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    # given: every channel the project has, and an alert in English and Spanish
    ctx.settings = ctx.settings.with_overrides(CHANNELS="log,cap,sms,webhook")
    client = create_app(
        context=ctx, test_config={"TESTING": True, "WTF_CSRF_ENABLED": False}
    ).test_client()
    body = alert_body(
        languages=["en-US", "es-US"],
        translations={"es-US": {"description": "Jane fue secuestrada.", "instruction": "Llame."}},
    )
    alert = services.create_alert(ctx, body, by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    client.post("/login", data={"username": "supervisor1", "password": PASSWORD})

    # when
    page = client.get(f"/alerts/{alert.id}").text

    # then: the log channel's text, as before
    shown = _previews(page, "alert-channel-previews")
    count, text = shown[("log", "en-US", "message")]
    assert "CHILD ABDUCTION ALERT. Jane Doe, 7" in text
    assert re.fullmatch(r"\d+ characters", count) and int(count.split()[0]) == len(text)
    # CAP: the headline and both WEA texts in each language, counted against 160/90/360
    for language in ("en-US", "es-US"):
        for label, limit in (("CAP headline", 160), ("WEA text", 90), ("WEA long text", 360)):
            count, text = shown[("cap", language, label)]
            assert text, (language, label)
            assert (
                count
                == f"{wea_length(text) if 'WEA' in label else len(text)} of {limit} characters"
            )
    assert "Jane Doe" in shown[("cap", "en-US", "WEA text")][1]
    # SMS: each language's text with its segment count against the limit of 3
    sms = [(key, value) for key, value in shown.items() if key[0] == "sms"]
    assert {language for (_, language, _), _ in sms} >= {"en", "es"}, sms
    for (_, _, label), (count, text) in sms:
        segments = count_segments(text)
        assert label == f"SMS ({segments.characters} characters, {segments.encoding})"
        assert count == f"{segments.segments} of 3 segments"
    # Posts: the short and long texts, against 280 and 500
    for language in ("en", "es"):
        short_count, short = shown[("webhook", language, "short post")]
        long_count, long = shown[("webhook", language, "long post")]
        assert short_count == f"{len(short)} of 280 characters"
        assert long_count == f"{len(long)} of 500 characters"
    assert "Shown once the version is published" not in page
