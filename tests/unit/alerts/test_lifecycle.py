"""The alert lifecycle through the service layer: roles, the second person, versions and
references, refusals that change nothing but the audit trail."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Alert, Version
from alertd.audit.models import AuditEntry
from alertd.audit.services import verify_chain
from alertd.broker import RecordingPublisher
from alertd.context import Context
from alertd.errors import Conflict, Forbidden, Invalid
from tests.support.factories import alert_body


def _active(ctx: Context, officer: Actor, supervisor: Actor, **body: Any) -> Alert:
    alert = services.create_alert(ctx, alert_body(**body), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    return services.approve_alert(ctx, alert.id, by=supervisor)


def _versions(ctx: Context, alert_id: int) -> list[Version]:
    with ctx.db.session() as session:
        return list(
            session.execute(
                select(Version).where(Version.alert_id == alert_id).order_by(Version.seq)
            ).scalars()
        )


def _audit_count(ctx: Context, **where: Any) -> int:
    with ctx.db.session() as session:
        query = select(func.count()).select_from(AuditEntry)
        for key, value in where.items():
            query = query.where(getattr(AuditEntry, key) == value)
        return int(session.execute(query).scalar_one())


def test_approval_publishes_an_alert_version_and_sends_its_outbox_row(
    ctx: Context, officer: Actor, supervisor: Actor, publisher: RecordingPublisher
) -> None:
    alert = _active(ctx, officer, supervisor)

    assert alert.state == "active"
    [version] = _versions(ctx, alert.id)
    assert (version.seq, version.msg_type, version.kind) == (1, "Alert", "alert")
    assert version.references == []
    assert publisher.sent and publisher.sent[-1][0] == "alertd.dispatch_version"


def test_the_submitting_officer_cannot_approve_even_with_a_supervisor_role_check_bypassed(
    ctx: Context, officer: Actor
) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    same_person_as_supervisor = Actor(officer.user_id, officer.username, "supervisor")

    with pytest.raises(Forbidden, match="second person"):
        services.approve_alert(ctx, alert.id, by=same_person_as_supervisor)

    with ctx.db.session() as session:
        assert services.get_alert(session, alert.id).state == "pending"
    assert _audit_count(ctx, action="alert.approve", outcome="refused") == 1


def test_an_officer_may_not_approve(ctx: Context, officer: Actor, officer2: Actor) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)

    with pytest.raises(Forbidden):
        services.approve_alert(ctx, alert.id, by=officer2)
    assert _versions(ctx, alert.id) == []


def test_approving_twice_is_harmless(ctx: Context, officer: Actor, supervisor: Actor) -> None:
    alert = _active(ctx, officer, supervisor)

    services.approve_alert(ctx, alert.id, by=supervisor)

    assert len(_versions(ctx, alert.id)) == 1


def test_update_then_cancel_reference_every_live_earlier_version(
    ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    alert = _active(ctx, officer, supervisor)
    proposal = services.propose_update(
        ctx, alert.id, alert_body(direction_of_travel="west on Route 9"), by=officer
    )
    services.approve_update(ctx, alert.id, by=supervisor, proposal_id=proposal.id)
    services.cancel_alert(ctx, alert.id, "issued in error", by=supervisor)

    first, update, cancel = _versions(ctx, alert.id)
    assert (update.msg_type, cancel.msg_type) == ("Update", "Cancel")
    assert [r[1] for r in update.references] == [first.identifier]
    assert [r[1] for r in cancel.references] == [first.identifier, update.identifier]
    assert update.content["direction_of_travel"] == "west on Route 9"
    with ctx.db.session() as session:
        assert services.get_alert(session, alert.id).state == "cancelled"
        assert verify_chain(session).ok


def test_resolve_is_an_update_and_ends_the_alert(
    ctx: Context, officer: Actor, supervisor: Actor, operator: Actor
) -> None:
    alert = _active(ctx, officer, supervisor)

    services.resolve_alert(ctx, alert.id, "child found safe", by=operator)

    versions = _versions(ctx, alert.id)
    assert (versions[-1].msg_type, versions[-1].kind) == ("Update", "resolve")
    with pytest.raises(Conflict):
        services.cancel_alert(ctx, alert.id, "too late", by=operator)


def test_submission_refuses_unmet_criteria_and_names_them(ctx: Context, officer: Actor) -> None:
    body = alert_body(criteria={"minor": True, "abduction_confirmed": False})
    alert = services.create_alert(ctx, body, by=officer)

    with pytest.raises(Invalid) as refused:
        services.submit_alert(ctx, alert.id, by=officer)

    assert "criteria.abduction_confirmed" in refused.value.fields
    assert "criteria.imminent_danger" in refused.value.fields
    with ctx.db.session() as session:
        assert services.get_alert(session, alert.id).state == "draft"


def test_bad_input_names_the_field_and_saves_nothing(ctx: Context, officer: Actor) -> None:
    body = alert_body(
        children=[{"name": "A", "age": "seven"}],
        expires_at="tomorrow",
        areas=[{"description": "x", "polygon": [[95, 0], [1, 1], [2, 2]]}],
    )

    with pytest.raises(Invalid) as refused:
        services.create_alert(ctx, body, by=officer)

    assert set(refused.value.fields) >= {"children[0].age", "expires_at", "areas[0].polygon[0][0]"}
    with ctx.db.session() as session:
        assert session.execute(select(func.count()).select_from(Alert)).scalar_one() == 0


def test_extend_publishes_an_update_with_the_new_expiry(
    ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    alert = _active(ctx, officer, supervisor)

    extended = services.extend_alert(ctx, alert.id, by=supervisor, minutes=30)

    versions = _versions(ctx, alert.id)
    assert versions[-1].kind == "extend"
    assert versions[-1].expires_at == extended.expires_at > versions[0].expires_at
