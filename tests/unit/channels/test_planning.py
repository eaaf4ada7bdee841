"""Planning in time slices: a planning task stops after PLAN_SLICE_SECONDS and re-queues itself
with its cursor; a task lost mid-way is resumed by the sweeper from its last committed chunk;
a planner whose lease was taken stops without writing. Every recipient is planned and sent once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import Select, literal, select, union_all, update

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Alert, Version
from alertd.broker import RecordingPublisher
from alertd.channels import dispatch
from alertd.channels.base import Channel
from alertd.channels.dispatch import planning
from alertd.channels.models import Delivery, Dispatch
from alertd.channels.registry import OUT_SENT, Outcome, Registry
from alertd.context import Context
from alertd.db import utcnow
from tests.support.factories import alert_body

RECIPIENTS = 10
CHUNK = 3


class Crash(BaseException):
    """A worker child killed mid-plan: nothing after it runs in that process."""


class Phones(Channel):
    name = "phones"
    idempotent = False

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.on_yield: dict[int, object] = {}

    def plan(self, ctx: Context, version: Version) -> Iterable[str]:
        for i in range(RECIPIENTS):
            hook = self.on_yield.get(i)
            if callable(hook):
                hook()
            yield f"+1555{i:07d}"

    def deliver(
        self, ctx: Context, version: Version, deliveries: Sequence[Delivery]
    ) -> list[Outcome]:
        self.sent += [d.recipient for d in deliveries]
        return [Outcome(d.id, OUT_SENT) for d in deliveries]


@pytest.fixture
def phones(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> Iterator[Phones]:
    monkeypatch.setattr(planning, "PLAN_CHUNK", CHUNK)
    channel = Phones()
    ctx.use_channels(Registry([channel]))
    yield channel


def _run(ctx: Context, publisher: RecordingPublisher) -> list[str]:
    steps = {
        "alertd.dispatch_version": dispatch.dispatch_version,
        "alertd.plan_dispatch": dispatch.plan_dispatch,
        "alertd.deliver_batch": dispatch.deliver_batch,
    }
    ran = []
    while publisher.sent:
        name, args = publisher.sent.pop(0)
        if name in steps:
            steps[name](ctx, *args)
            ran.append(name)
    return ran


def _approve(ctx: Context, officer: Actor, supervisor: Actor) -> Alert:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    return services.approve_alert(ctx, alert.id, by=supervisor)


def _dispatch(ctx: Context) -> Dispatch:
    with ctx.db.session() as session:
        return session.execute(select(Dispatch)).scalar_one()


def _expire_plan_lease(ctx: Context) -> None:
    with ctx.db.transaction() as session:
        session.execute(update(Dispatch).values(lease_until=utcnow() - timedelta(seconds=1)))


def _all_sent_once(ctx: Context, phones: Phones) -> None:
    with ctx.db.session() as session:
        rows = list(session.execute(select(Delivery)).scalars())
    assert sorted(d.recipient for d in rows) == [f"+1555{i:07d}" for i in range(RECIPIENTS)]
    assert {d.state for d in rows} == {"sent"}
    assert sorted(phones.sent) == sorted(d.recipient for d in rows)  # Each sent once.
    planned = _dispatch(ctx)
    assert (planned.state, planned.planned_count) == ("planned", RECIPIENTS)


def test_a_used_up_slice_re_queues_the_task_which_goes_on_from_its_cursor(
    ctx: Context,
    publisher: RecordingPublisher,
    phones: Phones,
    officer: Actor,
    supervisor: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(planning, "PLAN_SLICE_SECONDS", 0.0)  # Every chunk ends its slice.
    _approve(ctx, officer, supervisor)
    ran = _run(ctx, publisher)
    # One task per chunk (4 chunks of at most 3), each going on where the last stopped, then a
    # fifth finds nothing past the cursor and ends the plan.
    assert ran.count("alertd.plan_dispatch") == 5
    _all_sent_once(ctx, phones)


def test_a_planning_task_lost_mid_way_is_resumed_by_the_sweeper_from_its_last_chunk(
    ctx: Context, publisher: RecordingPublisher, phones: Phones, officer: Actor, supervisor: Actor
) -> None:
    def crash() -> None:
        del phones.on_yield[CHUNK + 1]  # Once: the resumed task reads past it.
        raise Crash

    phones.on_yield[CHUNK + 1] = crash  # Dies inside the second chunk: the first is committed.
    _approve(ctx, officer, supervisor)
    with pytest.raises(Crash):
        _run(ctx, publisher)
    lost = _dispatch(ctx)
    assert (lost.state, lost.planned_count) == ("planning", CHUNK)

    dispatch.resume_stalled(ctx)
    assert "alertd.plan_dispatch" not in [name for name, _ in publisher.sent]  # Lease holds.
    _run(ctx, publisher)  # The first chunk's deliveries still go.
    assert len(phones.sent) == CHUNK
    _expire_plan_lease(ctx)
    dispatch.resume_stalled(ctx)
    _run(ctx, publisher)
    _all_sent_once(ctx, phones)


def test_a_planner_whose_lease_was_taken_stops_and_its_rival_finishes(
    ctx: Context, publisher: RecordingPublisher, phones: Phones, officer: Actor, supervisor: Actor
) -> None:
    def rival_takes_over() -> None:
        _expire_plan_lease(ctx)
        # The sweeper's rival runs to the end while the first planner is between chunks.
        phones.on_yield.clear()
        dispatch.plan_dispatch(ctx, _dispatch(ctx).id)

    phones.on_yield[CHUNK + 1] = rival_takes_over
    _approve(ctx, officer, supervisor)
    _run(ctx, publisher)
    _all_sent_once(ctx, phones)


def test_a_query_plan_resumes_from_the_last_recipient_copied(
    ctx: Context,
    publisher: RecordingPublisher,
    phones: Phones,
    officer: Actor,
    supervisor: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(planning, "PLAN_SLICE_SECONDS", 0.0)
    numbers = union_all(
        *(select(literal(f"+1555{i:07d}").label("r")) for i in reversed(range(RECIPIENTS)))
    )

    class Listed(Phones):
        def plan_query(self, ctx: Context, version: Version) -> Select[tuple[str]] | None:
            table = numbers.subquery()
            return select(table.c.r)

    listed = Listed()
    ctx.use_channels(Registry([listed]))
    _approve(ctx, officer, supervisor)
    ran = _run(ctx, publisher)
    # Four chunks, then a fifth task finds nothing left past the cursor and ends the plan.
    assert ran.count("alertd.plan_dispatch") == 5
    _all_sent_once(ctx, listed)
