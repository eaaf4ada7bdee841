"""SMS through a real Redis, real Celery worker processes and the Twilio simulator on loopback,
counted at the simulator: an area reached exactly once and nobody else; the ending reaches the
same people; a cancel in the middle of a fan-out (1,500 recipients here; 50,000 belongs to the
benchmark) stops new requests within 2 s; STOP by signed inbound text honoured by the next
alert; SIGKILL of a worker mid fan-out loses nothing and sends nothing twice."""

from __future__ import annotations

import io
import signal
import time
from collections.abc import Callable, Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from alertd.actor import Actor
from alertd.alerts import services
from alertd.channels.models import OPEN_STATES, SENT, UNKNOWN, Delivery
from alertd.channels.sms import services as sms
from alertd.channels.sms.channel import RECONCILE_GRACE
from alertd.context import Context
from alertd.web.app import create_app
from tests.support import twilio_sim
from tests.support.factories import alert_body, make_actor
from tests.support.processes import CeleryProcess, wait_for

pytestmark = pytest.mark.redis


@pytest.fixture
def sim() -> Iterator[twilio_sim.Simulator]:
    with twilio_sim.running() as simulator:
        yield simulator


@pytest.fixture
def twilio_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "TWILIO_ACCOUNT_SID": twilio_sim.ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": twilio_sim.AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+15005550006",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def sms_ctx(live_ctx: Context, sim: twilio_sim.Simulator, twilio_env: dict[str, str]) -> Context:
    live_ctx.settings = live_ctx.settings.with_overrides(
        CHANNELS="sms",
        SMS_BACKEND="twilio",
        TWILIO_API_BASE=sim.url,
        PUBLIC_URL="http://alertd.test",
        DELIVERY_BATCH_SIZE=50,
    )
    return live_ctx


@pytest.fixture
def sms_worker_env(
    worker_env: dict[str, str], sim: twilio_sim.Simulator, twilio_env: dict[str, str]
) -> dict[str, str]:
    return {
        **worker_env,
        **twilio_env,
        "ALERTD_CHANNELS": "sms",
        "ALERTD_SMS_BACKEND": "twilio",
        "ALERTD_TWILIO_API_BASE": sim.url,
        "ALERTD_PUBLIC_URL": "http://alertd.test",
        "ALERTD_DELIVERY_BATCH_SIZE": "50",
    }


@pytest.fixture
def people(live_ctx: Context) -> tuple[Actor, Actor, Actor]:
    return (
        make_actor(live_ctx, "off", "officer"),
        make_actor(live_ctx, "sup", "supervisor"),
        make_actor(live_ctx, "ops", "operator"),
    )


def _numbers(prefix: int, count: int) -> list[str]:
    return [f"+1415{prefix:03d}{i:04d}" for i in range(count)]


def _import(ctx: Context, by: Actor, phones: list[str], area: str) -> None:
    rows = "".join(f"{p},en,{area},,\n" for p in phones)
    report = sms.import_csv(ctx, io.StringIO("phone,language,areas,lat,lon\n" + rows), by=by)
    assert not report.rejected


def _approve(ctx: Context, people: tuple[Actor, Actor, Actor]) -> int:
    officer, supervisor, _ = people
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)
    return alert.id


def _open(ctx: Context, alert_id: int) -> int:
    with ctx.db.session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.alert_id == alert_id, Delivery.state.in_(OPEN_STATES))
            )
            or 0
        )


def test_area_reached_once_the_ending_reaches_the_same_people_stop_is_honoured(
    sms_ctx: Context,
    sim: twilio_sim.Simulator,
    people: tuple[Actor, Actor, Actor],
    sms_worker_env: dict[str, str],
    start_celery: Callable[..., CeleryProcess],
) -> None:
    ctx, operator = sms_ctx, people[2]
    area_a, area_b = _numbers(201, 120), _numbers(202, 30)
    _import(ctx, operator, area_a, "SAME=006037")
    _import(ctx, operator, area_b, "SAME=006075")
    sms.set_opted_out(ctx, area_a[0], True, by=operator, via="sms")
    reached = set(area_a[1:])
    start_celery("worker", "--concurrency=2", env=sms_worker_env)

    alert_id = _approve(ctx, people)
    wait_for(lambda: len(sim.taken) >= len(reached) and _open(ctx, alert_id) == 0, 60)
    assert sim.per_number() == {p: 1 for p in reached}

    services.cancel_alert(ctx, alert_id, "Entered in error.", by=people[1])
    wait_for(lambda: len(sim.taken) >= 2 * len(reached) and _open(ctx, alert_id) == 0, 60)
    assert sim.per_number() == {p: 2 for p in reached}
    assert all("CANCELLED" in t.body for t in sim.taken[len(reached) :])

    # STOP by a signed inbound text, then the next alert passes that number by.
    app = create_app(context=ctx, test_config={"TESTING": True})
    client: FlaskClient = app.test_client()
    params = {"From": area_a[1], "Body": "STOP"}
    sig = twilio_sim.sign("http://alertd.test/twilio/inbound", params)
    assert (
        client.post("/twilio/inbound", data=params, headers={"X-Twilio-Signature": sig}).status_code
        == 200
    )
    before = len(sim.taken)
    second = _approve(ctx, people)
    wait_for(lambda: len(sim.taken) >= before + len(reached) - 1 and _open(ctx, second) == 0, 60)
    assert area_a[1] not in {t.to for t in sim.taken[before:]}
    assert len(sim.taken) - before == len(reached) - 1


def test_an_update_that_widens_the_area_reaches_the_new_area_and_the_first_once_each(
    sms_ctx: Context,
    sim: twilio_sim.Simulator,
    people: tuple[Actor, Actor, Actor],
    sms_worker_env: dict[str, str],
    start_celery: Callable[..., CeleryProcess],
) -> None:
    ctx, (officer, supervisor, operator) = sms_ctx, people
    area_a, area_b, area_c = _numbers(211, 90), _numbers(212, 60), _numbers(213, 20)
    _import(ctx, operator, area_a, "SAME=006037")
    _import(ctx, operator, area_b, "SAME=006075")
    _import(ctx, operator, area_c, "SAME=006001")
    start_celery("worker", "--concurrency=2", env=sms_worker_env)
    alert_id = _approve(ctx, people)
    wait_for(lambda: len(sim.taken) >= len(area_a) and _open(ctx, alert_id) == 0, 60)
    assert sim.per_number() == {p: 1 for p in area_a}

    # Someone joins A after the alert went out: a follow-up is no new selection of A.
    late = _numbers(214, 1)
    _import(ctx, operator, late, "SAME=006037")
    body = alert_body(description="Seen heading north into the next county.")
    body["areas"] = [*body["areas"], {"description": "Bay County", "geocodes": {"SAME": "006075"}}]
    proposal = services.propose_update(ctx, alert_id, body, by=officer)
    services.approve_update(ctx, alert_id, by=supervisor, proposal_id=proposal.id)
    total = 2 * len(area_a) + len(area_b)
    wait_for(lambda: len(sim.taken) >= total and _open(ctx, alert_id) == 0, 60)
    assert sim.per_number() == {**{p: 2 for p in area_a}, **{p: 1 for p in area_b}}
    updates = sim.taken[len(area_a) :]
    assert len(updates) == total - len(area_a)
    assert all("UPDATE" in t.body.upper() for t in updates)


def test_cancel_mid_fan_out_stops_new_requests_within_two_seconds(
    sms_ctx: Context,
    sim: twilio_sim.Simulator,
    people: tuple[Actor, Actor, Actor],
    sms_worker_env: dict[str, str],
    start_celery: Callable[..., CeleryProcess],
) -> None:
    ctx = sms_ctx
    # Enough that the fan-out is still going when the cancel lands, on a machine that sends
    # 5,000 texts a second.
    phones = _numbers(203, 8000)
    _import(ctx, people[2], phones, "SAME=006037")
    start_celery("worker", "--concurrency=2", env=sms_worker_env)
    alert_id = _approve(ctx, people)
    wait_for(lambda: len(sim.taken) >= 100, 60, interval=0.01)
    services.cancel_alert(ctx, alert_id, "Entered in error.", by=people[1])
    cancelled_at = time.time()
    assert len(sim.taken) < len(phones), "the fan-out ended before the cancel"

    def cancels() -> list[str]:
        return sorted(t.to for t in sim.taken if "CANCELLED" in t.body)

    def originals() -> list[str]:
        return sorted(t.to for t in sim.taken if "CANCELLED" not in t.body)

    wait_for(lambda: _open(ctx, alert_id) == 0 and len(cancels()) >= len(originals()), 90)
    late = [
        t for t in sim.taken if "CANCELLED" not in t.body and t.at.timestamp() > cancelled_at + 2
    ]
    assert late == []
    assert len(originals()) < len(phones)
    # The cancellation reaches exactly those who got the alert, once each.
    assert cancels() == originals() and len(set(cancels())) == len(cancels())


def test_sigkill_mid_fan_out_loses_nothing_and_duplicates_nothing(
    sms_ctx: Context,
    sim: twilio_sim.Simulator,
    people: tuple[Actor, Actor, Actor],
    sms_worker_env: dict[str, str],
    start_celery: Callable[..., CeleryProcess],
) -> None:
    ctx = sms_ctx
    # Enough that the kill lands mid-fan-out on a machine that sends 5,000 texts a second.
    phones = _numbers(204, 4000)
    _import(ctx, people[2], phones, "SAME=006037")
    worker = start_celery("worker", "--concurrency=2", env=sms_worker_env)
    start_celery("beat", env=sms_worker_env, ready=False)
    alert_id = _approve(ctx, people)
    wait_for(lambda: len(sim.taken) >= 150, 60, interval=0.01)
    worker.stop(signal.SIGKILL)
    assert len(sim.taken) < len(phones), "the fan-out ended before the kill"
    start_celery("worker", "--concurrency=2", env=sms_worker_env)
    wait_for(lambda: _open(ctx, alert_id) == 0, 120)

    # The requests in flight at the kill are unknown, never resent blindly; the sweeper asks the
    # gateway's message list (the channel's reconcile hook) and settles every one of them with no
    # operator: found means sent, absent after the grace period means retried once.
    def settled() -> bool:
        with ctx.db.session() as session:
            states = session.execute(
                select(Delivery.state).where(Delivery.alert_id == alert_id)
            ).scalars()
            return all(state not in (*OPEN_STATES, UNKNOWN) for state in states)

    wait_for(settled, RECONCILE_GRACE.total_seconds() + 90, message="unknowns reconciled")
    counts = sim.per_number()
    assert max(counts.values()) == 1, "a number was texted twice"
    with ctx.db.session() as session:
        rows = list(
            session.execute(select(Delivery).where(Delivery.alert_id == alert_id)).scalars()
        )
    assert len(rows) == len(phones)
    assert {d.state for d in rows} == {SENT}
    # Every phone got the text exactly once: nothing lost, nothing doubled.
    assert len(counts) == len(phones) and sum(counts.values()) == len(phones)
