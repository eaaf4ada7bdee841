"""Decisions taken at the same moment by different people, on whichever database the suite
runs on: row locks (PostgreSQL) or the write lock (SQLite) must leave one outcome."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Version
from alertd.audit.services import record, verify_chain
from alertd.context import Context
from alertd.errors import ServiceError
from tests.support.factories import alert_body, make_actor


def test_two_supervisors_approving_at_once_publish_one_version(
    ctx: Context, officer: Actor
) -> None:
    supervisors = [make_actor(ctx, f"sup{i}", "supervisor") for i in range(4)]
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda s: services.approve_alert(ctx, alert.id, by=s), supervisors))

    assert all(r.state == "active" for r in results)
    with ctx.db.session() as session:
        count = session.execute(
            select(func.count()).select_from(Version).where(Version.alert_id == alert.id)
        ).scalar_one()
        assert count == 1
        assert verify_chain(session).ok


def test_cancel_racing_an_update_approval_leaves_a_consistent_alert(
    ctx: Context, officer: Actor, supervisor: Actor, operator: Actor
) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)
    proposal = services.propose_update(
        ctx, alert.id, alert_body(tip_line="+1 800 555 0111"), by=officer
    )

    def cancel() -> str:
        return services.cancel_alert(ctx, alert.id, "found", by=operator).state

    def approve() -> str:
        try:
            return services.approve_update(
                ctx, alert.id, by=supervisor, proposal_id=proposal.id
            ).state
        except ServiceError as error:
            return error.code

    with ThreadPoolExecutor(2) as pool:
        outcomes = [pool.submit(cancel), pool.submit(approve)]
        results = [f.result() for f in outcomes]

    with ctx.db.session() as session:
        final = services.get_alert(session, alert.id)
        kinds = [v.kind for v in final.versions]
        assert final.state == "cancelled" and kinds[-1] == "cancel"
        assert kinds in (["alert", "cancel"], ["alert", "update", "cancel"])
        assert verify_chain(session).ok
    assert results[0] == "cancelled"


def test_concurrent_audit_appends_keep_one_unbroken_chain(ctx: Context) -> None:
    actor = Actor(None, "load", "system")

    def append(i: int) -> None:
        for j in range(10):
            with ctx.db.transaction() as session:
                record(session, actor=actor, action="test.append", detail={"i": i, "j": j})

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(append, range(6)))

    with ctx.db.session() as session:
        result = verify_chain(session)
        assert result.ok and result.entries == 60


def test_verifying_while_entries_are_appended_sees_an_intact_trail(ctx: Context) -> None:
    actor = Actor(None, "load", "system")
    stop = threading.Event()

    def append() -> None:
        while not stop.is_set():
            with ctx.db.transaction() as session:
                record(session, actor=actor, action="test.append")

    writer = threading.Thread(target=append)
    writer.start()
    try:
        results = []
        deadline = time.monotonic() + 30
        # Verify until the writer has demonstrably appended meanwhile (SQLite takes turns).
        while len(results) < 30 or results[-1].entries < results[0].entries + 10:
            with ctx.db.session() as session:
                results.append(verify_chain(session))
            time.sleep(0.01)
            assert time.monotonic() < deadline, "the writer never got to write"
    finally:
        stop.set()
        writer.join()

    assert [r.problem for r in results if not r.ok] == []
    assert results[-1].entries > results[0].entries  # The writer was really writing.
