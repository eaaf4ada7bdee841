"""Deliveries against the audit trail: `alertd audit verify` follows each delivery through the
entries that moved it (record, lease expiry, reconcile, an operator's retry) and finds an
outcome, a recipient hash or a recipient changed in the table; `alertd deliveries purge` erases
recipients of finished deliveries and the trail still verifies. Before the rows carried their
recipient hash and verify followed deliveries, every tamper here verified as intact."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import Select, delete, literal, select, union_all, update

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Alert, Version
from alertd.audit.models import AuditEntry
from alertd.audit.recipients import recipient_hash, recipient_key
from alertd.broker import RecordingPublisher
from alertd.channels import dispatch
from alertd.channels.base import Channel
from alertd.channels.models import Delivery
from alertd.channels.registry import (
    OUT_FAILED,
    OUT_RETRY,
    OUT_SENT,
    OUT_THROTTLED,
    Outcome,
    Registry,
)
from alertd.channels.sms import services as sms
from alertd.channels.webhooks import services as webhooks
from alertd.cli import main
from alertd.context import Context
from alertd.db import utcnow
from alertd.errors import Conflict
from tests.support.factories import alert_body
from tests.support.tasks import run_pending_tasks

RECIPIENTS = 7
NUMBERS = [f"+1555000{i:04d}" for i in range(RECIPIENTS)]


class Phones(Channel):
    """Not idempotent. ``script`` gives a delivery's recipient the outcomes of its first
    calls; the provider's record answers reconcile."""

    name = "phones"
    idempotent = False

    def __init__(self) -> None:
        self.script: dict[str, list[str]] = {}
        self.raise_once = False
        self.provider_record: set[int] = set()

    def plan(self, ctx: Context, version: Version) -> Iterable[str]:
        return NUMBERS

    def deliver(
        self, ctx: Context, version: Version, deliveries: Sequence[Delivery]
    ) -> list[Outcome]:
        self.provider_record |= {d.id for d in deliveries}
        if self.raise_once:
            self.raise_once = False
            raise ConnectionError("gateway hung up")
        out = []
        for d in deliveries:
            scripted = self.script.get(d.recipient, [])
            state = scripted.pop(0) if scripted else OUT_SENT
            out.append(Outcome(d.id, state, "" if state == OUT_SENT else "scripted"))
        return out

    def reconcile(self, ctx: Context, deliveries: Sequence[Delivery]) -> list[Outcome]:
        return [
            Outcome(d.id, OUT_SENT if d.id in self.provider_record else OUT_RETRY, "reconciled")
            for d in deliveries
        ]


class Sms(Phones):
    """Named as the SMS channel, so the SMS console's retry of a failed delivery applies."""

    name = "sms"


SEND_BATCH = 3


@pytest.fixture
def ctx(ctx: Context) -> Context:
    # Sub-batches of 3 of the 7 recipients: a crash or a cancel leaves some of them unsent.
    ctx.settings = ctx.settings.with_overrides(SEND_BATCH=SEND_BATCH)
    return ctx


@pytest.fixture
def phones(ctx: Context) -> Iterator[Phones]:
    channel = Phones()
    ctx.use_channels(Registry([channel]))
    yield channel


def _plan_only(ctx: Context, publisher: RecordingPublisher) -> None:
    """Run dispatch and planning, but none of the delivery tasks: the rows stay pending."""
    while publisher.sent:
        name, args = publisher.sent.pop(0)
        if name == dispatch.PLAN_TASK:
            dispatch.plan_dispatch(ctx, args[0])
        elif name != dispatch.DELIVER_TASK:
            dispatch.dispatch_version(ctx, args[0])


def _settle(ctx: Context, publisher: RecordingPublisher) -> None:
    """What the sweeper and workers do over time: reconcile, resend what is due."""
    for _ in range(6):
        dispatch.reconcile_unknown(ctx)
        with ctx.db.engine.begin() as conn:
            conn.execute(
                update(Delivery)
                .where(Delivery.state == "retry_wait")
                .values(next_attempt_at=utcnow() - timedelta(seconds=1))
            )
        dispatch.resume_stalled(ctx)
        run_pending_tasks(ctx, publisher)


Cli = Callable[..., tuple[int, str]]


@pytest.fixture
def cli(ctx: Context, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """`alertd ...` run by the real entry point against the test's instance."""
    settings = ctx.settings
    monkeypatch.setenv("ALERTD_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("ALERTD_INSTANCE_PATH", str(settings.instance_path))
    monkeypatch.setenv("ALERTD_PUBLIC_URL", settings.PUBLIC_URL)
    monkeypatch.setenv("ALERTD_SECRET_KEY", settings.SECRET_KEY)

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out + err

    return run


def _verify(cli: Cli, ctx: Context) -> tuple[int, str]:
    return cli("audit", "verify", "--checkpoints", str(ctx.settings.audit_checkpoint_dir))


def _approve(ctx: Context, officer: Actor, supervisor: Actor) -> Alert:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    return services.approve_alert(ctx, alert.id, by=supervisor)


def _rows(ctx: Context) -> list[Delivery]:
    with ctx.db.session() as session:
        return list(session.execute(select(Delivery).order_by(Delivery.id)).scalars())


def _fan_out(
    ctx: Context, publisher: RecordingPublisher, officer: Actor, supervisor: Actor
) -> Alert:
    alert = _approve(ctx, officer, supervisor)
    run_pending_tasks(ctx, publisher)
    return alert


def test_planned_rows_carry_their_recipient_hash_and_a_fan_out_verifies(
    ctx: Context,
    publisher: RecordingPublisher,
    phones: Phones,
    officer: Actor,
    supervisor: Actor,
    cli: Cli,
) -> None:
    _fan_out(ctx, publisher, officer, supervisor)
    key = recipient_key(ctx.settings)
    rows = _rows(ctx)
    assert [d.state for d in rows] == ["sent"] * RECIPIENTS
    assert all(d.recipient_hash == recipient_hash(key, d.recipient) for d in rows)

    code, output = _verify(cli, ctx)

    assert code == 0, output
    assert f"{RECIPIENTS} deliveries match their latest audited outcome" in output


def test_recipients_copied_by_insert_select_get_their_hash_in_the_chunk(
    ctx: Context, publisher: RecordingPublisher, officer: Actor, supervisor: Actor, cli: Cli
) -> None:
    numbers = union_all(*(select(literal(n).label("r")) for n in NUMBERS))

    class Listed(Phones):
        def plan_query(self, ctx: Context, version: Version) -> Select[tuple[str]] | None:
            return select(numbers.subquery().c.r)

    ctx.use_channels(Registry([Listed()]))
    _fan_out(ctx, publisher, officer, supervisor)
    key = recipient_key(ctx.settings)
    rows = _rows(ctx)
    assert sorted(d.recipient for d in rows) == NUMBERS
    assert all(d.recipient_hash == recipient_hash(key, d.recipient) for d in rows)
    assert _verify(cli, ctx)[0] == 0


@pytest.mark.parametrize(("old", "new"), [("sent", "failed"), ("failed", "sent")])
def test_a_delivery_outcome_changed_in_the_table_is_detected_and_named(
    ctx: Context,
    publisher: RecordingPublisher,
    phones: Phones,
    officer: Actor,
    supervisor: Actor,
    cli: Cli,
    old: str,
    new: str,
) -> None:
    phones.script = {NUMBERS[2]: [OUT_FAILED]}
    _fan_out(ctx, publisher, officer, supervisor)
    target = next(d for d in _rows(ctx) if d.state == old)
    with ctx.db.engine.begin() as conn:
        conn.execute(update(Delivery).where(Delivery.id == target.id).values(state=new))

    code, output = _verify(cli, ctx)

    assert code == 1, output
    assert f"delivery {target.id} is {new} but should be {old}" in output


def test_a_delivery_put_back_in_flight_in_the_table_is_detected(
    ctx: Context,
    publisher: RecordingPublisher,
    phones: Phones,
    officer: Actor,
    supervisor: Actor,
    cli: Cli,
) -> None:
    _fan_out(ctx, publisher, officer, supervisor)
    target = _rows(ctx)[0]
    with ctx.db.engine.begin() as conn:
        conn.execute(update(Delivery).where(Delivery.id == target.id).values(state="pending"))

    code, output = _verify(cli, ctx)

    assert code == 1 and f"delivery {target.id} is pending but should be sent" in output


def test_a_recipient_or_its_hash_changed_in_the_table_is_detected(
    ctx: Context,
    publisher: RecordingPublisher,
    phones: Phones,
    officer: Actor,
    supervisor: Actor,
    cli: Cli,
) -> None:
    _fan_out(ctx, publisher, officer, supervisor)
    first, second = _rows(ctx)[:2]
    with ctx.db.engine.begin() as conn:
        conn.execute(update(Delivery).where(Delivery.id == first.id).values(recipient="+19999"))
        conn.execute(
            update(Delivery).where(Delivery.id == second.id).values(recipient_hash="0" * 64)
        )

    code, output = _verify(cli, ctx)

    assert code == 1, output
    assert f"delivery {first.id}'s recipient does not match its recipient hash" in output
    assert "no longer match its digest" in output and str(second.id) in output


def test_a_delivery_row_inserted_or_deleted_in_the_table_is_detected(
    ctx: Context,
    publisher: RecordingPublisher,
    phones: Phones,
    officer: Actor,
    supervisor: Actor,
    cli: Cli,
) -> None:
    _fan_out(ctx, publisher, officer, supervisor)
    rows = _rows(ctx)
    gone = rows[-1]
    with ctx.db.transaction() as session:
        session.execute(delete(Delivery).where(Delivery.id == gone.id))
        forged = Delivery(
            id=gone.id + 100,  # SQLite would hand the deleted row's id out again.
            dispatch_id=rows[0].dispatch_id,
            version_id=rows[0].version_id,
            alert_id=rows[0].alert_id,
            channel="phones",
            recipient="+15550999999",
            recipient_hash=recipient_hash(recipient_key(ctx.settings), "+15550999999"),
            state="sent",
        )
        session.add(forged)
        session.flush()
        forged_id = forged.id

    code, output = _verify(cli, ctx)

    assert code == 1, output
    assert f"delivery {forged_id} is sent but should be pending or sending" in output
    assert str(gone.id) in output and "deleted" in output


def test_retries_throttles_reconcile_and_lease_expiry_each_verify(
    ctx: Context,
    publisher: RecordingPublisher,
    phones: Phones,
    officer: Actor,
    supervisor: Actor,
    cli: Cli,
) -> None:
    """Every legitimate later move of a delivery writes an entry that verify follows."""
    phones.script = {NUMBERS[4]: [OUT_RETRY], NUMBERS[5]: [OUT_THROTTLED]}
    phones.raise_once = True  # The first sub-batch ends unknown.
    _fan_out(ctx, publisher, officer, supervisor)
    states = [d.state for d in _rows(ctx)]
    assert states.count("unknown") == SEND_BATCH and "retry_wait" in states
    assert _verify(cli, ctx)[0] == 0

    # Reconcile: the provider's record settles the unknown ones (one entry for the sweep).
    phones.provider_record.discard(next(d.id for d in _rows(ctx) if d.state == "unknown"))
    assert dispatch.reconcile_unknown(ctx) > 0
    code, output = _verify(cli, ctx)
    assert code == 0, output

    # A lease that ran out mid-send: the sweeper turns the row unknown, in one entry.
    target = next(d for d in _rows(ctx) if d.state == "retry_wait")
    with ctx.db.engine.begin() as conn:
        conn.execute(
            update(Delivery)
            .where(Delivery.id == target.id)
            .values(
                state="sending",
                lease_until=utcnow() - timedelta(seconds=5),
                attempted_at=utcnow() - timedelta(seconds=60),
            )
        )
    assert _verify(cli, ctx)[0] == 0  # A claimed row is in flight: no entry needed yet.
    assert dispatch.reclaim_expired_leases(ctx) == 1
    assert next(d for d in _rows(ctx) if d.id == target.id).state == "unknown"
    code, output = _verify(cli, ctx)
    assert code == 0, output

    # The rest are sent once due again.
    _settle(ctx, publisher)
    assert [d.state for d in _rows(ctx)] == ["sent"] * RECIPIENTS
    code, output = _verify(cli, ctx)
    assert code == 0, output
    with ctx.db.session() as session:
        actions = set(session.execute(select(AuditEntry.action)).scalars())
    assert {"delivery.batch", "delivery.reconciled", "delivery.lease_expired"} <= actions


def test_a_cancel_that_skips_the_rest_verifies(
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
    operator: Actor,
    cli: Cli,
) -> None:
    class Cancelling(Phones):
        def deliver(
            self, ctx: Context, version: Version, deliveries: Sequence[Delivery]
        ) -> list[Outcome]:
            if not self.provider_record:
                services.cancel_alert(ctx, version.alert_id, "found safe", by=operator)
            return super().deliver(ctx, version, deliveries)

    ctx.use_channels(Registry([Cancelling()]))
    _fan_out(ctx, publisher, officer, supervisor)
    assert "skipped" in {d.state for d in _rows(ctx)}
    code, output = _verify(cli, ctx)
    assert code == 0, output


def test_an_operator_retry_of_a_failed_delivery_verifies(
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
    operator: Actor,
    cli: Cli,
) -> None:
    channel = Sms()
    channel.script = {NUMBERS[3]: [OUT_FAILED]}
    ctx.use_channels(Registry([channel]))
    _fan_out(ctx, publisher, officer, supervisor)
    failed = next(d for d in _rows(ctx) if d.state == "failed")

    sms.retry_failed(ctx, failed.id, by=operator)

    assert _verify(cli, ctx)[0] == 0  # Pending again, as its entry says.
    run_pending_tasks(ctx, publisher)
    assert [d.state for d in _rows(ctx)] == ["sent"] * RECIPIENTS
    code, output = _verify(cli, ctx)
    assert code == 0, output


class Hooks(Phones):
    """Named as the webhook channel, so an operator's replay applies; recipients are endpoint
    ids, as the webhook channel's are."""

    name = "webhook"

    def plan(self, ctx: Context, version: Version) -> Iterable[str]:
        return [str(i) for i in range(1, RECIPIENTS + 1)]


def test_an_operator_replay_verifies_and_a_purged_delivery_is_not_replayed(
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
    operator: Actor,
    cli: Cli,
) -> None:
    channel = Hooks()
    channel.script = {"2": [OUT_FAILED], "5": [OUT_FAILED, OUT_FAILED]}
    ctx.use_channels(Registry([channel]))
    _fan_out(ctx, publisher, officer, supervisor)
    first, second = [d for d in _rows(ctx) if d.state == "failed"]

    assert webhooks.replay(ctx, by=operator, delivery_id=first.id) == 1

    assert _verify(cli, ctx)[0] == 0  # Pending again, as the replay's entry says.
    run_pending_tasks(ctx, publisher)
    code, output = _verify(cli, ctx)
    assert code == 0, output
    assert {d.id: d.state for d in _rows(ctx)}[first.id] == "sent"

    assert cli("deliveries", "purge", "--before", utcnow().isoformat())[0] == 0
    with pytest.raises(Conflict):
        webhooks.replay(ctx, by=operator, delivery_id=second.id)
    assert _verify(cli, ctx)[0] == 0


def test_purge_erases_finished_recipients_and_the_trail_still_verifies(
    ctx: Context,
    publisher: RecordingPublisher,
    phones: Phones,
    officer: Actor,
    supervisor: Actor,
    cli: Cli,
) -> None:
    phones.script = {NUMBERS[1]: [OUT_FAILED]}
    _fan_out(ctx, publisher, officer, supervisor)
    finished = {d.id: d for d in _rows(ctx)}
    # A second alert, approved but not yet sent: its deliveries are in flight.
    _approve(ctx, officer, supervisor)
    _plan_only(ctx, publisher)
    in_flight = {d.id: d for d in _rows(ctx) if d.id not in finished}
    assert in_flight and {d.state for d in in_flight.values()} == {"pending"}

    code, output = cli("deliveries", "purge", "--before", utcnow().isoformat())

    assert code == 0, output
    assert f"erased the recipients of {RECIPIENTS} finished deliveries" in output
    rows = {d.id: d for d in _rows(ctx)}
    for delivery_id, before in finished.items():
        assert rows[delivery_id].recipient == f"erased:{delivery_id}"
        assert rows[delivery_id].state == before.state
        assert rows[delivery_id].recipient_hash == before.recipient_hash
    for delivery_id, before in in_flight.items():
        assert rows[delivery_id].recipient == before.recipient  # In flight: untouched.
    with ctx.db.session() as session:
        entries = list(session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars())
    [purge] = [e for e in entries if e.action == "delivery.purge"]
    assert purge.detail["deliveries"] == RECIPIENTS
    assert purge.detail["by_channel"] == {"phones": RECIPIENTS}
    trail = json.dumps([e.detail for e in entries])
    assert not any(number in trail for number in NUMBERS)

    code, output = _verify(cli, ctx)
    assert code == 0, output
    assert f"{2 * RECIPIENTS} deliveries match" in output

    # Purged outcomes stay protected: a change is still found without the recipient.
    erased = next(iter(finished))
    with ctx.db.engine.begin() as conn:
        conn.execute(update(Delivery).where(Delivery.id == erased).values(state="skipped"))
    code, output = _verify(cli, ctx)
    assert code == 1 and f"delivery {erased} is skipped" in output


def test_a_second_purge_finds_nothing_left(
    ctx: Context,
    publisher: RecordingPublisher,
    phones: Phones,
    officer: Actor,
    supervisor: Actor,
    cli: Cli,
) -> None:
    _fan_out(ctx, publisher, officer, supervisor)
    now = utcnow().isoformat()
    assert cli("deliveries", "purge", "--before", now)[0] == 0
    code, output = cli("deliveries", "purge", "--before", now)
    assert code == 0 and "erased the recipients of 0 finished deliveries" in output


def test_purge_keeps_deliveries_of_alerts_sent_after_the_date(
    ctx: Context,
    publisher: RecordingPublisher,
    phones: Phones,
    officer: Actor,
    supervisor: Actor,
    cli: Cli,
) -> None:
    _fan_out(ctx, publisher, officer, supervisor)
    before = {d.id: d.recipient for d in _rows(ctx)}
    code, output = cli("deliveries", "purge", "--before", "2020-01-01")
    assert code == 0, output
    assert {d.id: d.recipient for d in _rows(ctx)} == before


@pytest.mark.parametrize(
    ("value", "message"),
    [("last tuesday", "is not a date"), ("2999-01-01", "is in the future")],
)
def test_purge_refuses_a_bad_date_and_changes_nothing(
    ctx: Context,
    publisher: RecordingPublisher,
    phones: Phones,
    officer: Actor,
    supervisor: Actor,
    cli: Cli,
    capsys: pytest.CaptureFixture[str],
    value: str,
    message: str,
) -> None:
    _fan_out(ctx, publisher, officer, supervisor)
    before = [(d.id, d.recipient, d.state) for d in _rows(ctx)]
    with ctx.db.session() as session:
        entries = len(list(session.execute(select(AuditEntry.seq)).scalars()))

    try:
        code, output = cli("deliveries", "purge", "--before", value)
    except SystemExit as exit_:  # argparse refuses what is not a date
        code, output = int(str(exit_.code)), capsys.readouterr().err

    assert code == 2 and message in output
    assert [(d.id, d.recipient, d.state) for d in _rows(ctx)] == before
    with ctx.db.session() as session:
        assert len(list(session.execute(select(AuditEntry.seq)).scalars())) == entries
