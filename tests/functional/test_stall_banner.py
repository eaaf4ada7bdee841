"""The "dispatch is stalled" banner (issue 10): on every signed-in page while work has waited
untaken past ALERTD_STALL_SECONDS, gone once a worker takes it."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import update

from alertd.actor import Actor
from alertd.alerts import services
from alertd.context import Context
from alertd.db import utcnow
from alertd.outbox.models import OutboxMessage
from tests.support.factories import PASSWORD, alert_body

BANNER = 'id="dispatch-stalled"'


def test_the_banner_shows_while_dispatch_is_stalled_and_goes_when_work_is_taken(
    ctx: Context, client: FlaskClient, officer: Actor, supervisor: Actor
) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    # Approved, published to a recording publisher: the outbox row waits, as with no worker.
    services.approve_alert(ctx, alert.id, by=supervisor)
    client.post("/login", data={"username": supervisor.username, "password": PASSWORD})
    pages = ["/", f"/alerts/{alert.id}", "/account"]
    for page in pages:
        assert BANNER not in client.get(page).get_data(as_text=True), page

    waited = ctx.settings.STALL_SECONDS + 30
    with ctx.db.transaction() as session:
        session.execute(
            update(OutboxMessage).values(created_at=utcnow() - timedelta(seconds=waited))
        )
    for page in pages:
        html = client.get(page).get_data(as_text=True)
        assert BANNER in html, page
        assert "Dispatch is stalled" in html

    with ctx.db.transaction() as session:
        session.execute(update(OutboxMessage).values(consumed_at=utcnow()))
    for page in pages:
        assert BANNER not in client.get(page).get_data(as_text=True), page
