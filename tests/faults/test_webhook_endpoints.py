"""Webhook endpoints failing on purpose, with real Celery worker and beat processes and a real
Redis (RELIABILITY.md section 3): an endpoint down for a while then back gets every event once
accepted, in version order, each delivery under one webhook-id with a valid signature; a
hanging endpoint does not hold up a healthy one."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Version
from alertd.audit.services import verify_chain
from alertd.channels.models import Delivery
from alertd.channels.webhooks import services as webhooks
from alertd.context import Context
from tests.support.factories import alert_body
from tests.support.processes import CeleryProcess, wait_for
from tests.support.webhook_receivers import HANG, Receiver, Script, StandardReceiver, running

pytestmark = pytest.mark.redis


def _deliveries(ctx: Context) -> list[Delivery]:
    """In version order (fan-out may write a later version's row first)."""
    with ctx.db.session() as session:
        return list(
            session.execute(
                select(Delivery)
                .join(Version, Version.id == Delivery.version_id)
                .order_by(Version.seq, Delivery.id)
            ).scalars()
        )


def test_down_then_back_gets_every_event_once_in_order(
    webhook_ctx: Context,
    webhook_people: tuple[Actor, Actor, Actor],
    webhook_workers: list[CeleryProcess],
) -> None:
    wctx, (officer, supervisor, operator) = webhook_ctx, webhook_people
    down = (500, {"Retry-After": "1"}, b"down for maintenance")
    with running(StandardReceiver()) as receiver:
        receiver.secret = webhooks.add_endpoint(wctx, {"url": receiver.url}, by=operator).secret
        receiver.respond = Script([down, down, down, (200, {}, b"thanks")])
        alert = services.create_alert(wctx, alert_body(), by=officer)
        services.submit_alert(wctx, alert.id, by=officer)
        services.approve_alert(wctx, alert.id, by=supervisor)
        proposal = services.propose_update(
            wctx, alert.id, alert_body(last_seen_place="Elm St"), by=officer
        )
        services.approve_update(wctx, alert.id, by=supervisor, proposal_id=proposal.id)
        services.cancel_alert(wctx, alert.id, "found", by=operator)
        wait_for(
            lambda: (
                len(_deliveries(wctx)) == 3 and all(d.state == "sent" for d in _deliveries(wctx))
            ),
            60,
            message="three webhook deliveries sent",
        )
        seen = receiver.requests()
    assert all(s.verified for s in seen)
    deliveries = _deliveries(wctx)
    ids = [s.headers["webhook-id"] for s in seen]
    # The later versions waited for the first (version order), so the three refusals all
    # went to the first delivery: its four attempts carried one id; then one request each.
    assert ids == [str(deliveries[0].id)] * 4 + [str(d.id) for d in deliveries[1:]]
    accepted = seen[3:]
    assert [s.payload["type"] for s in accepted] == [
        "alert.published",
        "alert.updated",
        "alert.cancelled",
    ]
    assert Counter(s.headers["webhook-id"] for s in accepted) == {str(d.id): 1 for d in deliveries}
    with wctx.db.session() as session:
        assert verify_chain(session).ok


def test_a_hanging_endpoint_does_not_delay_a_healthy_one(
    webhook_ctx: Context,
    webhook_people: tuple[Actor, Actor, Actor],
    webhook_workers: list[CeleryProcess],
) -> None:
    wctx, (officer, supervisor, operator) = webhook_ctx, webhook_people
    with running(Receiver()) as hanging, running(Receiver()) as healthy:
        hanging.respond = lambda _seen: HANG
        webhooks.add_endpoint(wctx, {"url": hanging.url}, by=operator)
        webhooks.add_endpoint(wctx, {"url": healthy.url}, by=operator)
        alert = services.create_alert(wctx, alert_body(), by=officer)
        services.submit_alert(wctx, alert.id, by=officer)
        services.approve_alert(wctx, alert.id, by=supervisor)
        wait_for(lambda: healthy.requests() and hanging.requests(), 30, message="both reached")
        hung_at = hanging.requests()[0].at
        got_at = healthy.requests()[0].at
        wait_for(
            lambda: any(d.state == "retry_wait" for d in _deliveries(wctx)),
            30,
            message="the hanging request given up",
        )
    # Causal: the healthy endpoint had its event before the hanging request's read timeout
    # (3 s) ran out, so the hang held up nothing but itself.
    assert got_at < hung_at + 3
    assert sorted(d.state for d in _deliveries(wctx)) == ["retry_wait", "sent"]
