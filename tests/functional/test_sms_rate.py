"""ALERTD_SMS_RATE paces the sms channel across its sub-batches: the Twilio simulator never
takes more than the rate in any one-second window, and takes every text once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from alertd.actor import Actor
from alertd.alerts import services
from alertd.broker import RecordingPublisher
from alertd.channels.sms import services as sms
from alertd.context import Context
from tests.support import twilio_sim
from tests.support.factories import alert_body
from tests.support.tasks import run_pending_tasks

RATE = 20
PHONES = [f"+1415555{i:04d}" for i in range(50)]


@pytest.fixture
def sim() -> Iterator[twilio_sim.Simulator]:
    with twilio_sim.running() as simulator:
        yield simulator


def _busiest_window(times: list[float], width: float = 1.0) -> int:
    times, best, start = sorted(times), 0, 0
    for end, t in enumerate(times):
        while t - times[start] > width:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_the_sms_rate_holds_across_sub_batches(
    ctx: Context,
    publisher: RecordingPublisher,
    sim: twilio_sim.Simulator,
    officer: Actor,
    supervisor: Actor,
    operator: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given: 50 subscribers in the area, sent in sub-batches of 25 at ALERTD_SMS_RATE=20
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", twilio_sim.ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", twilio_sim.AUTH_TOKEN)
    monkeypatch.setenv("TWILIO_FROM_NUMBER", "+15005550006")
    monkeypatch.setenv("ALERTD_SMS_RATE", str(RATE))
    ctx.settings = ctx.settings.with_overrides(
        CHANNELS="sms", SMS_BACKEND="twilio", TWILIO_API_BASE=sim.url, SEND_BATCH=25
    )
    assert ctx.channels.get("sms") is not None
    assert ctx.channels.get("sms").rate == RATE  # type: ignore[union-attr]
    for phone in PHONES:
        sms.add_subscriber(ctx, {"phone": phone, "areas": ["SAME=006037"]}, by=operator)

    # when
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)
    run_pending_tasks(ctx, publisher)

    # then: each text once, and never more than 20 in a second, by the simulator's clock
    assert sorted(sim.per_number().values()) == [1] * len(PHONES)
    times = [t.at.timestamp() for t in sim.taken]
    assert _busiest_window(times) <= RATE
    assert max(times) - min(times) >= (len(PHONES) - RATE) / RATE
