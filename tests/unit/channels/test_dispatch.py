"""Fan-out in one process: dispatch, plan and deliver called as the tasks call them, with an
in-memory channel whose answers the test decides."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import select

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Alert, Version
from alertd.broker import RecordingPublisher
from alertd.channels import dispatch
from alertd.channels.base import Channel
from alertd.channels.dispatch import planning
from alertd.channels.dispatch.fanout import REENQUEUE_AFTER_SECONDS
from alertd.channels.models import Delivery, Dispatch
from alertd.channels.registry import OUT_RETRY, OUT_SENT, Outcome, Registry
from alertd.context import Context
from alertd.db import utcnow
from tests.support.factories import alert_body


class ScriptedChannel(Channel):
    """Answers from a script: each call pops the next outcome state (default: sent)."""

    name = "scripted"
    idempotent = True
    sends_superseded = False

    def __init__(self) -> None:
        self.script: list[tuple[str, float | None]] = []
        self.sent: list[tuple[str, str]] = []

    def plan(self, ctx: Context, version: Version) -> Iterable[str]:
        return [f"r{i}" for i in range(7)]

    def deliver(
        self, ctx: Context, version: Version, deliveries: Sequence[Delivery]
    ) -> list[Outcome]:
        state, retry_after = self.script.pop(0) if self.script else (OUT_SENT, None)
        if state == OUT_SENT:
            self.sent += [(version.identifier, d.recipient) for d in deliveries]
        return [Outcome(d.id, state, "scripted", retry_after=retry_after) for d in deliveries]


@pytest.fixture
def channel(ctx: Context) -> Iterator[ScriptedChannel]:
    scripted = ScriptedChannel()
    ctx.use_channels(Registry([scripted]))
    yield scripted


def run_tasks(ctx: Context, publisher: RecordingPublisher) -> int:
    """Run every task the publisher holds, as a worker would, until none are left."""
    ran = 0
    while publisher.sent:
        name, args = publisher.sent.pop(0)
        if name == "alertd.dispatch_version":
            dispatch.dispatch_version(ctx, *args)
        elif name == "alertd.plan_dispatch":
            dispatch.plan_dispatch(ctx, *args)
        elif name == "alertd.deliver_batch":
            dispatch.deliver_batch(ctx, *args)
        ran += 1
    return ran


def _active(ctx: Context, officer: Actor, supervisor: Actor) -> Alert:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    return services.approve_alert(ctx, alert.id, by=supervisor)


def _states(ctx: Context) -> list[str]:
    with ctx.db.session() as session:
        return sorted(session.execute(select(Delivery.state)).scalars())


def test_one_delivery_row_per_recipient_and_each_sent_once(
    ctx: Context,
    publisher: RecordingPublisher,
    channel: ScriptedChannel,
    officer: Actor,
    supervisor: Actor,
) -> None:
    _active(ctx, officer, supervisor)
    dispatch_task = list(publisher.sent)

    run_tasks(ctx, publisher)
    publisher.sent.extend(dispatch_task * 2)  # The broker delivers the first task twice more.
    run_tasks(ctx, publisher)

    assert _states(ctx) == ["sent"] * 7
    assert len(channel.sent) == len(set(channel.sent)) == 7
    with ctx.db.session() as session:
        assert len(session.execute(select(Dispatch)).all()) == 1


def test_planning_twice_creates_nothing_new(
    ctx: Context,
    publisher: RecordingPublisher,
    channel: ScriptedChannel,
    officer: Actor,
    supervisor: Actor,
) -> None:
    _active(ctx, officer, supervisor)
    run_tasks(ctx, publisher)
    with ctx.db.session() as session:
        dispatch_id = session.execute(select(Dispatch.id)).scalar_one()
    with ctx.db.transaction() as session:
        row = session.get(Dispatch, dispatch_id)
        assert row is not None
        row.state = "pending"  # As if the planning task crashed and ran again.

    dispatch.plan_dispatch(ctx, dispatch_id)
    run_tasks(ctx, publisher)

    assert _states(ctx) == ["sent"] * 7 and len(channel.sent) == 7


def test_the_sweeper_leaves_a_queued_backlog_alone_while_a_worker_sends_its_dispatch(
    ctx: Context,
    publisher: RecordingPublisher,
    channel: ScriptedChannel,
    officer: Actor,
    supervisor: Actor,
) -> None:
    # given: rows whose tasks were queued long ago, and one row of the dispatch in a worker's hands
    _active(ctx, officer, supervisor)
    while publisher.sent and publisher.sent[0][0] != "alertd.deliver_batch":
        name, args = publisher.sent.pop(0)
        getattr(dispatch, name.split(".")[1])(ctx, *args)
    publisher.sent.clear()  # The delivery tasks wait in the broker.
    long_ago = utcnow() - timedelta(seconds=REENQUEUE_AFTER_SECONDS + 1)
    with ctx.db.transaction() as session:
        rows = list(session.execute(select(Delivery).order_by(Delivery.id)).scalars())
        for row in rows:
            row.enqueued_at = long_ago
        rows[0].state, rows[0].lease_until = "sending", utcnow() + timedelta(seconds=60)

    # when
    dispatch.resume_stalled(ctx)

    # then: a backlog being worked through is not queued again
    assert publisher.sent == []

    # and when no worker holds any of its rows, the rows are queued again, once
    with ctx.db.transaction() as session:
        session.get_one(Delivery, rows[0].id).state = "pending"
    dispatch.resume_stalled(ctx)
    queued = [i for name, (_, ids) in publisher.sent for i in ids if name == "alertd.deliver_batch"]
    assert sorted(queued) == [r.id for r in rows]
    publisher.sent.clear()
    dispatch.resume_stalled(ctx)
    assert publisher.sent == []


def test_a_retry_waits_for_its_time_and_then_succeeds(
    ctx: Context,
    publisher: RecordingPublisher,
    channel: ScriptedChannel,
    officer: Actor,
    supervisor: Actor,
) -> None:
    channel.script = [(OUT_RETRY, 120.0)]
    _active(ctx, officer, supervisor)
    run_tasks(ctx, publisher)
    assert set(_states(ctx)) == {"retry_wait"}

    dispatch.resume_stalled(ctx)  # Not due yet: nothing is sent.
    run_tasks(ctx, publisher)
    assert set(_states(ctx)) == {"retry_wait"} and channel.sent == []

    with ctx.db.transaction() as session:
        for row in session.execute(select(Delivery)).scalars():
            assert row.next_attempt_at > utcnow() + timedelta(seconds=100)  # Retry-After held.
            row.next_attempt_at = utcnow() - timedelta(seconds=1)
    dispatch.resume_stalled(ctx)
    run_tasks(ctx, publisher)

    assert _states(ctx) == ["sent"] * 7


def test_a_delivery_gives_up_after_the_attempt_limit(
    ctx: Context,
    publisher: RecordingPublisher,
    channel: ScriptedChannel,
    officer: Actor,
    supervisor: Actor,
) -> None:
    limit = ctx.settings.DELIVERY_MAX_ATTEMPTS
    channel.script = [(OUT_RETRY, 0.0)] * (limit + 5)
    _active(ctx, officer, supervisor)
    run_tasks(ctx, publisher)

    for _ in range(limit + 2):
        dispatch.resume_stalled(ctx)
        with ctx.db.transaction() as session:
            for row in session.execute(select(Delivery)).scalars():
                row.enqueued_at = None
        run_tasks(ctx, publisher)

    assert set(_states(ctx)) == {"failed"}
    with ctx.db.session() as session:
        assert {r.attempts for r in session.execute(select(Delivery)).scalars()} == {limit}


def test_a_superseded_version_is_skipped_not_sent(
    ctx: Context,
    publisher: RecordingPublisher,
    channel: ScriptedChannel,
    officer: Actor,
    supervisor: Actor,
    operator: Actor,
) -> None:
    alert = _active(ctx, officer, supervisor)
    services.cancel_alert(ctx, alert.id, "error", by=operator)  # Before any worker ran.

    run_tasks(ctx, publisher)

    assert {identifier.rsplit(".", 1)[1] for identifier, _ in channel.sent} == {"2"}
    assert _states(ctx).count("skipped") == 7


def test_an_expired_lease_of_an_idempotent_channel_is_retried(
    ctx: Context,
    publisher: RecordingPublisher,
    channel: ScriptedChannel,
    officer: Actor,
    supervisor: Actor,
) -> None:
    _active(ctx, officer, supervisor)
    run_tasks(ctx, publisher)
    with ctx.db.transaction() as session:
        for row in session.execute(select(Delivery)).scalars():
            row.state, row.lease_until = "sending", utcnow() - timedelta(seconds=1)

    assert dispatch.reclaim_expired_leases(ctx) == 7

    assert set(_states(ctx)) == {"retry_wait"}


def test_a_channel_whose_planning_keeps_failing_ends_failed_not_retried_forever(
    ctx: Context,
    publisher: RecordingPublisher,
    channel: ScriptedChannel,
    officer: Actor,
    supervisor: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_plan(ctx: Context, version: Version) -> Iterable[str]:
        raise RuntimeError("subscriber lookup failed")

    monkeypatch.setattr(channel, "plan", broken_plan)
    _active(ctx, officer, supervisor)
    run_tasks(ctx, publisher)

    for _ in range(planning.MAX_PLAN_ATTEMPTS):
        with ctx.db.transaction() as session:  # The planning lease runs out.
            for row in session.execute(select(Dispatch)).scalars():
                row.lease_until = utcnow() - timedelta(seconds=1)
        dispatch.resume_stalled(ctx)
        run_tasks(ctx, publisher)

    with ctx.db.session() as session:
        row = session.execute(select(Dispatch)).scalar_one()
        assert (row.state, row.plan_attempts) == ("failed", planning.MAX_PLAN_ATTEMPTS)
        assert "subscriber lookup failed" in row.error
