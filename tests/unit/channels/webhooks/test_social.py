"""Mastodon and Telegram through their local simulators: one post per event, updates in the
thread, the first post edited on cancel, replays deduplicated by the idempotency key, and a
refused token failing at once with the platform's message."""

from __future__ import annotations

from sqlalchemy import update

from alertd.alerts import services
from alertd.channels.models import Delivery
from alertd.channels.webhooks import services as webhooks
from tests.support.webhook_receivers import (
    HANG,
    MastodonSimulator,
    Script,
    StandardReceiver,
    TelegramSimulator,
    running,
)
from tests.unit.channels.webhooks.conftest import Flow


def test_mastodon_thread_edit_on_cancel(flow: Flow) -> None:
    with running(MastodonSimulator()) as mastodon:
        flow.endpoint(mastodon.url, format="mastodon", token=MastodonSimulator.TOKEN)
        alert = flow.publish()
        flow.run()
        flow.update(alert)
        flow.run()
        # A replay (the answer to the update was lost, so it is sent again) posts nothing new.
        update_delivery = flow.deliveries()[1]
        with flow.ctx.db.transaction() as session:
            session.execute(
                update(Delivery).where(Delivery.id == update_delivery.id).values(state="failed")
            )
        webhooks.replay(flow.ctx, by=flow.operator, delivery_id=update_delivery.id)
        flow.run()
        keys = [
            s.headers.get("Idempotency-Key")
            for s in mastodon.requests()
            if s.path == "/api/v1/statuses"
        ]
        assert keys.count(str(update_delivery.id)) == 2
        assert len(mastodon.statuses) == 2
        flow.cancel(alert)
        flow.run()
        statuses = list(mastodon.statuses.values())
        deliveries = flow.deliveries()
        assert len(statuses) == 3  # one status per event
        original, reply, ending = statuses
        assert mastodon.media[original["posted_media"][0]].startswith("Photo of Jane Doe")
        assert reply["in_reply_to_id"] == ending["in_reply_to_id"] == original["id"]
        assert [s["key"] for s in statuses] == [str(d.id) for d in deliveries]
        # The original now says so at the top, and no longer shows the photo.
        [(edited_id, text)] = mastodon.edits
        assert edited_id == original["id"] and text.startswith("CANCELLED")
        assert "CHILD ABDUCTION ALERT" in text and original["media_ids"] == []
    assert {d.state for d in flow.deliveries()} == {"sent"}


def test_mastodon_refused_token_fails_with_the_gateway_message(flow: Flow) -> None:
    with running(MastodonSimulator()) as mastodon:
        flow.endpoint(mastodon.url, format="mastodon", token="revoked")
        flow.publish()
        flow.run()
        assert len(mastodon.requests()) == 1
    [delivery] = flow.deliveries()
    assert delivery.state == "failed"
    assert "mastodon refused the token: The access token is invalid" in delivery.last_error


def test_telegram_photo_thread_and_caption_edit(flow: Flow) -> None:
    with running(TelegramSimulator()) as telegram:
        flow.endpoint(
            telegram.url, format="telegram", token=TelegramSimulator.TOKEN, chat_id="@amber"
        )
        alert = flow.publish()
        flow.run()
        flow.update(alert)
        flow.run()
        services_resolve(flow, alert.id)
        flow.run()
        messages = telegram.messages
    assert len(messages) == 3
    assert messages[1]["photo"] and messages[1]["chat_id"] == "@amber"
    assert messages[2]["reply_to"] == "1" or messages[2]["reply_to"] == 1
    assert messages[3]["reply_to"] in ("1", 1) and not messages[3]["photo"]
    [(edited, caption)] = telegram.edits
    assert edited == 1 and caption.startswith("FOUND")
    assert {d.state for d in flow.deliveries()} == {"sent"}


def test_telegram_refused_token_is_not_retried(flow: Flow) -> None:
    with running(TelegramSimulator()) as telegram:
        flow.endpoint(telegram.url, format="telegram", token="1:bad", chat_id="@amber")
        flow.publish()
        flow.run()
        flow.retry_now()
        assert len(telegram.requests()) == 1
    [delivery] = flow.deliveries()
    assert delivery.state == "failed" and "telegram refused the token: Unauthorized" in (
        delivery.last_error
    )


def services_resolve(flow: Flow, alert_id: int) -> None:
    services.resolve_alert(flow.ctx, alert_id, "found safe", by=flow.operator)


def test_an_alert_that_ended_before_its_post_is_never_posted(flow: Flow) -> None:
    with running(MastodonSimulator()) as mastodon, running(StandardReceiver()) as partner:
        flow.endpoint(mastodon.url, format="mastodon", token=MastodonSimulator.TOKEN)
        partner.secret = flow.endpoint(partner.url).secret
        alert = flow.publish()
        flow.cancel(alert)  # before any delivery ran: the search is over
        flow.run()
        assert mastodon.requests() == []
        assert [s.payload["type"] for s in partner.requests()] == [
            "alert.published",
            "alert.cancelled",
        ]
    social = [d for d in flow.deliveries() if d.recipient == "1"]
    assert [d.state for d in social] == ["skipped", "skipped"]
    assert "ended" in social[0].last_error and "nothing to correct" in social[1].last_error


def test_telegram_without_an_answer_is_unknown_not_resent_until_replayed(flow: Flow) -> None:
    with running(TelegramSimulator()) as telegram:
        telegram.respond = Script([HANG, (200, {}, b"")])
        endpoint = flow.endpoint(
            telegram.url, format="telegram", token=TelegramSimulator.TOKEN, chat_id="@amber"
        ).endpoint
        flow.publish()
        flow.run()
        flow.retry_now()
        [delivery] = flow.deliveries()
        assert delivery.state == "unknown" and "may exist" in delivery.last_error
        assert len(telegram.requests()) == 1  # the Bot API has no idempotency key: no resend
        assert webhooks.replay(flow.ctx, by=flow.operator, endpoint_id=endpoint.id) == 1
        flow.run()
        assert len(telegram.messages) == 1
    assert [d.state for d in flow.deliveries()] == ["sent"]


def test_mastodon_media_still_processing_is_retried_with_the_same_key(flow: Flow) -> None:
    processing = (422, {}, b'{"error": "Cannot attach files that have not finished processing"}')
    with running(MastodonSimulator()) as mastodon:
        mastodon.respond = lambda seen: (
            processing
            if seen.path == "/api/v1/statuses" and len(mastodon.requests()) < 2
            else (200, {}, b"")
        )
        flow.endpoint(mastodon.url, format="mastodon", token=MastodonSimulator.TOKEN)
        flow.publish()
        flow.run()
        assert [d.state for d in flow.deliveries()] == ["retry_wait"]
        flow.retry_now()
        keys = {
            s.headers.get("Idempotency-Key") for s in mastodon.requests() if "statuses" in s.path
        }
        assert len(mastodon.statuses) == 1 and keys == {str(flow.deliveries()[0].id)}
    assert [d.state for d in flow.deliveries()] == ["sent"]
