"""Credentials can be taken back, and no one person can publish: deactivation, password change,
token listing and revocation, logout on the server, and the two-person rule over people."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from alertd.accounts.models import ApiToken
from alertd.accounts.services import create_token
from alertd.actor import Actor
from alertd.audit.models import AuditEntry
from alertd.audit.services import verify_chain
from alertd.cli import main as cli_main
from alertd.context import Context
from tests.support.factories import PASSWORD, alert_body


def _login(client: FlaskClient, username: str, password: str = PASSWORD) -> None:
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 302, response.text


def _signed_in(client: FlaskClient) -> bool:
    return client.get("/").status_code == 200


def _bearer(ctx: Context, username: str, *, minted_by: Actor | None = None) -> dict[str, str]:
    with ctx.db.transaction() as session:
        new = create_token(session, username, "test")
        if minted_by is not None:
            # As the migration records for tokens an admin minted before the fix.
            new.record.created_by_id = minted_by.user_id
        return {"Authorization": f"Bearer {new.token}"}


@pytest.fixture
def cli_env(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> Context:
    monkeypatch.setenv("ALERTD_DATABASE_URL", ctx.settings.database_url)
    monkeypatch.setenv("ALERTD_INSTANCE_PATH", str(ctx.settings.instance_path))
    return ctx


# Deactivation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["console", "api", "cli"])
def test_a_deactivated_users_sessions_and_tokens_stop_at_once(
    how: str, app: Flask, ctx: Context, officer: Actor, admin: Actor, cli_env: Context
) -> None:
    officer_h = _bearer(ctx, "officer1")
    session_client = app.test_client()
    _login(session_client, "officer1")
    assert session_client.get("/").status_code == 200
    assert app.test_client().get("/api/v1/alerts", headers=officer_h).status_code == 200

    if how == "console":
        admin_client = app.test_client()
        _login(admin_client, "admin1")
        assert admin_client.post("/users/officer1/deactivate").status_code == 302
    elif how == "api":
        admin_h = _bearer(ctx, "admin1")
        answer = app.test_client().post("/api/v1/users/officer1/deactivate", headers=admin_h)
        assert answer.status_code == 200 and answer.get_json()["active"] is False
    else:
        assert cli_main(["users", "deactivate", "officer1"]) == 0

    assert session_client.get("/").status_code == 302
    assert app.test_client().get("/api/v1/alerts", headers=officer_h).status_code == 401
    refused = app.test_client().post("/login", data={"username": "officer1", "password": PASSWORD})
    assert refused.status_code == 401
    with ctx.db.session() as session:
        entry = session.execute(
            select(AuditEntry).where(AuditEntry.action == "user.deactivate")
        ).scalar_one()
        assert entry.target_id == "officer1"


def test_only_an_admin_deactivates(
    app: Flask, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    client = app.test_client()
    _login(client, "supervisor1")
    assert client.post("/users/officer1/deactivate").status_code == 403
    supervisor_h = _bearer(ctx, "supervisor1")
    answer = app.test_client().post("/api/v1/users/officer1/deactivate", headers=supervisor_h)
    assert answer.status_code == 403
    assert _signed_in_as(app, "officer1")


def _signed_in_as(app: Flask, username: str) -> bool:
    client = app.test_client()
    _login(client, username)
    return _signed_in(client)


# Password change and logout --------------------------------------------------------------------


def test_changing_ones_password_ends_every_other_session(app: Flask, officer: Actor) -> None:
    here, elsewhere = app.test_client(), app.test_client()
    _login(here, "officer1")
    _login(elsewhere, "officer1")

    wrong = here.post(
        "/account/password",
        data={"current_password": "not it at all", "new_password": "a brand new password"},
    )
    assert wrong.status_code == 400 and _signed_in(elsewhere)

    changed = here.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": "a brand new password"},
    )
    assert changed.status_code == 302

    assert _signed_in(here)
    assert not _signed_in(elsewhere)
    _login(app.test_client(), "officer1", "a brand new password")


def test_logout_ends_the_session_on_the_server_and_a_replayed_cookie_is_refused(
    app: Flask, officer: Actor
) -> None:
    client = app.test_client()
    _login(client, "officer1")
    cookie = client.get_cookie("alertd_session")
    assert cookie is not None and _signed_in(client)

    client.post("/logout")

    replay = app.test_client()
    replay.set_cookie("alertd_session", cookie.value)
    assert not _signed_in(replay)


# Tokens: listed and revoked --------------------------------------------------------------------


def test_users_create_list_and_revoke_their_own_tokens_through_the_api(
    app: Flask, ctx: Context, officer: Actor, officer2: Actor
) -> None:
    client = app.test_client()
    first = _bearer(ctx, "officer1")
    other = _bearer(ctx, "officer2")

    made = client.post("/api/v1/tokens", json={"name": "cad"}, headers=first)
    assert made.status_code == 201
    second = {"Authorization": f"Bearer {made.get_json()['token']}"}
    listed = client.get("/api/v1/tokens", headers=second).get_json()["tokens"]
    assert [(t["name"], t["owner"]) for t in listed] == [("test", "officer1"), ("cad", "officer1")]
    assert listed[0]["last_used_at"] is not None and listed[0]["created_at"]

    # officer2's token is none of officer1's business: not even its existence.
    other_id = client.get("/api/v1/tokens", headers=other).get_json()["tokens"][0]["id"]
    assert client.post(f"/api/v1/tokens/{other_id}/revoke", headers=first).status_code == 404

    revoked = client.post(f"/api/v1/tokens/{listed[0]['id']}/revoke", headers=second)
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"] is not None
    assert client.get("/api/v1/alerts", headers=first).status_code == 401
    assert client.get("/api/v1/alerts", headers=second).status_code == 200
    assert client.get("/api/v1/alerts", headers=other).status_code == 200


def test_an_admin_lists_and_revokes_any_token_in_the_console(
    app: Flask, ctx: Context, officer: Actor, admin: Actor
) -> None:
    officer_h = _bearer(ctx, "officer1")
    client = app.test_client()
    _login(client, "admin1")
    page = client.get("/users").text
    assert "officer1" in page and "test" in page and "<td>never</td>" in page  # never used yet

    with ctx.db.session() as session:
        token_id = session.execute(select(ApiToken.id)).scalar_one()
    assert client.post(f"/tokens/{token_id}/revoke").status_code == 302
    assert app.test_client().get("/api/v1/alerts", headers=officer_h).status_code == 401
    assert "revoked" in client.get("/users").text


def test_an_officer_revokes_only_their_own_tokens_in_the_console(
    app: Flask, ctx: Context, officer: Actor, officer2: Actor
) -> None:
    _bearer(ctx, "officer2")
    client = app.test_client()
    _login(client, "officer1")
    made = client.post("/users/officer1/tokens", data={"name": "mine"})
    assert made.status_code == 201 and "shown only this once" in made.text
    with ctx.db.session() as session:
        ids = {name: id_ for name, id_ in session.execute(select(ApiToken.name, ApiToken.id))}
    assert "mine" in client.get("/account").text and "officer2" not in client.get("/account").text
    assert client.post(f"/tokens/{ids['test']}/revoke").status_code == 404
    assert client.post(f"/tokens/{ids['mine']}/revoke").status_code == 302


def test_the_cli_lists_and_revokes_tokens(
    cli_env: Context, app: Flask, officer: Actor, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["tokens", "create", "officer1", "--label", "cad"]) == 0
    token = capsys.readouterr().out.strip()
    headers = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/v1/alerts", headers=headers).status_code == 200

    assert cli_main(["tokens", "list"]) == 0
    listing = capsys.readouterr().out
    assert "officer1\tcad" in listing and token[:12] in listing and token not in listing
    token_id = int(listing.splitlines()[1].split("\t")[0])

    assert cli_main(["tokens", "revoke", str(token_id)]) == 0
    assert app.test_client().get("/api/v1/alerts", headers=headers).status_code == 401
    with cli_env.db.session() as session:
        created = session.execute(
            select(AuditEntry).where(AuditEntry.action == "token.create")
        ).scalar_one()
        assert created.actor_id is None and created.detail["via"] == "command line"
        assert verify_chain(session).ok


# No one person can publish ---------------------------------------------------------------------


def test_an_admin_cannot_mint_a_token_for_someone_else(
    app: Flask, ctx: Context, officer: Actor, admin: Actor
) -> None:
    admin_h = _bearer(ctx, "admin1")
    client = app.test_client()
    # The API mints only for the caller: there is no way to name someone else.
    made = client.post("/api/v1/tokens", json={"name": "x"}, headers=admin_h).get_json()
    assert made["owner"] == "admin1"
    _login(client, "admin1")
    assert client.post("/users/officer1/tokens", data={"name": "x"}).status_code == 403
    with ctx.db.session() as session:
        owners = session.execute(select(ApiToken.user_id)).scalars().all()
        assert officer.user_id not in owners
        refused = session.execute(
            select(AuditEntry).where(
                AuditEntry.action == "token.create", AuditEntry.outcome == "refused"
            )
        ).scalar_one()
        assert refused.actor_name == "admin1" and refused.target_id == "officer1"


def _raise_with(client: FlaskClient, headers: dict[str, str]) -> dict[str, Any]:
    made = client.post("/api/v1/alerts", json=alert_body(), headers=headers)
    assert made.status_code == 201, made.get_json()
    alert_id = made.get_json()["id"]
    assert client.post(f"/api/v1/alerts/{alert_id}/submit", headers=headers).status_code == 200
    return dict(made.get_json())


def test_one_admin_with_two_tokens_cannot_raise_and_approve(
    app: Flask, ctx: Context, officer: Actor, supervisor: Actor, admin: Actor
) -> None:
    # Two tokens one admin minted (before minting for others was refused): one as an officer,
    # one as a supervisor. Behind both is the same person.
    as_officer = _bearer(ctx, "officer1", minted_by=admin)
    as_supervisor = _bearer(ctx, "supervisor1", minted_by=admin)
    client = app.test_client()
    alert = _raise_with(client, as_officer)

    refused = client.post(f"/api/v1/alerts/{alert['id']}/approve", headers=as_supervisor)

    assert refused.status_code == 403
    assert "second person" in refused.get_json()["message"]
    assert (
        client.get(f"/api/v1/alerts/{alert['id']}", headers=as_officer).get_json()["state"]
        == "pending"
    )
    # The supervisor's own token, minted by nobody else, approves.
    own = _bearer(ctx, "supervisor1")
    assert client.post(f"/api/v1/alerts/{alert['id']}/approve", headers=own).status_code == 200


def test_the_same_admin_cannot_approve_an_update_proposed_through_their_token(
    app: Flask, ctx: Context, officer: Actor, supervisor: Actor, admin: Actor
) -> None:
    client = app.test_client()
    alert = _raise_with(client, _bearer(ctx, "officer1"))
    url = f"/api/v1/alerts/{alert['id']}"
    assert client.post(f"{url}/approve", headers=_bearer(ctx, "supervisor1")).status_code == 200
    as_officer = _bearer(ctx, "officer1", minted_by=admin)
    as_supervisor = _bearer(ctx, "supervisor1", minted_by=admin)
    proposed = client.post(
        f"{url}/update", json=alert_body(direction_of_travel="south"), headers=as_officer
    )
    assert proposed.status_code == 202
    proposal_id = proposed.get_json()["pending_update"]["id"]

    refused = client.post(
        f"{url}/update/approve", json={"proposal_id": proposal_id}, headers=as_supervisor
    )
    assert refused.status_code == 403


def test_audit_entries_name_the_token_in_a_field_of_their_own(
    app: Flask, ctx: Context, officer: Actor
) -> None:
    headers = _bearer(ctx, "officer1") | {"User-Agent": "cad-system/2.1"}
    _raise_with(app.test_client(), headers)
    with ctx.db.session() as session:
        token_id = session.execute(select(ApiToken.id)).scalar_one()
        created = session.execute(
            select(AuditEntry).where(AuditEntry.action == "alert.create")
        ).scalar_one()
        assert created.token_id == token_id
        assert created.user_agent == "cad-system/2.1"
        entry_id = created.id
    # The field is in the hash: changing it breaks the chain.
    with ctx.db.transaction() as session:
        session.execute(update(AuditEntry).where(AuditEntry.id == entry_id).values(token_id=999))
    with ctx.db.session() as session:
        assert not verify_chain(session).ok
