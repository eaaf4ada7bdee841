"""What a careless or hostile client sends gets a clear 4xx, an audit entry where an action was
refused, and never a 500."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from alertd.accounts.services import create_token
from alertd.actor import Actor
from alertd.alerts import services
from alertd.audit.models import AuditEntry
from alertd.audit.services import verify_chain
from alertd.context import Context
from tests.support.factories import PASSWORD, alert_body, png_bytes


def _token(ctx: Context, actor: Actor) -> dict[str, str]:
    with ctx.db.transaction() as session:
        return {"Authorization": f"Bearer {create_token(session, actor.username, 't').token}"}


def _post(client: FlaskClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/api/v1/alerts", json=alert_body(**body), headers=headers)


def _png_claiming(width: int, height: int) -> bytes:
    """A small real PNG whose header claims a huge image: the shape of a decompression bomb."""
    data = bytearray(png_bytes(8, 8))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"children": [{"name": "A", "age": float("inf")}]}, "children[0].age"),
        ({"vehicles": [{"year": float("-inf")}]}, "vehicles[0].year"),
        ({"children": [{"name": "A", "age": 7.9}]}, "children[0].age"),
        ({"languages": ["en-US\n", "es-US"]}, "languages"),
        ({"last_seen_at": "0001-01-01T00:00:00+14:00"}, "last_seen_at"),
        (
            {"areas": [{"description": "x", "polygon": [[0, 0], [0, 0], [0, 0], [0, 0]]}]},
            "areas[0].polygon",
        ),
    ],
)
def test_bad_values_are_named_not_crashed_on(
    client: FlaskClient, ctx: Context, officer: Actor, body: dict[str, Any], field: str
) -> None:
    response = _post(client, _token(ctx, officer), **body)

    assert response.status_code == 400, response.text
    assert field in response.get_json()["fields"]


def test_a_key_that_cannot_be_encoded_is_refused_and_the_refusal_audited(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    body = '{"criteria": {"\\ud800": true}}'

    response = client.post(
        "/api/v1/alerts", data=body, content_type="application/json", headers=_token(ctx, officer)
    )

    assert response.status_code == 400
    with ctx.db.session() as session:
        refused = session.execute(
            select(AuditEntry).where(AuditEntry.action == "alert.create")
        ).scalar_one()
        assert refused.outcome == "refused"
        assert verify_chain(session).ok


def test_a_decompression_bomb_photo_is_refused(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    body = alert_body()
    body["photo"] = base64.b64encode(_png_claiming(60000, 60000)).decode()

    response = client.post("/api/v1/alerts", json=body, headers=_token(ctx, officer))

    assert response.status_code == 400
    assert response.get_json()["fields"]["photo"] == "too many pixels"


def test_ids_beyond_any_database_integer_are_404(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    huge = "9" * 30
    headers = _token(ctx, officer)

    assert client.get(f"/api/v1/alerts/{huge}", headers=headers).status_code == 404
    assert client.post(f"/api/v1/alerts/{huge}/submit", headers=headers).status_code == 404


def test_a_forwarded_for_header_is_not_trusted_without_a_proxy(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    for i in range(ctx.settings.LOGIN_MAX_FAILURES + 1):
        response = client.post(
            "/login",
            data={"username": "officer1", "password": "wrong"},
            headers={"X-Forwarded-For": f"198.51.100.{i}"},
        )

    assert response.status_code == 429
    with ctx.db.session() as session:
        addresses = set(
            session.execute(
                select(AuditEntry.address).where(AuditEntry.action == "login.failed")
            ).scalars()
        )
    assert addresses == {"127.0.0.1"}


def test_a_nul_byte_in_a_login_is_a_failed_login(client: FlaskClient, ctx: Context) -> None:
    response = client.post("/login", data={"username": "off\x00icer", "password": PASSWORD})

    assert response.status_code == 401


def test_an_officer_extending_or_cancelling_is_refused_as_an_officer(
    client: FlaskClient, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)
    headers = _token(ctx, officer)

    extend = client.post(f"/api/v1/alerts/{alert.id}/extend", json={"minutes": 0}, headers=headers)
    cancel = client.post(f"/api/v1/alerts/{alert.id}/cancel", headers=headers)

    assert (extend.status_code, cancel.status_code) == (403, 403)
    with ctx.db.session() as session:
        refused = (
            session.execute(select(AuditEntry.action).where(AuditEntry.outcome == "refused"))
            .scalars()
            .all()
        )
    assert sorted(refused) == ["alert.cancel", "alert.extend"]


def test_a_long_case_reference_within_the_limit_is_stored(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    response = _post(client, _token(ctx, officer), case_reference="C" * 200)

    assert response.status_code == 201
    assert response.get_json()["case_reference"] == "C" * 200
