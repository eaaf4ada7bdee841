"""The global rate limiter: the bucket's shape keeps every one-second window at or under the
rate, the Redis script and the embedded file bucket grant no token twice across processes, and
``deliver_batch`` releases a rated channel's sub-batches through it, re-checking a cancel and
renewing leases while it waits."""

from __future__ import annotations

import multiprocessing
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import select

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Alert, Version
from alertd.broker import RecordingPublisher
from alertd.channels import dispatch
from alertd.channels.base import Channel
from alertd.channels.limiter import Grant, Shape, bucket_for
from alertd.channels.limiter.bucket import (
    HOLD_SECONDS,
    REDIS_PREFIX,
    FileBucket,
    RedisBucket,
    State,
    release_tokens,
    take_tokens,
)
from alertd.channels.models import Delivery
from alertd.channels.registry import OUT_SENT, Outcome, Registry, load_channel
from alertd.context import Context
from alertd.observe import metrics
from alertd.settings import Settings, load_settings
from tests.support.factories import alert_body
from tests.support.processes import RedisServer, free_port, redis_server


def _busiest_window(times: list[float], width: float = 1.0) -> int:
    """The most timestamps in any window of ``width`` seconds (closed at both ends)."""
    times, best, start = sorted(times), 0, 0
    for end, t in enumerate(times):
        while t - times[start] > width:
            start += 1
        best = max(best, end - start + 1)
    return best


# The shape ---------------------------------------------------------------------------------


def _simulate(
    rate: float, seconds: float, pause: float = 0.0, latency: float = 0.0, seed: int = 1
) -> list[float]:
    """Arrival times at the provider of the requests of two greedy takers of up to 25 on one
    bucket, on a 1 ms clock. A piece is answered ``latency`` seconds after its grant, each of
    its requests arriving anywhere in between; then its taker is away ``pause`` seconds
    (recording its sub-batch) before asking again."""
    rng = random.Random(seed)
    shape, state, arrivals = Shape.for_rate(rate), None, []
    back = [0.0, 0.0]
    answers: list[tuple[float, str]] = []
    for step in range(int(seconds * 1000)):
        now = step / 1000
        for at, ticket in [a for a in answers if a[0] <= now]:
            assert state is not None
            state = release_tokens(state, now, ticket)
            answers.remove((at, ticket))
        for taker in (0, 1):
            if now < back[taker]:
                continue
            grant, state = take_tokens(state, now, shape, 25)
            if grant.granted:
                arrivals += [now + rng.uniform(0, latency) for _ in range(grant.granted)]
                answers.append((now + latency, grant.ticket))
                back[taker] = now + latency + pause
    return arrivals


@pytest.mark.parametrize("rate", [0.5, 1, 2, 10, 37.5, 99, 200, 1000])
@pytest.mark.parametrize(("pause", "latency"), [(0.0, 0.0), (0.04, 0.0), (0.0, 0.3)])
def test_no_one_second_window_of_arrivals_holds_more_than_the_rate(
    rate: float, pause: float, latency: float
) -> None:
    arrivals = _simulate(rate, 4.0, pause, latency)

    assert arrivals
    assert _busiest_window(arrivals) <= max(1, rate)


@pytest.mark.parametrize("pause", [0.0, 0.04])
def test_a_steady_stream_gets_close_to_the_rate(pause: float) -> None:
    # Two takers each away 40 ms after every grant still keep the pace: the bucket holds
    # 100 ms of tokens for them.
    arrivals = _simulate(200, 5.0, pause)

    assert len(arrivals) / 5 >= 0.97 * 200


@pytest.mark.parametrize("rate", [0, -1, float("nan")])
def test_a_rate_that_is_not_positive_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="above 0"):
        Shape.for_rate(rate)


def test_the_wait_says_when_the_rest_is_likely() -> None:
    shape = Shape(burst=4, refill=100, cap=100, window=1.0)

    grant, _ = take_tokens(State(0.5, 0.0), 0.0, shape, 10)

    # Nothing whole to give; a quarter of a burst (1 token) is half a token away.
    assert grant.granted == 0
    assert grant.wait == pytest.approx(0.005)
    # With a burst of 40, the wait is for 10 tokens, not for the 40 a full bucket would hold.
    big = Shape(burst=40, refill=100, cap=100, window=1.0)
    assert take_tokens(State(0.0, 0.0), 0.0, big, 30)[0].wait == pytest.approx(0.1)
    # A clock stepped back refills nothing.
    assert take_tokens(State(1.0, 30.0), 0.0, shape, 5)[0].granted == 1


def test_a_grant_counts_until_a_window_after_its_answer() -> None:
    shape = Shape(burst=50, refill=1000, cap=5, window=0.5)

    first, state = take_tokens(None, 10.0, shape, 8)
    # Unanswered, the five still count 0.6 s later, and will for at least a window.
    held, state = take_tokens(state, 10.6, shape, 8)
    state = release_tokens(state, 10.7, first.ticket)
    still, state = take_tokens(state, 11.1, shape, 8)
    after, _ = take_tokens(state, 11.2, shape, 8)

    assert (first.granted, first.wait) == (5, pytest.approx(0.5))
    assert (held.granted, held.wait) == (0, pytest.approx(0.5))
    assert (still.granted, still.wait) == (0, pytest.approx(0.1))
    assert after.granted == 5
    # A grant never answered (its worker died) leaves after HOLD_SECONDS and a window.
    _lost, state = take_tokens(None, 0.0, shape, 5)
    assert take_tokens(state, HOLD_SECONDS + 0.4, shape, 5)[0].granted == 0
    assert take_tokens(state, HOLD_SECONDS + 0.6, shape, 5)[0].granted == 5


def test_a_full_log_wakes_its_takers_when_its_oldest_grant_leaves() -> None:
    # Plenty of tokens; the log is full of four grants of two, answered at once, 10 ms apart.
    shape = Shape(burst=20, refill=1000, cap=8, window=1.0)
    state = None
    for at in (0.0, 0.01, 0.02, 0.03):
        grant, state = take_tokens(state, at, shape, 2)
        state = release_tokens(state, at, grant.ticket)

    waiting, _ = take_tokens(state, 0.5, shape, 4)

    # Not until the two oldest have left (a quarter of the burst, 5 tokens, or the 4 wanted):
    # the oldest's places would then stay free 10 ms, and no window can use them again.
    assert (waiting.granted, waiting.wait) == (0, pytest.approx(0.5))


# Shared across processes ---------------------------------------------------------------------


def _hammer(kind: str, where: str, rate: float, seconds: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    bucket = FileBucket(Path(where)) if kind == "file" else RedisBucket.from_url(where)
    shape, granted, deadline = Shape.for_rate(rate), 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        grant = bucket.take("phones", shape, 7)
        granted += grant.granted
        if grant.granted:
            bucket.release("phones", grant.ticket)
        else:
            time.sleep(min(grant.wait, 0.01))
    out.put(granted)


def _shared_by_processes(kind: str, where: str, rate: float = 400, seconds: float = 1.5) -> None:
    shape = Shape.for_rate(rate)
    out: multiprocessing.Queue[int] = multiprocessing.Queue()  # type: ignore[type-arg]
    procs = [
        multiprocessing.get_context("fork").Process(
            target=_hammer, args=(kind, where, rate, seconds, out)
        )
        for _ in range(4)
    ]
    started = time.time()
    for p in procs:
        p.start()
    totals = [out.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=10)
    elapsed = time.time() - started

    # Every grant happened between `started` and now: a token granted twice (a lost update)
    # would push the sum past what the bucket held and refilled over that time.
    assert sum(totals) <= shape.burst + shape.refill * elapsed
    # ...and the bucket does grant: more than half of the refill over the run.
    assert sum(totals) >= 0.5 * rate * seconds
    assert all(t > 0 for t in totals)


def test_the_file_bucket_grants_no_token_twice_across_processes(tmp_path: Path) -> None:
    _shared_by_processes("file", str(tmp_path / "limiter"))


@pytest.mark.redis
def test_the_redis_bucket_grants_no_token_twice_across_processes(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis") as server:
        _shared_by_processes("redis", server.url)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis") as server:
        yield server


@pytest.mark.redis
def test_the_redis_script_grants_a_burst_then_names_the_wait(redis: RedisServer) -> None:
    bucket, shape = RedisBucket.from_url(redis.url), Shape(burst=4, refill=100, cap=100, window=1)

    first = bucket.take("sms", shape, 10)
    second = bucket.take("sms", shape, 10)

    assert first.granted == 4 and 0 < first.wait <= 0.04 and first.ticket == "1:4"
    assert second.granted == 0 and 0 < second.wait <= 0.04 and second.ticket == ""
    client: Redis[bytes] = Redis.from_url(redis.url)
    # The state keeps microseconds (not Lua's 14 digits) and goes away once idle.
    at = client.hget(REDIS_PREFIX + "{sms}", "at")
    assert at is not None and len(at.split(b".")[1]) == 6
    assert 0 < client.pttl(REDIS_PREFIX + "{sms}") <= (HOLD_SECONDS + 2.04) * 1000
    assert 0 < client.pttl(REDIS_PREFIX + "{sms}:log") <= (HOLD_SECONDS + 2.04) * 1000
    time.sleep(0.05)
    assert bucket.take("sms", shape, 10).granted == 4
    # Another channel has its own bucket.
    assert bucket.take("pager", shape, 2) == Grant(2, 0.0, "1:2")


@pytest.mark.redis
def test_the_redis_script_counts_a_grant_until_a_window_after_its_answer(
    redis: RedisServer,
) -> None:
    bucket, shape = RedisBucket.from_url(redis.url), Shape(burst=50, refill=1000, cap=5, window=0.3)

    first = bucket.take("sms", shape, 8)
    time.sleep(0.35)
    unanswered = bucket.take("sms", shape, 8)
    bucket.release("sms", first.ticket)
    answered = bucket.take("sms", shape, 8)
    time.sleep(0.31)
    after = bucket.take("sms", shape, 8)

    assert first.granted == 5 and 0.25 < first.wait <= 0.3
    # In flight for 0.35 s, longer than the window: still counted.
    assert unanswered.granted == 0 and 0.25 < unanswered.wait <= 0.3
    assert answered.granted == 0
    assert after.granted == 5
    client: Redis[bytes] = Redis.from_url(redis.url)
    assert client.zcard(REDIS_PREFIX + "{sms}:log") == 1
    assert client.hget(REDIS_PREFIX + "{sms}", "used") == b"5"
    # Releasing a ticket twice, or one long gone, changes nothing.
    bucket.release("sms", first.ticket)
    bucket.release("sms", "99:1")
    assert client.zcard(REDIS_PREFIX + "{sms}:log") == 1


def test_the_bucket_follows_the_broker(tmp_path: Path) -> None:
    def settings(broker: str) -> Settings:
        return load_settings(
            {"INSTANCE_PATH": str(tmp_path / "i"), "BROKER_URL": broker}, environ={}
        )

    assert isinstance(bucket_for(settings("")), FileBucket)
    assert isinstance(bucket_for(settings("redis://127.0.0.1:1/0")), RedisBucket)
    with pytest.raises(ValueError, match="Redis broker or the embedded default"):
        bucket_for(settings("amqp://guest@localhost//"))


def test_a_channel_rate_comes_from_its_setting() -> None:
    channel = load_channel(
        "tests.support.channels:RecordingChannel", {"ALERTD_RECORDING_RATE": "200"}
    )
    unlimited = load_channel(
        "tests.support.channels:RecordingChannel", {"ALERTD_RECORDING_RATE": "0"}
    )

    assert channel.rate == 200.0 and unlimited.rate is None
    with pytest.raises(ValueError, match="ALERTD_RECORDING_RATE must be a number"):
        load_channel("tests.support.channels:RecordingChannel", {"ALERTD_RECORDING_RATE": "fast"})


# Through deliver_batch -----------------------------------------------------------------------

RECIPIENTS = 12


class RatedPhones(Channel):
    name = "rated"
    idempotent = False
    rate = 8.0

    def __init__(self, rate: float = 8.0) -> None:
        self.rate = rate  # type: ignore[misc]
        self.sends: list[tuple[float, int]] = []
        self.on_first_call: object = None
        self.on_call: object = None

    def plan(self, ctx: Context, version: Version) -> Iterable[str]:
        return [f"+1555000{i:04d}" for i in range(RECIPIENTS)]

    def deliver(
        self, ctx: Context, version: Version, deliveries: Sequence[Delivery]
    ) -> list[Outcome]:
        if not self.sends and callable(self.on_first_call):
            self.on_first_call()
        if callable(self.on_call):
            self.on_call()
        self.sends += [(time.monotonic(), d.id) for d in deliveries]
        return [Outcome(d.id, OUT_SENT) for d in deliveries]


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return load_settings(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": db_url,
            "SECRET_KEY": "test-secret-key",
            "CHANNELS": "log",
            "PUBLIC_URL": "http://alertd.test",
            "SEND_BATCH": 6,
            "DELIVERY_LEASE_SECONDS": 1,
        },
        environ={},
    )


@pytest.fixture
def rated(ctx: Context, request: pytest.FixtureRequest) -> RatedPhones:
    channel = RatedPhones(getattr(request, "param", 8.0))
    ctx.use_channels(Registry([channel]))
    return channel


def _approve_and_run(
    ctx: Context, publisher: RecordingPublisher, officer: Actor, supervisor: Actor
) -> Alert:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    approved = services.approve_alert(ctx, alert.id, by=supervisor)
    steps = {
        "alertd.dispatch_version": dispatch.dispatch_version,
        "alertd.plan_dispatch": dispatch.plan_dispatch,
        "alertd.deliver_batch": dispatch.deliver_batch,
    }
    while publisher.sent:
        name, args = publisher.sent.pop(0)
        if name in steps:
            steps[name](ctx, *args)
    return approved


def _rows(ctx: Context) -> list[Delivery]:
    with ctx.db.session() as session:
        return list(session.execute(select(Delivery).order_by(Delivery.id)).scalars())


def test_a_rated_channel_is_released_no_faster_than_its_rate(
    ctx: Context,
    publisher: RecordingPublisher,
    rated: RatedPhones,
    officer: Actor,
    supervisor: Actor,
) -> None:
    waits_before = _limiter_waits("rated")

    _approve_and_run(ctx, publisher, officer, supervisor)

    rows = _rows(ctx)
    assert [d.state for d in rows] == ["sent"] * RECIPIENTS
    assert all(d.attempts == 1 for d in rows)
    times = [t for t, _ in rated.sends]
    # At 8/s (a burst of one token), twelve requests take at least a second and a half.
    assert times[-1] - times[0] >= (RECIPIENTS - 1) / 8
    assert _busiest_window(times) <= 8
    # Every piece released is one observation of the wait metric.
    assert _limiter_waits("rated") - waits_before == RECIPIENTS


def test_waiting_for_the_limiter_keeps_the_lease_of_rows_not_yet_sent(
    ctx: Context,
    publisher: RecordingPublisher,
    rated: RatedPhones,
    officer: Actor,
    supervisor: Actor,
) -> None:
    # given: one sub-batch of 12 at 8/s takes 1.4 s, past the one-second lease
    ctx.settings = ctx.settings.with_overrides(SEND_BATCH=RECIPIENTS)
    reclaimed: list[int] = []

    def sweep_late() -> None:
        if rated.sends and time.monotonic() - rated.sends[0][0] > 1.15 and not reclaimed:
            reclaimed.append(dispatch.reclaim_expired_leases(ctx))

    rated.on_call = sweep_late

    # when: the sweeper runs while the last rows still wait for tokens
    _approve_and_run(ctx, publisher, officer, supervisor)

    # then: it found no expired lease to take, and every row was sent once
    assert reclaimed == [0]
    assert [d.state for d in _rows(ctx)] == ["sent"] * RECIPIENTS


@pytest.mark.parametrize("rated", [3.0], indirect=True)
def test_a_cancel_while_waiting_for_the_limiter_stops_the_rest(
    ctx: Context,
    publisher: RecordingPublisher,
    rated: RatedPhones,
    officer: Actor,
    supervisor: Actor,
    operator: Actor,
) -> None:
    # given: 3/s, so the first sub-batch of six needs two seconds
    alert_id: list[int] = []
    rated.on_first_call = lambda: services.cancel_alert(ctx, alert_id[0], "found", by=operator)
    alert = services.create_alert(ctx, alert_body(), by=officer)
    alert_id.append(alert.id)
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)

    # when: the alert is cancelled as the first request leaves
    steps = {
        "alertd.dispatch_version": dispatch.dispatch_version,
        "alertd.plan_dispatch": dispatch.plan_dispatch,
        "alertd.deliver_batch": dispatch.deliver_batch,
    }
    while publisher.sent:
        name, args = publisher.sent.pop(0)
        if name in steps:
            steps[name](ctx, *args)

    # then: the re-check a second into the wait stopped the sub-batch midway; only the cancel
    # message itself went out after it
    rows = _rows(ctx)
    first = [d for d in rows if d.dispatch_id == rows[0].dispatch_id]
    sent = [t for t, d in rated.sends if d in {r.id for r in first}]
    assert sent[-1] - sent[0] < 1.1
    assert 1 <= len(sent) < 6
    states = [d.state for d in first]
    assert states.count("sent") == len(sent)
    assert set(states) == {"sent", "skipped"}


def test_an_unreachable_limiter_sends_nothing_and_uses_no_attempt(
    ctx: Context,
    publisher: RecordingPublisher,
    rated: RatedPhones,
    officer: Actor,
    supervisor: Actor,
) -> None:
    ctx.settings = ctx.settings.with_overrides(BROKER_URL=f"redis://127.0.0.1:{free_port()}/0")

    _approve_and_run(ctx, publisher, officer, supervisor)

    rows = _rows(ctx)
    assert rated.sends == []
    assert {d.state for d in rows} == {"retry_wait"}
    assert all(d.attempts == 0 for d in rows)
    assert all("rate limiter unreachable" in d.last_error for d in rows)


def _limiter_waits(channel: str) -> float:
    """How many waits the limiter has observed for ``channel`` in this process."""
    for family in metrics.LIMITER_WAIT_SECONDS.collect():
        for sample in family.samples:
            if sample.name.endswith("_count") and sample.labels.get("channel") == channel:
                return sample.value
    return 0.0
