"""Subscribers through the API (documented in the OpenAPI), the console and the CLI: the same
service, the same refusals, roles enforced."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from alertd import cli
from alertd.accounts.services import create_token
from alertd.actor import Actor
from alertd.context import Context
from tests.support.factories import PASSWORD

# The subscriber pages and API are the sms channel's: served only while it is enabled.
pytestmark = pytest.mark.channels("sms")


def _headers(ctx: Context, actor: Actor) -> dict[str, str]:
    with ctx.db.transaction() as session:
        return {"Authorization": f"Bearer {create_token(session, actor.username, 't').token}"}


def test_api_create_list_filter_get_delete(
    ctx: Context, client: FlaskClient, operator: Actor, admin: Actor, officer: Actor
) -> None:
    h = _headers(ctx, operator)
    bad = client.post("/api/v1/subscribers", json={"phone": "555", "areas": ["x"]}, headers=h)
    assert bad.status_code == 400 and set(bad.json["fields"]) == {"phone", "areas"}

    one = client.post(
        "/api/v1/subscribers",
        json={"phone": "+1 415 555 2671", "areas": ["SAME=006037"], "language": "es"},
        headers=h,
    )
    assert one.status_code == 201
    assert one.json["phone"] == "+14155552671" and one.json["opted_in_via"] == "api"
    two = client.post(
        "/api/v1/subscribers", json={"phone": "+442079460000", "lat": 51.5, "lon": -0.1}, headers=h
    )
    assert two.status_code == 201
    again = client.post(
        "/api/v1/subscribers", json={"phone": "+14155552671", "areas": ["SAME=1"]}, headers=h
    )
    assert again.status_code == 409

    admin_h = _headers(ctx, admin)
    listed = client.get("/api/v1/subscribers?phone=%2B1415", headers=admin_h)
    assert [s["id"] for s in listed.json["subscribers"]] == [one.json["id"]]
    assert client.get("/api/v1/subscribers?limit=0", headers=h).status_code == 400
    got = client.get(f"/api/v1/subscribers/{two.json['id']}", headers=h)
    assert got.json["lat"] == 51.5 and got.json["areas"] == []

    officer_h = _headers(ctx, officer)
    assert client.get("/api/v1/subscribers", headers=officer_h).status_code == 403
    assert (
        client.delete(f"/api/v1/subscribers/{one.json['id']}", headers=officer_h).status_code == 403
    )

    assert client.delete(f"/api/v1/subscribers/{one.json['id']}", headers=h).status_code == 200
    assert client.get(f"/api/v1/subscribers/{one.json['id']}", headers=h).status_code == 404
    assert client.delete(f"/api/v1/subscribers/{one.json['id']}", headers=h).status_code == 404


def test_openapi_documents_subscribers(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").json
    assert {"get", "post"} <= set(doc["paths"]["/api/v1/subscribers"])
    assert {"get", "delete"} <= set(doc["paths"]["/api/v1/subscribers/{subscriber_id}"])
    assert "Subscriber" in doc["components"]["schemas"]


def test_console_add_filter_delete(client: FlaskClient, operator: Actor, officer: Actor) -> None:
    client.post("/login", data={"username": officer.username, "password": PASSWORD})
    assert client.get("/sms/subscribers").status_code == 403
    client.post("/logout")
    client.post("/login", data={"username": operator.username, "password": PASSWORD})
    refused = client.post("/sms/subscribers", data={"phone": "12", "areas": "SAME=006037"})
    assert refused.status_code == 400 and b"not a phone number" in refused.data
    added = client.post(
        "/sms/subscribers",
        data={"phone": "+14155552671", "language": "en", "areas": "SAME=006037"},
        follow_redirects=True,
    )
    assert b"+14155552671" in added.data and b"SAME=006037" in added.data
    assert b"+14155552671" not in client.get("/sms/subscribers?phone=%2B44").data
    page = client.get("/sms/texts")
    assert page.status_code == 200 and b"NOT SENT" in page.data


def test_cli_import_reports_bad_lines(
    ctx: Context,
    operator: Actor,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in {
        "ALERTD_DATABASE_URL": ctx.settings.DATABASE_URL,
        "ALERTD_INSTANCE_PATH": ctx.settings.INSTANCE_PATH,
        "ALERTD_SECRET_KEY": ctx.settings.SECRET_KEY,
    }.items():
        monkeypatch.setenv(key, value)
    csv_file = tmp_path / "subs.csv"
    csv_file.write_text(
        "phone,language,areas,lat,lon\n+14155552671,en,SAME=006037,,\nnope,en,SAME=006037,,\n"
    )
    assert cli.main(["subscribers", "import", str(csv_file), "--as", operator.username]) == 1
    out, err = capsys.readouterr()
    assert "1 added, 0 updated, 1 rejected" in out and f"{csv_file}:3: phone" in err
    assert cli.main(["subscribers", "import", str(csv_file), "--as", operator.username]) == 1
    assert "0 added, 1 updated, 1 rejected" in capsys.readouterr().out
