"""A webhook's text (a social post) carries the vehicle's colour and the child's hair in its own
language, from the same catalogues as the public page; the JSON fields keep what was typed."""

from __future__ import annotations

from datetime import timedelta

from alertd.alerts.models import Version
from alertd.channels.webhooks.formats import build_message
from alertd.context import Context
from alertd.db import utcnow
from tests.support.factories import alert_body


def test_the_post_text_speaks_its_language_and_the_fields_stay_as_typed(ctx: Context) -> None:
    now = utcnow()
    version = Version(
        content=alert_body(),
        kind="alert",
        status="Actual",
        msg_type="Alert",
        seq=1,
        identifier="alertd.ABCDEFGHJK.1",
        sent_at=now,
        expires_at=now + timedelta(hours=3),
    )

    spanish = build_message(ctx.settings, version, "ABCDEFGHJK", "es", None, None)
    english = build_message(ctx.settings, version, "ABCDEFGHJK", "en", None, None)

    assert "Nissan Versa azul" in spanish.long_text and "pelo castaño" in spanish.long_text
    assert "blue Nissan Versa" in english.long_text
    assert spanish.context["fields"]["vehicles"][0]["colour"] == "blue"
