"""Standard webhooks end to end in one process: a receiver that verifies with the
``standardwebhooks`` library sees every event, in version order, with stable ids on retry."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from alertd.audit.models import AuditEntry
from alertd.channels.webhooks import services as webhooks
from alertd.channels.webhooks.models import Endpoint
from alertd.db import utcnow
from tests.support.webhook_receivers import (
    HANG,
    TRICKLE,
    Receiver,
    Script,
    StandardReceiver,
    running,
)
from tests.unit.channels.webhooks.conftest import Flow


def test_alert_update_cancel_arrive_verified_and_in_order(flow: Flow) -> None:
    with running(StandardReceiver()) as receiver:
        receiver.secret = flow.endpoint(receiver.url + "/hook").secret
        alert = flow.publish()
        flow.update(alert)
        flow.cancel(alert)
        # All three versions are planned before any is sent: order must still hold.
        flow.run()
        seen = receiver.requests()
    assert [s.verified for s in seen] == [True, True, True]
    assert [s.payload["type"] for s in seen] == [
        "alert.published",
        "alert.updated",
        "alert.cancelled",
    ]
    assert [s.payload["data"]["alert"]["version"] for s in seen] == [1, 2, 3]
    deliveries = flow.deliveries()
    assert [s.headers["webhook-id"] for s in seen] == [str(d.id) for d in deliveries]
    assert {d.state for d in deliveries} == {"sent"}
    first = seen[0].payload["data"]
    assert first["cap"]["url"].endswith(f"/cap/{first['cap']['identifier']}.xml")
    assert first["page_url"].endswith(f"/a/{alert.public_id}")
    assert first["photo_url"] and first["photo_alt"]
    assert len(first["texts"]["short"]) <= 280 and len(first["texts"]["long"]) <= 500
    assert first["texts"]["short"].endswith(first["page_url"])
    # An ended alert's photo stops circulating.
    assert seen[2].payload["data"]["photo_url"] is None


def test_a_retry_carries_the_same_webhook_id_and_a_fresh_valid_signature(flow: Flow) -> None:
    with running(StandardReceiver()) as receiver:
        receiver.secret = flow.endpoint(receiver.url).secret
        receiver.respond = Script(
            [(500, {}, b"down"), (503, {"Retry-After": "1"}, b""), (200, {}, b"")]
        )
        flow.publish()
        flow.run()
        assert [d.state for d in flow.deliveries()] == ["retry_wait"]
        flow.retry_now()
        flow.retry_now()
        seen = receiver.requests()
    assert len(seen) == 3 and all(s.verified for s in seen)
    assert len({s.headers["webhook-id"] for s in seen}) == 1
    assert [d.state for d in flow.deliveries()] == ["sent"]
    assert [a.status_code for a in flow.attempts()] == [500, 503, 200]


def test_410_disables_the_endpoint(flow: Flow) -> None:
    with running(Receiver()) as receiver:
        receiver.respond = lambda _seen: (410, {}, b"gone")
        endpoint = flow.endpoint(receiver.url).endpoint
        alert = flow.publish()
        flow.run()
        flow.cancel(alert)
        flow.run()
        assert len(receiver.requests()) == 1
    with flow.ctx.db.session() as session:
        stored = session.get(Endpoint, endpoint.id)
        assert stored is not None and not stored.enabled
        assert "410" in stored.disabled_reason
    assert [d.state for d in flow.deliveries()] == ["failed"]


def test_other_4xx_fails_keeps_the_answer_and_replay_resends_with_the_same_id(flow: Flow) -> None:
    with running(StandardReceiver()) as receiver:
        new = flow.endpoint(receiver.url)
        receiver.secret = new.secret
        receiver.respond = Script([(422, {}, b'{"error": "missing field"}'), (200, {}, b"")])
        flow.publish()
        flow.run()
        [delivery] = flow.deliveries()
        assert delivery.state == "failed" and "missing field" in delivery.last_error
        assert "missing field" in flow.attempts()[0].response_head
        assert webhooks.replay(flow.ctx, by=flow.operator, endpoint_id=new.endpoint.id) == 1
        flow.run()
        seen = receiver.requests()
    assert [d.state for d in flow.deliveries()] == ["sent"]
    assert seen[0].headers["webhook-id"] == seen[1].headers["webhook-id"] == str(delivery.id)


def test_rotation_signs_with_both_secrets(flow: Flow) -> None:
    with running(StandardReceiver()) as old_side, running(StandardReceiver()) as new_side:
        first = flow.endpoint(old_side.url)
        second = flow.endpoint(new_side.url)
        old_side.secret = first.secret
        new_side.secret = webhooks.rotate_secret(
            flow.ctx, second.endpoint.id, by=flow.operator
        ).secret
        # The partner behind old_side has not deployed the new secret yet: rotate it too,
        # and keep verifying with the old one.
        webhooks.rotate_secret(flow.ctx, first.endpoint.id, by=flow.operator)
        flow.publish()
        flow.run()
        assert [s.verified for s in old_side.requests()] == [True]
        assert [s.verified for s in new_side.requests()] == [True]
        assert len(old_side.requests()[0].headers["webhook-signature"].split(" ")) == 2


def test_secrets_are_stored_sealed_and_never_audited(flow: Flow) -> None:
    flow.endpoint("http://127.0.0.1:9/services/T0/B0/slack-secret-path", format="slack")
    new = flow.endpoint("http://127.0.0.1:9/hook", format="mastodon", token="tok-secret-123")
    assert new.secret.startswith("whsec_")
    with flow.ctx.db.session() as session:
        stored = session.get(Endpoint, new.endpoint.id)
        assert stored is not None
        assert new.secret not in stored.secret_enc and "tok-secret-123" not in (
            stored.token_enc or ""
        )
        trail = json.dumps([e.detail for e in session.execute(select(AuditEntry)).scalars()])
    assert new.secret not in trail and "tok-secret-123" not in trail
    assert "slack-secret-path" not in trail and "http://127.0.0.1" in trail


def test_a_hanging_endpoint_does_not_hold_up_a_healthy_one(flow: Flow) -> None:
    with running(Receiver()) as hanging, running(Receiver()) as healthy:
        hanging.respond = lambda _seen: HANG
        flow.endpoint(hanging.url)
        flow.endpoint(healthy.url)
        flow.publish()
        flow.run()
        [hung] = hanging.requests()
        [got] = healthy.requests()
    attempts = {a.endpoint_id: a for a in flow.attempts()}
    # Causal, not timed: the healthy endpoint had its event while the hanging request was
    # still open (it was given up only after the read timeout).
    assert got.at < hung.at + attempts[1].latency_ms / 1000
    assert attempts[1].status_code is None and "timed out" in attempts[1].response_head
    assert [d.state for d in flow.deliveries()] == ["retry_wait", "sent"]


def test_a_never_ending_body_is_cut_at_the_limit(flow: Flow) -> None:
    with running(Receiver()) as endless:
        endless.respond = lambda _seen: TRICKLE
        flow.endpoint(endless.url)
        flow.publish()
        flow.run()
    [attempt] = flow.attempts()
    assert attempt.status_code == 200
    assert [d.state for d in flow.deliveries()] == ["sent"]
    assert len(attempt.response_head) <= 1000


def test_a_redirect_is_not_followed(flow: Flow) -> None:
    with running(Receiver()) as inside, running(Receiver()) as redirector:
        redirector.respond = lambda _seen: (302, {"Location": inside.url + "/admin"}, b"")
        flow.endpoint(redirector.url)
        flow.publish()
        flow.run()
        assert inside.requests() == []
    [delivery] = flow.deliveries()
    assert delivery.state == "failed" and "redirects are not followed" in delivery.last_error


def test_breaker_opens_and_defers_without_spending_attempts(flow: Flow) -> None:
    with running(Receiver()) as down:
        down.respond = lambda _seen: (500, {}, b"")
        endpoint = flow.endpoint(down.url).endpoint
        flow.publish()
        flow.run()
        flow.retry_now()
        flow.retry_now()
        assert len(down.requests()) == 3
        with flow.ctx.db.session() as session:
            stored = session.get(Endpoint, endpoint.id)
            assert stored is not None and stored.circuit_open_until is not None
        [before] = flow.deliveries()
        flow.retry_now()
        assert len(down.requests()) == 3  # open: no request made
    [after] = flow.deliveries()
    assert after.state == "retry_wait" and after.attempts == before.attempts
    assert "circuit open" in after.last_error


def test_filters_events_tests_and_no_endpoints(flow: Flow) -> None:
    flow.publish()
    flow.run()
    assert flow.deliveries() == []  # no endpoint: nothing planned
    with running(Receiver()) as cancels_only, running(Receiver()) as everything:
        flow.endpoint(cancels_only.url, events=["alert.cancelled"])
        flow.endpoint(everything.url, accepts_tests=True)
        exercise = flow.publish(status="Exercise")
        flow.cancel(exercise)
        flow.run()
        assert cancels_only.requests() == []
        assert len(everything.requests()) == 2


def test_no_retry_past_expiry_but_the_cancel_is_still_delivered(flow: Flow) -> None:
    soon = (utcnow() + timedelta(minutes=10)).replace(microsecond=0).isoformat()
    with running(Receiver()) as receiver:
        # Retry-After is honoured within bounds: 2 hours is cut to 30 minutes, past the expiry.
        receiver.respond = Script([(503, {"Retry-After": "7200"}, b""), (200, {}, b"")])
        flow.endpoint(receiver.url)
        alert = flow.publish(expires_at=soon)
        flow.run()
        [first] = flow.deliveries()
        assert first.state == "failed" and "expires before the next attempt" in first.last_error
        flow.cancel(alert)
        flow.run()
        assert [s.at for s in receiver.requests()] and len(receiver.requests()) == 2
    assert [d.state for d in flow.deliveries()] == ["failed", "sent"]


def test_429_is_throttled_and_uses_up_no_attempt(flow: Flow) -> None:
    slow_down = (429, {"Retry-After": "1"}, b"")
    with running(StandardReceiver()) as receiver:
        receiver.secret = flow.endpoint(receiver.url).secret
        receiver.respond = Script([slow_down] * 9 + [(200, {}, b"")])
        flow.publish()
        flow.run()
        for _ in range(9):
            flow.retry_now()
        assert len(receiver.requests()) == 10  # more 429s than DELIVERY_MAX_ATTEMPTS allows
    [delivery] = flow.deliveries()
    assert delivery.state == "sent" and delivery.attempts == 1
