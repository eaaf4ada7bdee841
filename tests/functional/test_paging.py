"""Lists page by a cursor: at 3,500 alerts every one is reachable in the API and the console,
each exactly once, filtered by state."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import insert

from alertd.accounts.services import create_token
from alertd.actor import Actor
from alertd.alerts.models import Alert
from alertd.context import Context
from alertd.db import utcnow
from tests.support.factories import PASSWORD

COUNT = 3_500


@pytest.fixture
def many(ctx: Context, officer: Actor) -> dict[int, str]:
    """3,500 alerts, every seventh active, the rest drafts: id -> state."""
    states = {i: "active" if i % 7 == 0 else "draft" for i in range(1, COUNT + 1)}
    expires = utcnow() + timedelta(hours=2)
    rows = [
        {
            "public_id": f"P{i:09d}",
            "state": state,
            "status": "Actual",
            "jurisdiction": "us-doj",
            "case_reference": f"C-{i}",
            "content": {"children": [{"name": f"Child {i}"}]},
            "expires_at": expires,
            "created_by_id": officer.user_id,
        }
        for i, state in states.items()
    ]
    with ctx.db.transaction() as session:
        session.execute(insert(Alert), rows)
    return states


def _walk_api(client: FlaskClient, headers: dict[str, str], query: str) -> list[int]:
    seen: list[int] = []
    url: str | None = f"/api/v1/alerts?{query}"
    while url is not None:
        page = client.get(url, headers=headers)
        assert page.status_code == 200, page.get_json()
        body = page.get_json()
        seen.extend(a["id"] for a in body["alerts"])
        url = body["next"]
        assert (url is None) == (body["next_cursor"] is None)
    return seen


def test_every_alert_is_reachable_through_the_api(
    client: FlaskClient, ctx: Context, many: dict[int, str], officer: Actor
) -> None:
    with ctx.db.transaction() as session:
        headers = {"Authorization": f"Bearer {create_token(session, 'officer1', 't').token}"}
    ids = sorted(many, reverse=True)

    assert _walk_api(client, headers, "limit=200") == ids
    active = [i for i in ids if many[i] == "active"]
    assert _walk_api(client, headers, "state=active&limit=97") == active
    first = client.get("/api/v1/alerts", headers=headers).get_json()
    assert len(first["alerts"]) == 50 and first["next_cursor"] == str(ids[49])


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=201", "limit=x", "cursor=abc", "cursor=-3", "state=lost"]
)
def test_bad_paging_arguments_are_refused(
    client: FlaskClient, ctx: Context, officer: Actor, query: str
) -> None:
    with ctx.db.transaction() as session:
        headers = {"Authorization": f"Bearer {create_token(session, 'officer1', 't').token}"}
    response = client.get(f"/api/v1/alerts?{query}", headers=headers)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid"


def test_every_alert_is_reachable_in_the_console(client: FlaskClient, many: dict[int, str]) -> None:
    client.post("/login", data={"username": "officer1", "password": PASSWORD})
    seen: list[int] = []
    url: str | None = "/?limit=200"
    while url is not None:
        page = client.get(url)
        assert page.status_code == 200
        seen.extend(int(i) for i in re.findall(r'href="/alerts/(\d+)"', page.text))
        older = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        url = older.group(1).replace("&amp;", "&") if older else None
    assert seen == sorted(many, reverse=True)
    assert client.get("/?state=lost").status_code == 400
