"""The sms channel in the test process against the Twilio simulator on loopback: who is texted,
exactly once, in their language; follow-ups to the same people; the error table; callbacks and
inbound keywords signed as Twilio signs them."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Integer, select

from alertd.actor import Actor
from alertd.alerts import services
from alertd.audit.models import AuditEntry
from alertd.audit.recipients import outcome_digest, recipient_hash, recipient_key
from alertd.broker import RecordingPublisher
from alertd.channels.models import FAILED, SENT, UNKNOWN, Delivery
from alertd.channels.registry import registry_for
from alertd.channels.sms import gateway as gw
from alertd.channels.sms import services as sms
from alertd.channels.sms.channel import RECONCILE_GRACE
from alertd.channels.sms.models import ConsoleText, GatewayStatus, Subscriber
from alertd.channels.sms.segments import count_segments
from alertd.context import Context
from alertd.errors import Invalid
from tests.support import twilio_sim
from tests.support.factories import PASSWORD, alert_body
from tests.support.tasks import run_pending_tasks

IN_A = ["+14155550101", "+14155550102", "+14155550103"]
IN_B = "+14155550201"
STOPPED = "+14155550104"

# The channel's pages and Twilio callbacks are served only while it is enabled.
pytestmark = pytest.mark.channels("sms")


@pytest.fixture
def sim() -> Iterator[twilio_sim.Simulator]:
    with twilio_sim.running() as simulator:
        yield simulator


@pytest.fixture
def twilio_ctx(ctx: Context, sim: twilio_sim.Simulator, monkeypatch: pytest.MonkeyPatch) -> Context:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", twilio_sim.ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", twilio_sim.AUTH_TOKEN)
    monkeypatch.setenv("TWILIO_FROM_NUMBER", "+15005550006")
    # A stray region must not send the SDK to another host.
    monkeypatch.setenv("TWILIO_REGION", "au1")
    ctx.settings = ctx.settings.with_overrides(
        CHANNELS="sms",
        SMS_BACKEND="twilio",
        TWILIO_API_BASE=sim.url,
        SMS_JOIN_AREAS="LA=SAME=006037",
    )
    return ctx


def _subscribers(ctx: Context, operator: Actor) -> None:
    for i, phone in enumerate([*IN_A, STOPPED]):
        language = "es" if i == 1 else "en"
        sms.add_subscriber(
            ctx, {"phone": phone, "language": language, "areas": ["SAME=006037"]}, by=operator
        )
    sms.add_subscriber(ctx, {"phone": IN_B, "areas": ["SAME=006075"]}, by=operator)
    sms.set_opted_out(ctx, STOPPED, True, by=operator, via="sms")


def _approved(ctx: Context, officer: Actor, supervisor: Actor, **body: object) -> int:
    alert = services.create_alert(ctx, alert_body(**body), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)
    return alert.id


def test_alert_reaches_area_once_update_reaches_the_same_people(
    twilio_ctx: Context,
    publisher: RecordingPublisher,
    sim: twilio_sim.Simulator,
    operator: Actor,
    officer: Actor,
    supervisor: Actor,
) -> None:
    ctx = twilio_ctx
    _subscribers(ctx, operator)
    alert_id = _approved(ctx, officer, supervisor)
    run_pending_tasks(ctx, publisher)

    assert sim.per_number() == {p: 1 for p in IN_A}
    by_number = {t.to: t for t in sim.taken}
    assert by_number[IN_A[1]].body.startswith("ALERTA AMBER")
    first = by_number[IN_A[0]].body
    assert "Jane Doe" in first and "6WCU986" in first and "+1 800-555-0199" in first
    assert "/a/" in first and count_segments(first).segments == 1
    assert 0 < (by_number[IN_A[0]].validity_period or 0) <= 3 * 3600
    assert by_number[IN_A[0]].status_callback.startswith("http://alertd.test/twilio/status/")

    # A subscriber joins A after the alert: an update reaches the people texted before, and
    # (the area is unchanged) nobody else; a resolution likewise.
    sms.add_subscriber(ctx, {"phone": "+14155550105", "areas": ["SAME=006075"]}, by=operator)
    sms.set_opted_out(ctx, IN_A[2], True, by=operator, via="sms")
    services.resolve_alert(ctx, alert_id, "Found safe.", by=supervisor)
    run_pending_tasks(ctx, publisher)
    assert sim.per_number() == {IN_A[0]: 2, IN_A[1]: 2, IN_A[2]: 1}
    assert "found" in sim.taken[-1].body or "encontrado" in sim.taken[-1].body
    with ctx.db.session() as session:
        states = [d.state for d in session.execute(select(Delivery)).scalars()]
    assert states.count(SENT) == 5


def test_error_table_opt_out_invalid_retry_and_unknown(
    twilio_ctx: Context,
    publisher: RecordingPublisher,
    sim: twilio_sim.Simulator,
    operator: Actor,
    officer: Actor,
    supervisor: Actor,
) -> None:
    ctx = twilio_ctx
    _subscribers(ctx, operator)
    sim.script = {IN_A[0]: [21610], IN_A[1]: [21211], IN_A[2]: ["drop"]}
    _approved(ctx, officer, supervisor)
    run_pending_tasks(ctx, publisher)
    with ctx.db.session() as session:
        subs = {s.phone: s for s in session.execute(select(Subscriber)).scalars()}
        deliveries = {int(d.recipient): d for d in session.execute(select(Delivery)).scalars()}
    assert subs[IN_A[0]].opted_out and subs[IN_A[1]].invalid
    assert deliveries[subs[IN_A[0]].id].state == FAILED
    # Twilio's 21211 names the number; neither the delivery nor the audit chain keeps it.
    invalid = deliveries[subs[IN_A[1]].id]
    assert invalid.last_error.startswith("400 21211") and "[number]" in invalid.last_error
    with ctx.db.session() as session:
        chain = " ".join(
            json.dumps(e.detail) for e in session.execute(select(AuditEntry)).scalars()
        )
    assert "21211" in chain and not any(p.lstrip("+") in chain for p in IN_A)
    # The request was taken and the connection dropped: unknown, never resent blindly...
    unknown = deliveries[subs[IN_A[2]].id]
    assert unknown.state == UNKNOWN and sim.requests[IN_A[2]] == 1
    # ...until the message list says it went: then it is sent, with no second request.
    channel = registry_for(ctx).get("sms")
    assert channel is not None
    # Another text to that number (another alert's) is not taken for this one: still unknown,
    # then, once the grace period has passed with no trace of this wording, safe to retry.
    taken = [i for i, t in enumerate(sim.taken) if t.to == IN_A[2]]
    ours = sim.taken[taken[0]]
    sim.taken[taken[0]] = dataclasses.replace(ours, body="AMBER Alert: another child, another area")
    assert channel.reconcile(ctx, [unknown]) == []
    assert unknown.attempted_at is not None
    long_ago = dataclasses.replace(ours, at=ours.at - RECONCILE_GRACE - timedelta(seconds=10))
    sim.taken[taken[0]] = dataclasses.replace(long_ago, body="AMBER Alert: another child")
    unknown.attempted_at -= RECONCILE_GRACE + timedelta(seconds=10)
    assert [o.state for o in channel.reconcile(ctx, [unknown])] == ["retry"]
    # With this version's wording at the gateway, it went: sent, with no second request.
    sim.taken[taken[0]] = long_ago
    settled = channel.reconcile(ctx, [unknown])
    assert [o.state for o in settled] == ["sent"] and sim.requests[IN_A[2]] == 1


def test_console_counts_and_retry_of_a_failed_text(
    twilio_ctx: Context,
    publisher: RecordingPublisher,
    sim: twilio_sim.Simulator,
    client: FlaskClient,
    operator: Actor,
    officer: Actor,
    supervisor: Actor,
) -> None:
    ctx = twilio_ctx
    _subscribers(ctx, operator)
    sim.script = {IN_A[0]: [21610], IN_A[1]: [30001]}
    alert_id = _approved(ctx, officer, supervisor)
    run_pending_tasks(ctx, publisher)
    client.post("/login", data={"username": operator.username, "password": PASSWORD})
    page = client.get(f"/sms/alerts/{alert_id}").get_data(as_text=True)
    assert "<strong>1</strong> sent" in page and "<strong>2</strong> failed" in page
    assert "<strong>1</strong> opted out" in page
    # The page keeps itself current (progress.js swaps in its section from the same URL).
    assert f'data-url="/sms/alerts/{alert_id}"' in page and 'data-finished="true"' in page
    # The alert page's live progress section carries the same counts and links to this page.
    link = f'href="/sms/alerts/{alert_id}"'
    for url in (f"/alerts/{alert_id}", f"/alerts/{alert_id}/progress"):
        shown = client.get(url).get_data(as_text=True)
        assert "0 pending, 1 sent, 0 delivered, 2 failed, 0 unknown, 0 skipped, 1 opted out" in (
            shown
        )
        assert link in shown
    officer_client = client.application.test_client()
    officer_client.post("/login", data={"username": officer.username, "password": PASSWORD})
    shown = officer_client.get(f"/alerts/{alert_id}/progress").get_data(as_text=True)
    assert "2 failed" in shown and link not in shown
    with ctx.db.session() as session:
        failed = session.execute(
            select(Delivery)
            .join(Subscriber, Subscriber.id == Delivery.recipient.cast(Integer))
            .where(Subscriber.phone == IN_A[1])
        ).scalar_one()
    client.post(f"/sms/deliveries/{failed.id}/retry", data={"alert_id": alert_id})
    run_pending_tasks(ctx, publisher)
    assert sim.per_number()[IN_A[1]] == 1


def test_429_500_and_garbage_are_retried(
    twilio_ctx: Context,
    publisher: RecordingPublisher,
    sim: twilio_sim.Simulator,
    operator: Actor,
    officer: Actor,
    supervisor: Actor,
) -> None:
    ctx = twilio_ctx
    _subscribers(ctx, operator)
    sim.script = {IN_A[0]: ["429"], IN_A[1]: ["500"], IN_A[2]: ["garbage"]}
    _approved(ctx, officer, supervisor)
    run_pending_tasks(ctx, publisher)
    with ctx.db.session() as session:
        rows = list(session.execute(select(Delivery)).scalars())
    assert {d.state for d in rows} == {"retry_wait"}
    assert all(d.last_error for d in rows) and sim.per_number() == {}


def test_console_backend_keeps_texts_marked_not_sent(
    ctx: Context,
    publisher: RecordingPublisher,
    operator: Actor,
    officer: Actor,
    supervisor: Actor,
) -> None:
    ctx.settings = ctx.settings.with_overrides(CHANNELS="sms", SMS_BACKEND="console")
    _subscribers(ctx, operator)
    _approved(ctx, officer, supervisor)
    run_pending_tasks(ctx, publisher)
    with ctx.db.session() as session:
        kept = sorted(t.to for t in session.execute(select(ConsoleText)).scalars())
    assert kept == IN_A


def test_audit_holds_one_entry_per_sub_batch_with_no_number_in_clear(
    ctx: Context,
    publisher: RecordingPublisher,
    operator: Actor,
    officer: Actor,
    supervisor: Actor,
) -> None:
    ctx.settings = ctx.settings.with_overrides(CHANNELS="sms", SMS_BACKEND="console")
    _subscribers(ctx, operator)
    _approved(ctx, officer, supervisor)
    run_pending_tasks(ctx, publisher)
    key = recipient_key(ctx.settings)
    with ctx.db.session() as session:
        entries = list(session.execute(select(AuditEntry)).scalars())
        batches = [e for e in entries if e.action == "delivery.batch"]
        rows = {d.id: d for d in session.execute(select(Delivery)).scalars()}
    trail = json.dumps([[e.action, e.target_id, e.detail] for e in entries])
    for number in [*IN_A, IN_B, STOPPED]:
        assert number not in trail and number.lstrip("+") not in trail
    assert not any(e.action == "delivery.sent" for e in entries)
    audited = sorted(i for b in batches for ids in b.detail["outcomes"].values() for i in ids)
    assert audited == sorted(rows) and len(rows) == len(IN_A)
    assert sum(b.detail["counts"].get(SENT, 0) for b in batches) == len(IN_A)
    for batch in batches:
        items = [
            (i, recipient_hash(key, rows[i].recipient), rows[i].state)
            for ids in batch.detail["outcomes"].values()
            for i in ids
        ]
        # The row keeps the hash the digest names (it outlives a purge of the recipient).
        assert all(rows[i].recipient_hash == h for i, h, _ in items)
        assert outcome_digest(items) == batch.detail["digest"]
        # The digest covers the outcome: a row changed afterwards no longer matches.
        changed = [(i, h, FAILED) for i, h, _ in items]
        assert outcome_digest(changed) != batch.detail["digest"]


def test_status_callbacks_move_forward_only_and_are_signed(
    twilio_ctx: Context,
    publisher: RecordingPublisher,
    client: FlaskClient,
    operator: Actor,
    officer: Actor,
    supervisor: Actor,
) -> None:
    ctx = twilio_ctx
    _subscribers(ctx, operator)
    _approved(ctx, officer, supervisor)
    run_pending_tasks(ctx, publisher)
    with ctx.db.session() as session:
        delivery_id = session.execute(select(Delivery.id)).scalars().first()
    url = f"http://alertd.test/twilio/status/{delivery_id}"

    def post(status: str, signature: str | None = None, path: str = "") -> int:
        params = {"MessageSid": "SM1", "MessageStatus": status}
        sig = twilio_sim.sign(path or url, params) if signature is None else signature
        target = (path or url).removeprefix("http://alertd.test")
        return client.post(target, data=params, headers={"X-Twilio-Signature": sig}).status_code

    assert post("delivered", signature="forged") == 403
    assert client.post(url.removeprefix("http://alertd.test"), data={}).status_code == 403
    for status in ("delivered", "sent", "delivered", "queued"):
        assert post(status) == 204
    with ctx.db.session() as session:
        row = session.get(GatewayStatus, delivery_id)
        assert row is not None and row.status == "delivered"
    assert post("sent", path="http://alertd.test/twilio/status/999999") == 404


def test_inbound_stop_start_join_help(
    twilio_ctx: Context,
    publisher: RecordingPublisher,
    sim: twilio_sim.Simulator,
    client: FlaskClient,
    operator: Actor,
    officer: Actor,
    supervisor: Actor,
) -> None:
    ctx = twilio_ctx
    _subscribers(ctx, operator)
    url = "http://alertd.test/twilio/inbound"

    def text(sender: str, body: str) -> str:
        params = {"From": sender, "Body": body}
        answer = client.post(
            "/twilio/inbound",
            data=params,
            headers={"X-Twilio-Signature": twilio_sim.sign(url, params)},
        )
        assert answer.status_code == 200 and answer.mimetype == "application/xml"
        return answer.get_data(as_text=True)

    assert "no more alerts" in text(IN_A[0], "stop")
    assert "no more alerts" in text(IN_A[1], "UNSUBSCRIBE")
    assert "alerts again" in text(STOPPED, "START")
    assert "Unknown area" in text("+14155550300", "JOIN Atlantis")
    assert "alerts for LA" in text("+14155550300", "join la")
    assert "STOP" in text(IN_A[2], "HELP")
    forged = client.post("/twilio/inbound", data={"From": IN_A[2], "Body": "STOP"})
    assert forged.status_code == 403

    _approved(ctx, officer, supervisor)
    run_pending_tasks(ctx, publisher)
    assert sorted(sim.per_number()) == sorted([IN_A[2], STOPPED, "+14155550300"])


def test_a_text_past_three_segments_is_refused_at_approval_and_nothing_is_sent(
    twilio_ctx: Context,
    publisher: RecordingPublisher,
    sim: twilio_sim.Simulator,
    operator: Actor,
    officer: Actor,
    supervisor: Actor,
) -> None:
    ctx = twilio_ctx
    _subscribers(ctx, operator)
    # Curly quotes switch the text to UCS-2 (67 units a part): a 150-character name makes
    # four parts.
    child = {**alert_body()["children"][0], "name": "Jane “" + "x" * 140 + "” Doe"}
    alert = services.create_alert(ctx, alert_body(children=[child]), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    with pytest.raises(Invalid) as refused:
        services.approve_alert(ctx, alert.id, by=supervisor)
    assert "segments" in refused.value.message and "UCS-2" in refused.value.message
    run_pending_tasks(ctx, publisher)
    assert sim.per_number() == {}
    with ctx.db.session() as session:
        assert session.execute(select(Delivery)).first() is None


def test_concurrent_sends_each_read_their_own_answer(
    twilio_ctx: Context, sim: twilio_sim.Simulator
) -> None:
    # One gateway, sixteen threads: each reads its own answer, status and headers (the SDK's
    # own HTTP client returns the answer it last stored on itself, whichever thread got it).
    # Half the numbers here are refused.
    numbers = [f"+1415555{i:04d}" for i in range(400)]
    sim.script = {n: [21211] for n in numbers[::2]}
    gateway = gw.TwilioGateway(twilio_ctx)
    texts = [
        gw.Text(i, 0, n, f"text {i}", "http://alertd.test/s", 600) for i, n in enumerate(numbers)
    ]
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(gateway.send, texts))
    refused = {numbers[i] for i, r in enumerate(results) if r.outcome == gw.FAILED}
    assert refused == set(numbers[::2])
    assert all(r.code == 21211 for r in results if r.outcome == gw.FAILED)
    sids = {t.to: t.sid for t in sim.taken}
    assert {
        numbers[i]: r.external_id for i, r in enumerate(results) if r.outcome == gw.SENT
    } == sids
    # The same through one call, sixteen requests in flight on the gateway's event loop: each
    # answer goes to its own text, a 429's Retry-After included.
    again = [f"+1416555{i:04d}" for i in range(400)]
    sim.script = {n: ([21211] if i % 3 else ["429"]) for i, n in enumerate(again[::2])}
    sim.retry_after = 7
    texts = [
        gw.Text(i, 0, n, f"again {i}", "http://alertd.test/s", 600) for i, n in enumerate(again)
    ]
    results = gateway.send_many(texts)
    by_number = dict(zip(again, results, strict=True))
    for i, number in enumerate(again):
        result = by_number[number]
        if i % 2:
            assert result.outcome == gw.SENT
            assert result.external_id == next(t.sid for t in sim.taken if t.to == number)
        elif (i // 2) % 3:
            assert (result.outcome, result.code) == (gw.FAILED, 21211)
        else:
            assert (result.outcome, result.retry_after) == (gw.THROTTLED, 7.0)
