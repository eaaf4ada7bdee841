"""Webhook tests run the dispatch path in the test process (as a worker would) against real
HTTP receivers on loopback, which ALERTD_WEBHOOK_ALLOW lets through for these tests only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Alert
from alertd.broker import RecordingPublisher
from alertd.channels.dispatch import resume_stalled
from alertd.channels.models import Delivery
from alertd.channels.webhooks import services as webhooks
from alertd.channels.webhooks.models import Attempt
from alertd.context import Context
from alertd.db import utcnow
from tests.support.factories import alert_body, png_bytes
from tests.support.tasks import run_pending_tasks


@pytest.fixture
def wctx(ctx: Context) -> Iterator[Context]:
    ctx.settings = ctx.settings.with_overrides(
        CHANNELS="webhook",
        WEBHOOK_ALLOW="127.0.0.1/32",
        WEBHOOK_HTTPS_ONLY=False,
        WEBHOOK_CONNECT_SECONDS=1.0,
        WEBHOOK_READ_SECONDS=2.0,
        WEBHOOK_MAX_RESPONSE_BYTES=4096,
        WEBHOOK_BREAKER_FAILURES=3,
    )
    yield ctx


class Flow:
    """An alert's life driven through the services, with the tasks run in this process."""

    def __init__(self, ctx: Context, officer: Actor, supervisor: Actor, operator: Actor) -> None:
        self.ctx, self.officer, self.supervisor, self.operator = ctx, officer, supervisor, operator
        assert isinstance(ctx.publisher, RecordingPublisher)
        self.publisher = ctx.publisher

    def endpoint(self, url: str, **extra: Any) -> webhooks.NewEndpoint:
        return webhooks.add_endpoint(self.ctx, {"url": url, **extra}, by=self.operator)

    def run(self) -> int:
        return run_pending_tasks(self.ctx, self.publisher)

    def publish(self, **overrides: Any) -> Alert:
        body = alert_body(**overrides)
        alert = services.create_alert(self.ctx, body, by=self.officer, photo=png_bytes())
        services.submit_alert(self.ctx, alert.id, by=self.officer)
        alert = services.approve_alert(self.ctx, alert.id, by=self.supervisor)
        return alert

    def update(self, alert: Alert) -> None:
        proposal = services.propose_update(
            self.ctx, alert.id, alert_body(last_seen_place="Elm St"), by=self.officer
        )
        services.approve_update(self.ctx, alert.id, by=self.supervisor, proposal_id=proposal.id)

    def cancel(self, alert: Alert) -> None:
        services.cancel_alert(self.ctx, alert.id, "found safe", by=self.operator)

    def retry_now(self) -> int:
        """Make every waiting retry due now, and send it as the sweeper would."""
        with self.ctx.db.transaction() as session:
            session.execute(
                update(Delivery)
                .where(Delivery.state == "retry_wait")
                .values(next_attempt_at=utcnow(), enqueued_at=None)
            )
        resume_stalled(self.ctx)
        return self.run()

    def deliveries(self) -> list[Delivery]:
        with self.ctx.db.session() as session:
            return list(session.execute(select(Delivery).order_by(Delivery.id)).scalars())

    def attempts(self) -> list[Attempt]:
        with self.ctx.db.session() as session:
            return list(session.execute(select(Attempt).order_by(Attempt.id)).scalars())


@pytest.fixture
def flow(wctx: Context, officer: Actor, supervisor: Actor, operator: Actor) -> Flow:
    return Flow(wctx, officer, supervisor, operator)
