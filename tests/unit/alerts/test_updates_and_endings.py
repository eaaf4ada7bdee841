"""Updates are tied to what the approver reviewed and keep the alert's expiry; endings close
what is pending."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alertd.actor import SYSTEM, Actor
from alertd.alerts import services
from alertd.alerts.models import Alert
from alertd.context import Context
from alertd.db import utcnow
from alertd.errors import Conflict
from tests.support.factories import alert_body


def _active(ctx: Context, officer: Actor, supervisor: Actor) -> Alert:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    return services.approve_alert(ctx, alert.id, by=supervisor)


def _reload(ctx: Context, alert_id: int) -> Alert:
    with ctx.db.session() as session:
        return services.get_alert(session, alert_id)


def test_approving_a_replaced_proposal_publishes_nothing(
    ctx: Context, officer: Actor, officer2: Actor, supervisor: Actor
) -> None:
    alert = _active(ctx, officer, supervisor)
    reviewed = services.propose_update(
        ctx, alert.id, alert_body(direction_of_travel="south"), by=officer
    )
    services.propose_update(ctx, alert.id, alert_body(direction_of_travel="north"), by=officer2)

    with pytest.raises(Conflict, match="no longer the pending one"):
        services.approve_update(ctx, alert.id, by=supervisor, proposal_id=reviewed.id)

    assert len(_reload(ctx, alert.id).versions) == 1


def test_an_update_that_names_no_expiry_keeps_the_alerts(
    ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    alert = _active(ctx, officer, supervisor)
    body = alert_body(direction_of_travel="east")
    del body["expires_at"]

    proposal = services.propose_update(ctx, alert.id, body, by=officer)
    services.approve_update(ctx, alert.id, by=supervisor, proposal_id=proposal.id)

    assert _reload(ctx, alert.id).expires_at == alert.expires_at


def test_approving_an_older_proposal_does_not_undo_an_extension(
    ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    alert = _active(ctx, officer, supervisor)
    body = alert_body(direction_of_travel="east", expires_at=alert.expires_at.isoformat())
    proposal = services.propose_update(ctx, alert.id, body, by=officer)
    extended = services.extend_alert(ctx, alert.id, by=supervisor, minutes=600)

    services.approve_update(ctx, alert.id, by=supervisor, proposal_id=proposal.id)

    after = _reload(ctx, alert.id)
    assert after.expires_at == extended.expires_at
    assert after.versions[-1].expires_at == extended.expires_at


def test_expiry_closes_a_pending_proposal(ctx: Context, officer: Actor, supervisor: Actor) -> None:
    alert = _active(ctx, officer, supervisor)
    services.propose_update(ctx, alert.id, alert_body(direction_of_travel="west"), by=officer)
    with ctx.db.transaction() as session:
        services.get_alert(session, alert.id).expires_at = utcnow() - timedelta(seconds=1)
    assert services.expire_alert(ctx, alert.id, by=SYSTEM) is not None

    after = _reload(ctx, alert.id)
    assert after.pending_proposal is None and after.state == "expired"
    with pytest.raises(Conflict):
        services.reject_update(ctx, alert.id, "too late", by=supervisor)
