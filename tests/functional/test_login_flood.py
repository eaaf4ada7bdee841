"""A login flood cannot lock others out or swamp the audit trail: throttled attempts are
counted, one entry per window per account and address, and a flood aimed at one account leaves
another account's correct password working from the same address."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from alertd.actor import Actor
from alertd.audit.models import AuditEntry
from alertd.context import Context
from tests.support.factories import PASSWORD


def _client(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _login(client: FlaskClient, username: str, password: str) -> int:
    response = client.post("/login", data={"username": username, "password": password})
    return response.status_code


def _count(ctx: Context, action: str) -> int:
    with ctx.db.session() as session:
        return int(
            session.execute(select(func.count()).where(AuditEntry.action == action)).scalar_one()
        )


def test_a_flood_at_other_accounts_leaves_anothers_password_working_from_that_address(
    app: Flask, ctx: Context, officer: Actor, officer2: Actor
) -> None:
    station = _client(app, "198.51.100.9")
    limit = ctx.settings.LOGIN_MAX_FAILURES
    # Aimed at four accounts: enough failures to reach the address's ceiling (4 x the limit).
    targets = ["officer1", "chief", "admin", "root"]
    for target in targets:
        codes = [_login(station, target, f"guess {i}") for i in range(limit + 10)]
        assert codes.count(401) == limit and set(codes[limit:]) == {429}
    # Counted, not written one entry each: one per account and address in the window.
    assert _count(ctx, "login.throttled") == len(targets)
    assert _count(ctx, "login.failed") == limit * len(targets)
    assert _login(_client(app, "198.51.100.9"), "officer2", PASSWORD) == 302
    # The flooded account itself stays throttled from that address, even with its password.
    assert _login(station, "officer1", PASSWORD) == 429
    # ...but not from another address.
    assert _login(_client(app, "198.51.100.10"), "officer1", PASSWORD) == 302


def test_a_spray_across_accounts_gets_one_guess_each_past_the_address_ceiling(
    app: Flask, ctx: Context, officer: Actor
) -> None:
    sprayer = _client(app, "203.0.113.66")
    ceiling = ctx.settings.LOGIN_MAX_FAILURES * 4
    for i in range(ceiling):
        assert _login(sprayer, f"nobody{i}", "guess") == 401

    assert _login(sprayer, "officer1", "wrong") == 401
    assert _login(sprayer, "officer1", PASSWORD) == 429
    assert _login(sprayer, "nobody0", "guess again") == 429
