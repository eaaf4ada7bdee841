"""The global limiter with real processes: two Celery workers sending to one rated channel stay
under its rate in every one-second window, and a storm of HTTP 429 answers fails nothing and
uses up no attempt. The achieved rate's figure is the benchmark's (benchmarks/limiter.py)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from alertd.alerts import services
from alertd.broker import Publisher
from alertd.channels.models import Delivery
from alertd.context import Context, make_context
from tests.support.factories import alert_body, make_actor
from tests.support.processes import CeleryProcess, wait_for

pytestmark = pytest.mark.redis

RATE = 200
RECIPIENTS = 700


def busiest_window(times: list[float], width: float = 1.0) -> int:
    """The most timestamps in any window of ``width`` seconds, closed at both ends."""
    times, best, start = sorted(times), 0, 0
    for end, t in enumerate(times):
        while t - times[start] > width:
            start += 1
        best = max(best, end - start + 1)
    return best


def _approve(ctx: Context) -> int:
    officer = make_actor(ctx, "off", "officer")
    supervisor = make_actor(ctx, "sup", "supervisor")
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)
    return alert.id


def _rows(ctx: Context, alert_id: int, channel: str) -> list[Delivery]:
    with ctx.db.session() as session:
        return list(
            session.execute(
                select(Delivery).where(Delivery.alert_id == alert_id, Delivery.channel == channel)
            ).scalars()
        )


@pytest.mark.parametrize("broker", ["redis", "embedded"])
def test_two_workers_together_stay_under_the_rate_in_every_second(
    live_ctx: Context,
    worker_env: dict[str, str],
    start_celery: Callable[..., CeleryProcess],
    sink: Path,
    broker: str,
) -> None:
    # given: two worker processes sharing one Redis (or, on the embedded default, one broker
    # file and one bucket file), a channel that answers at once, R = 200/s
    ctx = live_ctx
    if broker == "embedded":
        settings = live_ctx.settings.with_overrides(BROKER_URL="")
        ctx = make_context(settings, Publisher(settings))
    env = worker_env | {
        "ALERTD_BROKER_URL": ctx.settings.broker_url,
        "ALERTD_CHANNELS": "tests.support.channels:RecordingChannel",
        "ALERTD_RECORDING_RATE": str(RATE),
        "ALERTD_TEST_RECIPIENTS": str(RECIPIENTS),
        "ALERTD_DELIVERY_BATCH_SIZE": "100",
        "ALERTD_SEND_BATCH": "25",
    }
    for _ in range(2):
        start_celery("worker", "--concurrency=1", env=env)

    # when
    alert_id = _approve(ctx)

    def finished() -> bool:
        rows = _rows(ctx, alert_id, "recording")
        return len(rows) == RECIPIENTS and all(d.state == "sent" for d in rows)

    wait_for(finished, 60, interval=0.2, message=f"{RECIPIENTS} deliveries sent")

    # then: every delivery left once, never more than R in any one-second window...
    lines = [line.split() for line in sink.read_text().splitlines()]
    assert sorted(Counter(line[0] for line in lines).values()) == [1] * RECIPIENTS
    times = [float(line[3]) for line in lines]
    assert busiest_window(times) <= RATE
    # ...and the pace was near it: half of R is a floor no shared machine should miss; the
    # benchmark measures the real figure.
    achieved = (len(times) - 1) / (max(times) - min(times))
    assert achieved > RATE * 0.5
    assert max(times) - min(times) >= (RECIPIENTS - RATE) / RATE
    if ctx is not live_ctx:
        ctx.close()


def test_a_storm_of_429s_delays_but_fails_nothing_and_uses_no_attempt(
    live_ctx: Context,
    worker_env: dict[str, str],
    start_celery: Callable[..., CeleryProcess],
    sink: Path,
    tmp_path: Path,
) -> None:
    # given: a provider that answers 429 (Retry-After 0.5 s) for four seconds, and only two
    # attempts allowed: a 429 that used one up would fail every delivery
    recipients = 40
    env = worker_env | {
        "ALERTD_CHANNELS": "tests.support.channels:StormChannel",
        "ALERTD_STORM_RATE": "100",
        "ALERTD_TEST_RECIPIENTS": str(recipients),
        "ALERTD_TEST_STORM": str(tmp_path / "storm"),
        "ALERTD_DELIVERY_MAX_ATTEMPTS": "2",
        "ALERTD_DELIVERY_BATCH_SIZE": "20",
        "ALERTD_SEND_BATCH": "10",
    }
    for _ in range(2):
        start_celery("worker", "--concurrency=1", env=env)
    start_celery("beat", "--schedule", str(tmp_path / "beat-schedule"), env=env)

    (tmp_path / "storm").touch()

    # when: the storm lasts four seconds after approval
    alert_id = _approve(live_ctx)
    time.sleep(4)
    (tmp_path / "storm").unlink()

    def settled() -> list[Delivery]:
        rows = _rows(live_ctx, alert_id, "storm")
        done = len(rows) == recipients and all(d.state in ("sent", "failed") for d in rows)
        return rows if done else []

    rows = wait_for(settled, 90, interval=0.2, message=f"{recipients} deliveries settled")

    # then: nothing failed, every delivery was accepted exactly once, after several 429s...
    assert {d.state for d in rows} == {"sent"}
    answers = [line.split() for line in sink.read_text().splitlines()]
    accepted = Counter(a[0] for a in answers if a[1] == "sent")
    throttled = Counter(a[0] for a in answers if a[1] == "throttled")
    assert sorted(accepted.values()) == [1] * recipients
    assert set(accepted) == {str(d.id) for d in rows}
    assert min(throttled[str(d.id)] for d in rows) >= 1
    # With two attempts allowed, a delivery refused twice would have failed had a 429 used one.
    assert sum(1 for d in rows if throttled[str(d.id)] >= 2) >= recipients // 2
    # ...and the 429s gave their attempts back: the accepted request was the only one counted.
    assert {d.attempts for d in rows} == {1}
