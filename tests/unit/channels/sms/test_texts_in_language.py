"""Each language's SMS text carries the vehicle in that language's words and order, from the
same gettext catalogues as the public page and the CAP texts."""

from __future__ import annotations

from alertd.channels.sms.messages import texts_for
from alertd.context import Context
from tests.support.factories import alert_body


def test_the_vehicle_is_described_in_each_texts_language(ctx: Context) -> None:
    texts = texts_for(ctx.settings, "alert", alert_body(), "ABCDEFGHJK")

    assert "Blue Nissan Versa plate 6WCU986" in texts["en"]
    assert "Nissan Versa azul placa 6WCU986" in texts["es"]
    assert "Nissan Versa bleue" in texts["fr"]
