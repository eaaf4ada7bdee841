"""A login flood cannot lock others out or swamp the audit trail: throttled attempts are
counted, one entry per window per account and address, and a flood aimed at one account leaves
another account's correct password working from the same address."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from alertd.accounts import services
from alertd.accounts.models import User
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


class _WatchedHasher:
    """The real argon2 hasher, with a hook run at each password check."""

    def __init__(self, on_verify: Callable[[], None]) -> None:
        self.real = services._hasher
        self.on_verify = on_verify

    def verify(self, hashed: str, password: str) -> bool:
        self.on_verify()
        return bool(self.real.verify(hashed, password))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _total_entries(ctx: Context) -> int:
    with ctx.db.session() as session:
        return int(session.execute(select(func.count()).select_from(AuditEntry)).scalar_one())


def test_a_throttled_attempt_checks_no_password_and_writes_nothing(
    app: Flask, ctx: Context, officer: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    flooder = _client(app, "192.0.2.44")
    limit = ctx.settings.LOGIN_MAX_FAILURES
    codes = [_login(flooder, "officer1", f"guess {i}") for i in range(limit + 1)]
    assert codes == [401] * limit + [429]
    # As another process would, or this one once its memory of the refusal has lapsed.
    app.extensions["alertd.throttle_memo"].clear()
    checked: list[str] = []
    monkeypatch.setattr(services, "_hasher", _WatchedHasher(lambda: checked.append("hash")))
    real_transaction = ctx.db.transaction
    monkeypatch.setattr(
        ctx.db, "transaction", lambda: checked.append("write transaction") or real_transaction()
    )
    before = _total_entries(ctx)

    assert [_login(flooder, "officer1", PASSWORD) for _ in range(3)] == [429] * 3

    assert checked == []
    assert _total_entries(ctx) == before


def test_the_password_is_checked_with_no_write_transaction_open(
    app: Flask, ctx: Context, officer: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer (an approval) gets through while a password is being hashed: on SQLite a
    write transaction around the hash would hold the one write lock all along."""
    stuck: list[bool] = []

    def bystander() -> None:
        with ctx.db.transaction() as session:
            session.execute(update(User).where(User.id == -1).values(active=True))

    def beside_the_hash() -> None:
        thread = threading.Thread(target=bystander)
        thread.start()
        # A bound for a stuck writer, not a speed: SQLite's busy wait is 30 s.
        thread.join(timeout=20)
        stuck.append(thread.is_alive())

    monkeypatch.setattr(services, "_hasher", _WatchedHasher(beside_the_hash))
    client = _client(app, "192.0.2.45")

    assert _login(client, "officer1", "wrong guess") == 401
    assert _login(client, "officer1", PASSWORD) == 302
    assert stuck == [False, False]


def test_parallel_guesses_get_no_more_tries_than_the_same_guesses_in_a_row(
    app: Flask, ctx: Context, officer: Actor
) -> None:
    limit = ctx.settings.LOGIN_MAX_FAILURES
    codes: list[int] = []
    lock = threading.Lock()

    def guess(i: int) -> None:
        code = _login(_client(app, "192.0.2.46"), "officer1", f"guess {i}")
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(limit * 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(codes) == [401] * limit + [429] * (limit * 2)
    assert _count(ctx, "login.failed") == limit
