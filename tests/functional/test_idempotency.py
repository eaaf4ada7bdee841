"""Actions that cannot happen twice by accident: the console's buttons carry a key from the
page that rendered them, the API takes an Idempotency-Key header."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from alertd.accounts.services import create_token
from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Alert, Version
from alertd.context import Context
from alertd.db import utcnow
from alertd.idempotency.models import IdempotencyKey
from alertd.idempotency.services import KEEP_HOURS, begin, finish, purge_old_keys
from tests.support.factories import PASSWORD, alert_body


def _login(client: FlaskClient, username: str) -> None:
    client.post("/login", data={"username": username, "password": PASSWORD})


def _pending(ctx: Context, officer: Actor) -> int:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    return alert.id


def _versions(ctx: Context, alert_id: int) -> list[str]:
    with ctx.db.session() as session:
        return list(
            session.execute(
                select(Version.kind).where(Version.alert_id == alert_id).order_by(Version.seq)
            ).scalars()
        )


def _keys_on_page(html: str) -> list[str]:
    return re.findall(r'name="idempotency_key" value="([^"]+)"', html)


def test_every_action_button_carries_its_own_key(
    client: FlaskClient, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    alert_id = _pending(ctx, officer)
    _login(client, "supervisor1")

    page = client.get(f"/alerts/{alert_id}").text

    keys = _keys_on_page(page)
    assert len(keys) == page.count('method="post" action="/alerts/') >= 2
    assert len(set(keys)) == len(keys)


def test_approve_double_clicked_acts_once_and_shows_the_result_once(
    client: FlaskClient, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    # given
    alert_id = _pending(ctx, officer)
    _login(client, "supervisor1")
    key = _keys_on_page(client.get(f"/alerts/{alert_id}").text)[0]

    # when: the same form arrives twice
    first = client.post(f"/alerts/{alert_id}/approve", data={"idempotency_key": key})
    second = client.post(f"/alerts/{alert_id}/approve", data={"idempotency_key": key})

    # then
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert _versions(ctx, alert_id) == ["alert"]
    page = client.get(second.headers["Location"]).text
    assert page.count("Approved. The alert is active") == 1


def test_extend_resent_with_the_same_key_extends_once(
    client: FlaskClient, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    alert_id = _pending(ctx, officer)
    services.approve_alert(ctx, alert_id, by=supervisor)
    _login(client, "supervisor1")
    with ctx.db.session() as session:
        before = session.get(Alert, alert_id).expires_at  # type: ignore[union-attr]

    for _ in range(3):
        client.post(f"/alerts/{alert_id}/extend", data={"idempotency_key": "page-key-1"})

    assert _versions(ctx, alert_id) == ["alert", "extend"]
    with ctx.db.session() as session:
        after = session.get(Alert, alert_id).expires_at  # type: ignore[union-attr]
    assert (after - before).total_seconds() == ctx.settings.EXTEND_MINUTES * 60


def test_two_clicks_at_the_same_moment_extend_once(
    app: Flask, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    # given: two browsers' requests in flight together, as a fast double-click makes them
    alert_id = _pending(ctx, officer)
    services.approve_alert(ctx, alert_id, by=supervisor)
    clients = [app.test_client() for _ in range(2)]
    for c in clients:
        _login(c, "supervisor1")
    start = threading.Barrier(len(clients))
    statuses: list[int] = []

    def click(c: FlaskClient) -> None:
        start.wait()
        response = c.post(f"/alerts/{alert_id}/extend", data={"idempotency_key": "same"})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=click, args=(c,)) for c in clients]

    # when
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    # then
    assert statuses == [302, 302]
    assert _versions(ctx, alert_id) == ["alert", "extend"]


def test_a_refused_action_keeps_its_key_usable(
    client: FlaskClient, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    alert_id = _pending(ctx, officer)
    _login(client, "supervisor1")

    refused = client.post(f"/alerts/{alert_id}/reject", data={"idempotency_key": "k"})
    done = client.post(
        f"/alerts/{alert_id}/reject", data={"idempotency_key": "k", "reason": "photo is wrong"}
    )

    assert refused.status_code == 400 and "Give a reason" in refused.text
    assert done.status_code == 302
    with ctx.db.session() as session:
        assert session.get(Alert, alert_id).state == "draft"  # type: ignore[union-attr]


def _token(ctx: Context, actor: Actor) -> dict[str, str]:
    with ctx.db.transaction() as session:
        return {"Authorization": f"Bearer {create_token(session, actor.username, 'cad').token}"}


def test_the_api_replays_an_action_repeated_with_its_idempotency_key(
    client: FlaskClient, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    # given
    alert_id = _pending(ctx, officer)
    services.approve_alert(ctx, alert_id, by=supervisor)
    headers = {**_token(ctx, supervisor), "Idempotency-Key": "cad-7781"}
    url = f"/api/v1/alerts/{alert_id}/extend"

    # when
    first = client.post(url, json={"minutes": 30}, headers=headers)
    again = client.post(url, json={"minutes": 30}, headers=headers)
    other = client.post(url, json={"minutes": 45}, headers=headers)

    # then
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.get_json() == first.get_json()
    assert other.status_code == 400 and "different request" in other.get_json()["message"]
    assert _versions(ctx, alert_id) == ["alert", "extend"]


def test_the_api_creates_one_alert_for_a_retried_post(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    headers, body = {**_token(ctx, officer), "Idempotency-Key": "create-1"}, alert_body()

    first = client.post("/api/v1/alerts", json=body, headers=headers)
    retried = client.post("/api/v1/alerts", json=body, headers=headers)

    assert first.status_code == retried.status_code == 201
    assert retried.headers["Location"] == first.headers["Location"]
    with ctx.db.session() as session:
        assert session.execute(select(func.count()).select_from(Alert)).scalar_one() == 1
        assert session.execute(select(IdempotencyKey.state)).scalars().all() == ["done"]


def test_keys_are_per_user(
    client: FlaskClient, ctx: Context, officer: Actor, officer2: Actor
) -> None:
    body = alert_body()

    a = client.post(
        "/api/v1/alerts", json=body, headers={**_token(ctx, officer), "Idempotency-Key": "1"}
    )
    b = client.post(
        "/api/v1/alerts", json=body, headers={**_token(ctx, officer2), "Idempotency-Key": "1"}
    )

    assert a.get_json()["id"] != b.get_json()["id"]


def test_keys_older_than_a_day_are_purged(ctx: Context, officer: Actor) -> None:
    # given
    assert officer.user_id is not None
    for key in ("old", "new"):
        assert begin(ctx, officer.user_id, key, "POST /x") is None
        finish(ctx, officer.user_id, key, 200, {})
    with ctx.db.transaction() as session:
        old = session.execute(
            select(IdempotencyKey).where(IdempotencyKey.key == "old")
        ).scalar_one()
        old.created_at = utcnow() - timedelta(hours=KEEP_HOURS, minutes=1)

    # when
    purged = purge_old_keys(ctx)

    # then
    assert purged == 1
    with ctx.db.session() as session:
        assert session.execute(select(IdempotencyKey.key)).scalars().all() == ["new"]
