"""Mastodon and Telegram end to end with real worker and beat processes and a real Redis: the
local simulators see one status or photo per event, the first post is edited on cancel, and a
replayed delivery carries the same idempotency key and posts nothing new."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Version
from alertd.channels.models import Delivery
from alertd.channels.webhooks import services as webhooks
from alertd.context import Context
from tests.support.factories import alert_body, png_bytes
from tests.support.processes import CeleryProcess, wait_for
from tests.support.webhook_receivers import MastodonSimulator, TelegramSimulator, running

pytestmark = pytest.mark.redis


def _deliveries(ctx: Context, endpoint_id: int) -> list[Delivery]:
    with ctx.db.session() as session:
        return list(
            session.execute(
                select(Delivery)
                .join(Version, Version.id == Delivery.version_id)
                .where(Delivery.recipient == str(endpoint_id))
                .order_by(Version.seq)
            ).scalars()
        )


def test_alert_update_cancel_on_mastodon_and_telegram(
    webhook_ctx: Context,
    webhook_people: tuple[Actor, Actor, Actor],
    webhook_workers: list[CeleryProcess],
) -> None:
    ctx, (officer, supervisor, operator) = webhook_ctx, webhook_people
    with running(MastodonSimulator()) as mastodon, running(TelegramSimulator()) as telegram:
        toot = webhooks.add_endpoint(
            ctx,
            {"url": mastodon.url, "format": "mastodon", "token": MastodonSimulator.TOKEN},
            by=operator,
        ).endpoint
        gram = webhooks.add_endpoint(
            ctx,
            {
                "url": telegram.url,
                "format": "telegram",
                "token": TelegramSimulator.TOKEN,
                "chat_id": "@amber",
                "language": "es",
            },
            by=operator,
        ).endpoint
        alert = services.create_alert(ctx, alert_body(), by=officer, photo=png_bytes())
        services.submit_alert(ctx, alert.id, by=officer)
        services.approve_alert(ctx, alert.id, by=supervisor)
        # Posts for people go out only while the alert is live: each step waits for the last.
        wait_for(lambda: len(mastodon.statuses) == len(telegram.messages) == 1, 30)
        proposal = services.propose_update(
            ctx, alert.id, alert_body(last_seen_place="Elm St"), by=officer
        )
        services.approve_update(ctx, alert.id, by=supervisor, proposal_id=proposal.id)
        wait_for(lambda: len(mastodon.statuses) == len(telegram.messages) == 2, 30)
        # The update's answer was "lost": an operator replays it; the same key posts nothing.
        wait_for(lambda: _deliveries(ctx, toot.id)[1].state == "sent", 30)
        update_delivery = _deliveries(ctx, toot.id)[1]
        with ctx.db.transaction() as session:
            session.execute(
                update(Delivery).where(Delivery.id == update_delivery.id).values(state="failed")
            )
        webhooks.replay(ctx, by=operator, delivery_id=update_delivery.id)
        wait_for(lambda: _deliveries(ctx, toot.id)[1].state == "sent", 30, message="replay sent")
        keys = [
            s.headers.get("Idempotency-Key")
            for s in mastodon.requests()
            if s.path == "/api/v1/statuses"
        ]
        assert keys.count(str(update_delivery.id)) == 2 and len(mastodon.statuses) == 2
        services.cancel_alert(ctx, alert.id, "withdrawn", by=operator)

        def all_sent() -> bool:
            rows = _deliveries(ctx, toot.id) + _deliveries(ctx, gram.id)
            return len(rows) == 6 and all(d.state == "sent" for d in rows)

        wait_for(all_sent, 60, message="six social deliveries sent")
        statuses = list(mastodon.statuses.values())
        assert len(statuses) == 3 and len(telegram.messages) == 3
        assert statuses[0]["posted_media"] and telegram.messages[1]["photo"]
        assert [e[0] for e in mastodon.edits] == [statuses[0]["id"]]
        assert mastodon.edits[0][1].startswith("CANCELLED")
        assert [e[0] for e in telegram.edits] == [1] and telegram.edits[0][1].startswith(
            "CANCELADA"
        )
