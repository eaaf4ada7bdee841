"""Sub-batched sending for channels that are not idempotent (ALERTD_SEND_BATCH), the defined
states when a channel misbehaves, and the sweeper's reconcile of unknown outcomes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Select, literal, select, union_all, update
from sqlalchemy.exc import OperationalError

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Alert, Version
from alertd.broker import RecordingPublisher
from alertd.channels import dispatch
from alertd.channels.base import Channel
from alertd.channels.dispatch import planning
from alertd.channels.models import Delivery
from alertd.channels.registry import OUT_RETRY, OUT_SENT, Outcome, Registry
from alertd.context import Context
from alertd.db import utcnow
from alertd.settings import Settings, load_settings
from tests.support.factories import alert_body

RECIPIENTS = 7
SEND_BATCH = 3


class Phones(Channel):
    """Not idempotent; what each call does is set by the test through ``mode``."""

    name = "phones"
    idempotent = False

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.provider_record: set[int] = set()  # What the provider says it received.
        self.mode = "ok"
        self.on_first_call: object = None

    def plan(self, ctx: Context, version: Version) -> Iterable[str]:
        return [f"+1555000{i:04d}" for i in range(RECIPIENTS)]

    def deliver(
        self, ctx: Context, version: Version, deliveries: Sequence[Delivery]
    ) -> list[Outcome]:
        self.calls.append([d.recipient for d in deliveries])
        if len(self.calls) == 1 and callable(self.on_first_call):
            self.on_first_call()
        self.provider_record |= {d.id for d in deliveries}
        if self.mode == "raise" and len(self.calls) == 1:
            raise ConnectionError("gateway hung up")
        if self.mode == "bogus" and len(self.calls) == 1:
            return [Outcome(d.id, "delivered-ish") for d in deliveries]
        if self.mode == "too_few":
            return [Outcome(deliveries[0].id, OUT_SENT)]
        return [Outcome(d.id, OUT_SENT) for d in deliveries]

    def reconcile(self, ctx: Context, deliveries: Sequence[Delivery]) -> list[Outcome]:
        # The provider's own record decides: received means sent, never received means retry.
        return [
            Outcome(d.id, OUT_SENT if d.id in self.provider_record else OUT_RETRY, "reconciled")
            for d in deliveries
        ]


class Webhook(Phones):
    name = "hooks"
    idempotent = True


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return load_settings(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": db_url,
            "SECRET_KEY": "test-secret-key",
            "CHANNELS": "log",
            "PUBLIC_URL": "http://alertd.test",
            "SEND_BATCH": SEND_BATCH,
        },
        environ={},
    )


@pytest.fixture
def phones(ctx: Context) -> Iterator[Phones]:
    channel = Phones()
    ctx.use_channels(Registry([channel]))
    yield channel


def _run(ctx: Context, publisher: RecordingPublisher) -> None:
    steps = {
        "alertd.dispatch_version": dispatch.dispatch_version,
        "alertd.plan_dispatch": dispatch.plan_dispatch,
        "alertd.deliver_batch": dispatch.deliver_batch,
    }
    while publisher.sent:
        name, args = publisher.sent.pop(0)
        if name in steps:
            steps[name](ctx, *args)


def _approve(ctx: Context, officer: Actor, supervisor: Actor) -> Alert:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    return services.approve_alert(ctx, alert.id, by=supervisor)


def _rows(ctx: Context) -> list[Delivery]:
    with ctx.db.session() as session:
        return list(session.execute(select(Delivery).order_by(Delivery.id)).scalars())


def test_a_non_idempotent_channel_gets_sub_batches_each_marked_once(
    ctx: Context, publisher: RecordingPublisher, phones: Phones, officer: Actor, supervisor: Actor
) -> None:
    _approve(ctx, officer, supervisor)
    _run(ctx, publisher)
    assert [len(call) for call in phones.calls] == [3, 3, 1]
    rows = _rows(ctx)
    assert [d.state for d in rows] == ["sent"] * RECIPIENTS
    assert all(d.attempts == 1 and d.attempted_at is not None for d in rows)


def test_a_cancel_stops_new_requests_within_one_sub_batch(
    ctx: Context,
    publisher: RecordingPublisher,
    phones: Phones,
    officer: Actor,
    supervisor: Actor,
    operator: Actor,
) -> None:
    alert = _approve(ctx, officer, supervisor)
    phones.on_first_call = lambda: services.cancel_alert(ctx, alert.id, "found", by=operator)
    _run(ctx, publisher)
    assert len(phones.calls[0]) == SEND_BATCH
    # The marked sub-batch left; every other row of the alert version was skipped, not sent.
    rows = _rows(ctx)
    first = [d for d in rows if d.dispatch_id == rows[0].dispatch_id]
    assert sorted(d.state for d in first) == ["sent"] * SEND_BATCH + ["skipped"] * (
        RECIPIENTS - SEND_BATCH
    )


@pytest.mark.parametrize(("mode", "expected"), [("raise", "unknown"), ("bogus", "unknown")])
def test_a_channel_that_raises_or_answers_nonsense_leaves_one_sub_batch_unknown(
    ctx: Context,
    publisher: RecordingPublisher,
    phones: Phones,
    officer: Actor,
    supervisor: Actor,
    mode: str,
    expected: str,
) -> None:
    phones.mode = mode
    _approve(ctx, officer, supervisor)
    _run(ctx, publisher)
    states = [d.state for d in _rows(ctx)]
    assert sorted(states) == ["sent"] * (RECIPIENTS - SEND_BATCH) + [expected] * SEND_BATCH


def test_rows_left_without_an_outcome_are_unknown_not_left_sending(
    ctx: Context, publisher: RecordingPublisher, phones: Phones, officer: Actor, supervisor: Actor
) -> None:
    phones.mode = "too_few"
    _approve(ctx, officer, supervisor)
    _run(ctx, publisher)
    rows = _rows(ctx)
    assert sorted(d.state for d in rows) == ["sent"] * 3 + ["unknown"] * (RECIPIENTS - 3)
    assert all(d.lease_until is None for d in rows)
    assert {d.last_error for d in rows if d.state == "unknown"} == {"channel returned no outcome"}


def test_an_idempotent_channel_retries_rows_left_without_an_outcome(
    ctx: Context, publisher: RecordingPublisher, officer: Actor, supervisor: Actor
) -> None:
    hooks = Webhook()
    hooks.mode = "too_few"
    ctx.use_channels(Registry([hooks]))
    _approve(ctx, officer, supervisor)
    _run(ctx, publisher)
    assert [len(call) for call in hooks.calls] == [RECIPIENTS]  # Idempotent: one call.
    assert sorted(d.state for d in _rows(ctx)) == ["retry_wait"] * (RECIPIENTS - 1) + ["sent"]


def test_the_sweeper_reconciles_unknown_outcomes_from_the_channels_own_record(
    ctx: Context, publisher: RecordingPublisher, phones: Phones, officer: Actor, supervisor: Actor
) -> None:
    phones.mode = "raise"
    _approve(ctx, officer, supervisor)
    _run(ctx, publisher)
    unknown = [d.id for d in _rows(ctx) if d.state == "unknown"]
    assert len(unknown) == SEND_BATCH
    # The provider received the first two only; the third request never arrived.
    phones.provider_record.discard(unknown[2])

    assert dispatch.reconcile_unknown(ctx) == SEND_BATCH
    by_id = {d.id: d for d in _rows(ctx)}
    assert [by_id[i].state for i in unknown] == ["sent", "sent", "retry_wait"]
    assert dispatch.reconcile_unknown(ctx) == 0  # Nothing unknown is left to ask about.

    dispatch.resume_stalled(ctx)
    _run(ctx, publisher)
    assert [d.state for d in _rows(ctx)] == ["sent"] * RECIPIENTS
    sends = [r for call in phones.calls for r in call]
    assert len(sends) == RECIPIENTS + 1  # Only the request that never arrived went twice.


def test_a_planned_chunk_is_queued_before_the_next_chunk_is_written(
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    size = ctx.settings.DELIVERY_BATCH_SIZE
    monkeypatch.setattr(planning, "PLAN_CHUNK", size)
    queued_when_second_chunk_began: list[int] = []

    class Many(Phones):
        def plan(self, ctx: Context, version: Version) -> Iterable[str]:
            for i in range(2 * size + 1):
                if i == size:
                    queued_when_second_chunk_began.extend(
                        len(args[1])
                        for name, args in publisher.sent
                        if name == "alertd.deliver_batch"
                    )
                yield f"+1555{i:07d}"

    many = Many()
    ctx.use_channels(Registry([many]))
    _approve(ctx, officer, supervisor)
    _run(ctx, publisher)
    assert queued_when_second_chunk_began == [size]
    assert sum(len(call) for call in many.calls) == 2 * size + 1  # Each row sent once.
    assert [d.state for d in _rows(ctx)] == ["sent"] * (2 * size + 1)


def test_recipients_given_as_a_query_are_copied_in_chunks_and_sent_once(
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Chunks smaller than SQLite's 500 terms of a compound SELECT (the UNION below).
    monkeypatch.setattr(planning, "PLAN_CHUNK", 100)
    count = 2 * 100 + 1  # Three chunks: the cursor moves twice.
    numbers = union_all(*(select(literal(f"+1555{i:07d}").label("r")) for i in range(count)))

    class Listed(Phones):
        def plan(self, ctx: Context, version: Version) -> Iterable[str]:
            raise AssertionError("plan_query is used instead")

        def plan_query(self, ctx: Context, version: Version) -> Select[tuple[str]] | None:
            table = numbers.subquery()
            return select(table.c.r)

    listed = Listed()
    ctx.use_channels(Registry([listed]))
    _approve(ctx, officer, supervisor)
    _run(ctx, publisher)
    rows = _rows(ctx)
    first = [d for d in rows if d.dispatch_id == rows[0].dispatch_id]
    assert sorted(d.recipient for d in first) == [f"+1555{i:07d}" for i in range(count)]
    assert all(d.state == "sent" for d in first)
    assert sum(len(call) for call in listed.calls) == count  # Each sent once.


def test_the_database_dropping_while_outcomes_are_recorded_loses_no_accepted_send(
    ctx: Context,
    publisher: RecordingPublisher,
    phones: Phones,
    officer: Actor,
    supervisor: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The provider accepts the first sub-batch; then the database is gone before its outcomes
    # are written, and back for the sweeper. Nothing the provider accepted may be sent again.
    down = {"now": False}
    transaction = ctx.db.transaction

    def flaky_transaction() -> Any:
        if down["now"]:
            raise OperationalError("UPDATE deliveries", {}, ConnectionError("server closed"))
        return transaction()

    monkeypatch.setattr(ctx.db, "transaction", flaky_transaction)
    phones.on_first_call = lambda: down.update(now=True)
    _approve(ctx, officer, supervisor)
    with pytest.raises(OperationalError):
        _run(ctx, publisher)
    down["now"] = False
    publisher.sent.clear()  # The task that failed is gone; only the sweeper brings work back.

    first = phones.calls[0]
    # Nothing recorded it: the rows are still held by the dead attempt, not marked sent.
    held = [d for d in _rows(ctx) if d.recipient in first]
    assert {d.state for d in held} == {"sending"}

    with ctx.db.transaction() as session:  # The lease runs out.
        session.execute(update(Delivery).values(lease_until=utcnow() - timedelta(seconds=1)))
    dispatch.reclaim_expired_leases(ctx)
    assert {d.state for d in _rows(ctx) if d.recipient in first} == {"unknown"}
    assert dispatch.reconcile_unknown(ctx) == SEND_BATCH
    with ctx.db.transaction() as session:  # The rest come due for the sweeper.
        session.execute(
            update(Delivery)
            .where(Delivery.state != "sent")
            .values(next_attempt_at=utcnow() - timedelta(seconds=1), enqueued_at=None)
        )
    dispatch.resume_stalled(ctx)
    _run(ctx, publisher)

    assert [d.state for d in _rows(ctx)] == ["sent"] * RECIPIENTS
    sends = [r for call in phones.calls for r in call]
    assert sorted(sends) == sorted(set(sends))  # No phone got the alert twice.
    assert len(sends) == RECIPIENTS
