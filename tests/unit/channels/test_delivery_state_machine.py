"""Hypothesis drives the delivery machinery through orders no hand-written test thinks of:
tasks run in any order and more than once, workers die after a request left, leases expire,
the sweeper runs at any moment, and the alert is cancelled in between. Whatever happens, no
phone gets a version twice, nothing is recorded as sent that was not, nothing is sent after the
cancel committed, every delivery ends in a terminal state, and the audit chain verifies."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select, update

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Version
from alertd.audit.services import verify_chain
from alertd.broker import RecordingPublisher
from alertd.channels import dispatch
from alertd.channels.base import Channel
from alertd.channels.dispatch import claim as claim_steps
from alertd.channels.models import SENDING, TERMINAL_STATES, Delivery
from alertd.channels.registry import (
    OUT_FAILED,
    OUT_RETRY,
    OUT_SENT,
    Outcome,
    Registry,
)
from alertd.context import Context
from alertd.db import utcnow
from tests.support.database import empty_tables
from tests.support.factories import alert_body, make_actor

PHONES = 5


class PhoneChannel(Channel):
    """Like SMS: not idempotent. Every send that 'reaches a phone' is logged with its moment."""

    name = "phones"
    idempotent = False
    sends_superseded = False

    def __init__(self) -> None:
        self.answers: list[str] = []
        self.log: list[tuple[int, str, str]] = []  # (event number, version, recipient)
        self.clock = 0

    def plan(self, ctx: Context, version: Version) -> Iterable[str]:
        return [f"+1555000{i:04d}" for i in range(PHONES)]

    def deliver(
        self, ctx: Context, version: Version, deliveries: Sequence[Delivery]
    ) -> list[Outcome]:
        answer = self.answers.pop(0) if self.answers else OUT_SENT
        outcomes = []
        for delivery in deliveries:
            if answer == OUT_SENT:
                self.clock += 1
                self.log.append((self.clock, version.identifier, delivery.recipient))
            outcomes.append(Outcome(delivery.id, answer, "scripted"))
        return outcomes


@pytest.fixture
def phones(ctx: Context) -> Iterator[PhoneChannel]:
    channel = PhoneChannel()
    ctx.use_channels(Registry([channel]))
    yield channel


def test_the_delivery_machinery_under_any_interleaving(
    ctx: Context, publisher: RecordingPublisher, phones: PhoneChannel
) -> None:
    class Deliveries(RuleBasedStateMachine):
        @initialize()
        def approve(self) -> None:
            empty_tables(ctx.db)
            publisher.sent.clear()
            phones.log.clear()
            phones.answers.clear()
            self.history: list[tuple[str, list[object]]] = []
            self.cancelled_at: int | None = None
            officer = make_actor(ctx, "o", "officer")
            supervisor = make_actor(ctx, "s", "supervisor")
            self.operator: Actor = make_actor(ctx, "p", "operator")
            alert = services.create_alert(ctx, alert_body(), by=officer)
            services.submit_alert(ctx, alert.id, by=officer)
            self.alert = services.approve_alert(ctx, alert.id, by=supervisor)

        @precondition(lambda self: bool(publisher.sent))
        @rule(data=st.data())
        def run_a_task(self, data: st.DataObject) -> None:
            index = data.draw(st.integers(0, len(publisher.sent) - 1))
            name, args = publisher.sent.pop(index)
            self.history.append((name, args))
            {
                "alertd.dispatch_version": dispatch.dispatch_version,
                "alertd.plan_dispatch": dispatch.plan_dispatch,
                "alertd.deliver_batch": dispatch.deliver_batch,
            }[name](ctx, *args)

        @precondition(lambda self: bool(self.history))
        @rule(data=st.data())
        def broker_redelivers_a_task(self, data: st.DataObject) -> None:
            publisher.sent.append(data.draw(st.sampled_from(self.history)))

        @rule(answer=st.sampled_from([OUT_SENT, OUT_RETRY, OUT_FAILED]))
        def gateway_answers_next(self, answer: str) -> None:
            phones.answers.append(answer)

        @rule()
        def worker_dies_after_a_request_left(self) -> None:
            with ctx.db.session() as session:
                due = (
                    session.execute(
                        select(Delivery)
                        .where(
                            Delivery.state.in_(("pending", "retry_wait")),
                            Delivery.next_attempt_at <= utcnow(),
                        )
                        .limit(1)
                    )
                    .scalars()
                    .all()
                )
            if not due:
                return
            taken = claim_steps.claim(ctx, due[0].dispatch_id, [due[0].id], 1)
            if taken is None:
                return
            if taken.marked:
                phones.answers.insert(0, OUT_SENT)
                # ...and the worker dies here.
                taken.channel.deliver(ctx, taken.version, taken.marked)

        @rule()
        def leases_expire(self) -> None:
            with ctx.db.transaction() as session:
                session.execute(
                    update(Delivery)
                    .where(Delivery.state == SENDING)
                    .values(lease_until=utcnow() - timedelta(seconds=1))
                )
            dispatch.reclaim_expired_leases(ctx)

        @rule()
        def time_passes_and_the_sweeper_runs(self) -> None:
            with ctx.db.transaction() as session:
                session.execute(
                    update(Delivery).values(
                        next_attempt_at=utcnow() - timedelta(seconds=1), enqueued_at=None
                    )
                )
            dispatch.resume_stalled(ctx)

        @precondition(lambda self: self.cancelled_at is None)
        @rule()
        def cancel(self) -> None:
            services.cancel_alert(ctx, self.alert.id, "found", by=self.operator)
            self.cancelled_at = phones.clock

        @invariant()
        def no_phone_gets_a_version_twice(self) -> None:
            sends = Counter((v, r) for _, v, r in phones.log)
            assert all(n == 1 for n in sends.values()), sends

        @invariant()
        def nothing_of_the_alert_is_sent_after_the_cancel(self) -> None:
            if self.cancelled_at is not None:
                first = self.alert.versions[0].identifier
                assert not [e for e in phones.log if e[1] == first and e[0] > self.cancelled_at]

        def teardown(self) -> None:
            if not hasattr(self, "alert"):
                return
            phones.answers.clear()
            for _ in range(20):  # Time passes: the sweeper and workers finish everything.
                self.leases_expire()
                self.time_passes_and_the_sweeper_runs()
                while publisher.sent:
                    name, args = publisher.sent.pop(0)
                    {
                        "alertd.dispatch_version": dispatch.dispatch_version,
                        "alertd.plan_dispatch": dispatch.plan_dispatch,
                        "alertd.deliver_batch": dispatch.deliver_batch,
                    }[name](ctx, *args)
            with ctx.db.session() as session:
                rows = session.execute(select(Delivery)).scalars().all()
                assert rows and all(d.state in TERMINAL_STATES for d in rows), Counter(
                    d.state for d in rows
                )
                sent = Counter((d.version_id, d.recipient) for d in rows if d.state == "sent")
                logged = Counter(phones.log)
                assert len(sent) == sum(sent.values())
                assert sum(sent.values()) <= len(logged)
                assert verify_chain(session).ok
            self.no_phone_gets_a_version_twice()

    run_state_machine_as_test(
        Deliveries,
        settings=settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
