"""Delivery progress on the alert page: per version and channel, read from the dispatch and
delivery rows, the same in the page and in the fragment the page's script polls."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update

from alertd.actor import Actor
from alertd.alerts import services
from alertd.broker import RecordingPublisher
from alertd.channels import dispatch
from alertd.channels.dispatch import queries
from alertd.channels.models import Delivery
from alertd.context import Context
from alertd.db import utcnow
from tests.support.factories import PASSWORD, alert_body
from tests.support.tasks import run_pending_tasks


def _approved(ctx: Context, officer: Actor, supervisor: Actor) -> int:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)
    return alert.id


def _row(html: str, channel: str) -> str:
    match = re.search(rf'<tr data-channel="{channel}">(.*?)</tr>', html, re.S)
    assert match, html
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip()


def test_progress_follows_a_version_from_approval_to_sent(
    client: FlaskClient,
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
) -> None:
    client.post("/login", data={"username": "supervisor1", "password": PASSWORD})
    alert_id = _approved(ctx, officer, supervisor)

    # Approved, not yet taken by a worker.
    page = client.get(f"/alerts/{alert_id}").text
    assert "Waiting for a worker to take the version" in page
    assert '<td class="went-out" data-seq="1">not yet</td>' in page
    assert 'data-finished="false"' in page

    # Dispatched and planned, nothing sent.
    (_, (message_id,)) = publisher.sent.pop(0)
    for dispatch_id in dispatch.dispatch_version(ctx, message_id):
        dispatch.plan_dispatch(ctx, dispatch_id)
    fragment = client.get(f"/alerts/{alert_id}/progress").text
    assert "{#" not in fragment and 'id="progress"' in fragment
    assert _row(fragment, "log").startswith("log sending 0% 1 0 0 0 0 0 — —")

    # Sent.
    run_pending_tasks(ctx, publisher)
    page = client.get(f"/alerts/{alert_id}").text
    row = _row(page, "log")
    assert row.startswith("log finished 100% 1 1 0 0 0 0 20")  # ...then the send times
    assert '<td class="went-out" data-seq="1">not yet</td>' not in page
    assert 'data-finished="true"' in page
    assert "first message out" in page


def test_failed_and_unknown_deliveries_are_counted_and_named(
    client: FlaskClient,
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
) -> None:
    client.post("/login", data={"username": "supervisor1", "password": PASSWORD})
    alert_id = _approved(ctx, officer, supervisor)
    run_pending_tasks(ctx, publisher)
    with ctx.db.transaction() as session:
        session.execute(update(Delivery).values(state="unknown"))

    row = _row(client.get(f"/alerts/{alert_id}/progress").text, "log")

    assert row.startswith("log finished with problems 100% 1 0 0 0 1 0")


def test_progress_needs_a_login(client: FlaskClient, ctx: Context) -> None:
    response = client.get("/alerts/1/progress")

    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_page_script_is_served_from_this_origin(client: FlaskClient) -> None:
    with client.get("/static/progress.js") as response:
        assert response.status_code == 200 and "fetch(" in response.text


def test_a_published_alert_links_to_its_public_page(
    client: FlaskClient, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    client.post("/login", data={"username": "supervisor1", "password": PASSWORD})
    draft = services.create_alert(ctx, alert_body(), by=officer)
    alert_id = _approved(ctx, officer, supervisor)

    published = client.get(f"/alerts/{alert_id}").text
    unpublished = client.get(f"/alerts/{draft.id}").text

    with ctx.db.session() as session:
        public_id = services.get_alert(session, alert_id).public_id
    link = re.search(r'id="public-page-link" href="([^"]+)"', published)
    assert link and link.group(1).endswith(f"/{public_id}")
    assert client.get(link.group(1)).status_code == 200
    assert "public-page-link" not in unpublished


def test_the_list_counts_pending_approvals_for_supervisors_and_flags_expiring_alerts(
    client: FlaskClient, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    # given: one submitted alert and one active alert expiring in 10 minutes
    pending = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, pending.id, by=officer)
    soon = (utcnow() + timedelta(minutes=10, seconds=30)).replace(microsecond=0)
    _approved_body = alert_body(expires_at=soon.isoformat())
    active = services.create_alert(ctx, _approved_body, by=officer)
    services.submit_alert(ctx, active.id, by=officer)
    services.approve_alert(ctx, active.id, by=supervisor)

    # when
    client.post("/login", data={"username": "supervisor1", "password": PASSWORD})
    page = client.get("/").text

    # then
    waiting = re.search(r'id="waiting-for-approval"[^>]*>(.*?)</p>', page, re.S)
    assert waiting and "Waiting for your approval: 1 alert<" in waiting.group(1)
    assert "expires in 10 minutes" in page


def test_counts_are_shared_for_the_cache_age_then_counted_again(
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given: a dispatched version with its one delivery pending, counted once with a cache age
    alert_id = _approved(ctx, officer, supervisor)
    (_, (message_id,)) = publisher.sent.pop(0)
    (dispatch_id,) = dispatch.dispatch_version(ctx, message_id)
    dispatch.plan_dispatch(ctx, dispatch_id)
    clock = {"now": 1000.0}
    monkeypatch.setattr(queries.time, "monotonic", lambda: clock["now"])
    with ctx.db.session() as session:
        assert queries.tallies(session, [dispatch_id], max_age=1.0)[dispatch_id].counts == {
            "pending": 1
        }

    # when: the delivery is sent
    run_pending_tasks(ctx, publisher)

    # then: within the age the earlier count is served; after it, or with no age, a new one
    with ctx.db.session() as session:
        clock["now"] += 0.5
        assert queries.tallies(session, [dispatch_id], 1.0)[dispatch_id].counts == {"pending": 1}
        assert queries.tallies(session, [dispatch_id])[dispatch_id].counts == {"sent": 1}
        clock["now"] += 0.6
        fresh = queries.tallies(session, [dispatch_id], 1.0)[dispatch_id]
        assert fresh.counts == {"sent": 1}
        assert fresh.first_sent_at is not None and fresh.first_sent_at == fresh.last_sent_at
    assert alert_id
