"""Approval to delivery through a real Redis and real Celery worker processes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Alert, Version
from alertd.audit.services import verify_chain
from alertd.broker import Publisher
from alertd.channels.models import Delivery
from alertd.context import Context
from alertd.outbox.models import OutboxMessage
from alertd.sweeper import sweep
from tests.support.factories import alert_body, make_actor
from tests.support.processes import CeleryProcess, wait_for

pytestmark = pytest.mark.redis


@pytest.fixture
def people(live_ctx: Context) -> tuple[Actor, Actor]:
    return make_actor(live_ctx, "off", "officer"), make_actor(live_ctx, "sup", "supervisor")


def _approve(ctx: Context, people: tuple[Actor, Actor], **body: object) -> Alert:
    officer, supervisor = people
    alert = services.create_alert(ctx, alert_body(**body), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    return services.approve_alert(ctx, alert.id, by=supervisor)


def _deliveries(ctx: Context, alert_id: int, channel: str | None = None) -> list[Delivery]:
    with ctx.db.session() as session:
        query = select(Delivery).where(Delivery.alert_id == alert_id)
        if channel:
            query = query.where(Delivery.channel == channel)
        return list(session.execute(query).scalars())


def _all_terminal(ctx: Context, alert_id: int, expected: int) -> bool:
    rows = _deliveries(ctx, alert_id)
    return len(rows) == expected and all(d.state in ("sent", "skipped") for d in rows)


def test_an_approved_alert_reaches_every_channel_through_a_real_worker(
    live_ctx: Context,
    people: tuple[Actor, Actor],
    start_celery: Callable[..., CeleryProcess],
    sink: Path,
    tmp_path: Path,
) -> None:
    (tmp_path / "flaky-ok").touch()
    start_celery("worker", "--concurrency=2")

    alert = _approve(live_ctx, people)

    # log: 1, recording: 5 phones, flaky: 1 endpoint.
    wait_for(lambda: _all_terminal(live_ctx, alert.id, 7), 30, message="7 deliveries sent")
    lines = sink.read_text().splitlines()
    assert len(lines) == 5 and len({line.split()[0] for line in lines}) == 5
    with live_ctx.db.session() as session:
        [message] = session.execute(select(OutboxMessage)).scalars()
        assert message.published_at is not None and message.consumed_at is not None
        assert verify_chain(session).ok


def test_an_approval_while_the_broker_is_down_is_relayed_by_the_sweeper(
    live_ctx: Context,
    people: tuple[Actor, Actor],
    start_celery: Callable[..., CeleryProcess],
    tmp_path: Path,
) -> None:
    (tmp_path / "flaky-ok").touch()
    down = live_ctx.settings.with_overrides(BROKER_URL="redis://127.0.0.1:9/0")
    live_ctx.publisher = Publisher(down)

    alert = _approve(live_ctx, people)

    with live_ctx.db.session() as session:
        [message] = session.execute(select(OutboxMessage)).scalars()
        assert message.published_at is None  # The approval stands; only the fast path failed.
    start_celery("worker", "--concurrency=1")
    start_celery("beat", "--schedule", str(tmp_path / "beat-schedule"))
    wait_for(
        lambda: _all_terminal(live_ctx, alert.id, 7),
        40,
        message="the relay to dispatch the stranded approval",
    )


def test_a_failing_endpoint_is_retried_until_it_recovers(
    live_ctx: Context,
    people: tuple[Actor, Actor],
    start_celery: Callable[..., CeleryProcess],
    tmp_path: Path,
) -> None:
    start_celery("worker", "--concurrency=2")
    start_celery("beat", "--schedule", str(tmp_path / "beat-schedule"))
    alert = _approve(live_ctx, people)

    wait_for(
        lambda: any(
            d.attempts >= 2 and d.state in ("retry_wait", "sending")
            for d in _deliveries(live_ctx, alert.id, "flaky")
        ),
        30,
        message="a second attempt at the failing endpoint",
    )
    (tmp_path / "flaky-ok").touch()

    wait_for(
        lambda: [d.state for d in _deliveries(live_ctx, alert.id, "flaky")] == ["sent"],
        30,
        message="the endpoint's delivery to succeed",
    )


def test_the_sweeper_expires_an_alert_within_15_seconds(
    live_ctx: Context,
    people: tuple[Actor, Actor],
    start_celery: Callable[..., CeleryProcess],
    tmp_path: Path,
) -> None:
    (tmp_path / "flaky-ok").touch()
    start_celery("worker", "--concurrency=1")
    start_celery("beat", "--schedule", str(tmp_path / "beat-schedule"))
    expires = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    alert = _approve(live_ctx, people, expires_at=expires.isoformat())

    def expired() -> bool:
        with live_ctx.db.session() as session:
            return services.get_alert(session, alert.id).state == "expired"

    wait_for(
        expired,
        (expires - datetime.now(UTC)).total_seconds() + 15,
        message="the sweeper to expire the alert",
    )
    with live_ctx.db.session() as session:
        last = (
            session.execute(
                select(Version).where(Version.alert_id == alert.id).order_by(Version.seq.desc())
            )
            .scalars()
            .first()
        )
        assert last is not None and (last.kind, last.msg_type) == ("expire", "Cancel")
        assert verify_chain(session).ok


def test_two_sweepers_at_once_do_not_both_run(live_ctx: Context) -> None:
    from alertd.sweeper import SWEEP_LOCK, acquire_lock

    assert acquire_lock(live_ctx, SWEEP_LOCK, "other-host", 60)

    assert sweep(live_ctx, holder="this-host") is None
