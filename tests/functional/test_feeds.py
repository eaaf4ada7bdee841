"""Feeds, permanent CAP URLs, caching, signing and the public page, through the services and the
Flask test client, with deliveries run in-process as a worker would run them."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import feedparser
import geojson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from shapely.geometry import Polygon
from sqlalchemy import select

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Alert, Version
from alertd.broker import RecordingPublisher
from alertd.channels.cap.feeds import PUBLIC, build_feeds, document_fingerprint
from alertd.channels.cap.message import CAP_NS, DSIG_NS
from alertd.channels.cap.models import CapDocument
from alertd.channels.cap.signing import verify_cap
from alertd.channels.cap.static import refresh_feed_dir, write_feed_dir
from alertd.channels.cap.validate import check_references_complete, validate_cap
from alertd.channels.cap.verify import EXIT_CODES
from alertd.channels.cap.views import feed_cache
from alertd.cli import main as cli_main
from alertd.context import Context
from alertd.db import utcnow
from tests.support.factories import alert_body, png_bytes
from tests.support.tasks import run_pending_tasks
from tests.unit.channels.cap.conftest import make_self_signed

NS = {"atom": "http://www.w3.org/2005/Atom", "cap": CAP_NS}
FEEDS = ("cap.atom", "alerts.rss", "alerts.geojson")


@pytest.fixture(autouse=True)
def cap_channels(ctx: Context) -> Iterator[None]:
    ctx.settings = ctx.settings.with_overrides(CHANNELS="cap,log")
    yield


class Desk:
    """An officer and a supervisor working alerts through the services, with the queued tasks
    run after each step."""

    def __init__(
        self, ctx: Context, publisher: RecordingPublisher, officer: Actor, supervisor: Actor
    ) -> None:
        self.ctx, self.publisher = ctx, publisher
        self.officer, self.supervisor = officer, supervisor

    def run(self) -> None:
        run_pending_tasks(self.ctx, self.publisher)

    def approve(self, **body: Any) -> Alert:
        alert = services.create_alert(
            self.ctx, alert_body(**body), by=self.officer, photo=png_bytes()
        )
        services.submit_alert(self.ctx, alert.id, by=self.officer)
        approved = services.approve_alert(self.ctx, alert.id, by=self.supervisor)
        self.run()
        return approved

    def update(self, alert: Alert, **body: Any) -> None:
        proposal = services.propose_update(self.ctx, alert.id, alert_body(**body), by=self.officer)
        services.approve_update(self.ctx, alert.id, by=self.supervisor, proposal_id=proposal.id)
        self.run()

    def cancel(self, alert: Alert) -> None:
        services.cancel_alert(self.ctx, alert.id, "false report", by=self.supervisor)
        self.run()

    def versions(self, alert: Alert) -> list[Version]:
        with self.ctx.db.session() as session:
            return list(
                session.execute(
                    select(Version).where(Version.alert_id == alert.id).order_by(Version.seq)
                ).scalars()
            )


@pytest.fixture
def desk(ctx: Context, publisher: RecordingPublisher, officer: Actor, supervisor: Actor) -> Desk:
    return Desk(ctx, publisher, officer, supervisor)


def _atom_ids(client: FlaskClient, path: str = "/feeds/cap.atom") -> list[str]:
    response = client.get(path)
    assert response.status_code == 200
    root = etree.fromstring(response.data)
    return [str(e.text) for e in root.findall("atom:entry/atom:id", NS)]


def _cap_url(identifier: str) -> str:
    return f"http://alertd.test/cap/{identifier}.xml"


def test_alert_update_cancel_gives_three_permanent_documents_and_one_live_entry(
    desk: Desk, client: FlaskClient, ctx: Context
) -> None:
    alert = desk.approve()
    [v1] = desk.versions(alert)
    assert _atom_ids(client) == [_cap_url(v1.identifier)]

    desk.update(alert, description="Seen near the mall at 15:10.")
    v1, v2 = desk.versions(alert)
    # The superseded Alert left when its Update entered.
    assert _atom_ids(client) == [_cap_url(v2.identifier)]

    desk.cancel(alert)
    v1, v2, v3 = desk.versions(alert)
    assert (v3.msg_type, v3.kind) == ("Cancel", "cancel")
    assert _atom_ids(client) == [_cap_url(v3.identifier)]

    documents = {}
    for version in (v1, v2, v3):
        response = client.get(f"/cap/{version.identifier}.xml")
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["Content-Type"].startswith("application/cap+xml")
        assert validate_cap(response.data, strict=True) == []
        documents[version.seq] = response.data
    assert len(set(documents.values())) == 3

    def triple(v: Version) -> tuple[str, str, str]:
        return (v.sender, v.identifier, v.sent_at.isoformat())

    assert check_references_complete(documents[2], [triple(v1)]) == []
    assert check_references_complete(documents[3], [triple(v1), triple(v2)]) == []

    # The Cancel stays for the retention window, then leaves.
    with ctx.db.session() as session:
        fingerprint = document_fingerprint(ctx.db)
        later = utcnow() + timedelta(hours=ctx.settings.FEED_RETENTION_HOURS, minutes=1)
        inside = build_feeds(
            session,
            ctx.settings,
            PUBLIC,
            fingerprint=fingerprint,
            now=utcnow() + timedelta(hours=23),
        )
        after = build_feeds(session, ctx.settings, PUBLIC, fingerprint=fingerprint, now=later)
    assert _cap_url(v3.identifier).encode() in inside.bodies["cap.atom"]
    assert b"<entry>" not in after.bodies["cap.atom"]
    assert inside.valid_until is not None and inside.valid_until > utcnow()


def test_an_alert_leaves_the_feeds_at_its_expiry(desk: Desk, ctx: Context) -> None:
    alert = desk.approve()
    with ctx.db.session() as session:
        fingerprint = document_fingerprint(ctx.db)
        now = build_feeds(session, ctx.settings, PUBLIC, fingerprint=fingerprint)
        later = build_feeds(
            session,
            ctx.settings,
            PUBLIC,
            fingerprint=fingerprint,
            now=alert.expires_at + timedelta(seconds=1),
        )
    assert now.valid_until == alert.expires_at
    assert b"<entry>" in now.bodies["cap.atom"] and b"<entry>" not in later.bodies["cap.atom"]
    assert json.loads(later.bodies["alerts.geojson"])["features"] == []


def test_atom_and_rss_parse_with_feedparser(desk: Desk, client: FlaskClient) -> None:
    alert = desk.approve(description='Taken by "J." <script>alert(1)</script> & fled ]]>')
    [version] = desk.versions(alert)
    url = _cap_url(version.identifier)

    atom = feedparser.parse(client.get("/feeds/cap.atom").data)
    assert not atom.bozo, atom.get("bozo_exception")
    [entry] = atom.entries
    assert entry.id == url
    assert any(
        link.rel == "alternate" and link.type == "application/cap+xml" and link.href == url
        for link in entry.links
    )
    root = etree.fromstring(client.get("/feeds/cap.atom").data)
    [atom_entry] = root.findall("atom:entry", NS)
    summary = {
        child.tag.split("}")[1]: child.text
        for child in atom_entry
        if child.tag.startswith(f"{{{CAP_NS}}}")
    }
    assert summary["event"] == "Child Abduction Emergency"
    assert (summary["status"], summary["msgType"]) == ("Actual", "Alert")
    assert (summary["urgency"], summary["severity"], summary["certainty"]) == (
        "Immediate",
        "Severe",
        "Likely",
    )
    assert summary["areaDesc"] == "Springfield County"
    assert summary["expires"].endswith(("-00:00", "+00:00")) and "Z" not in summary["expires"]

    rss = feedparser.parse(client.get("/feeds/alerts.rss").data)
    assert not rss.bozo, rss.get("bozo_exception")
    [item] = rss.entries
    assert item.link == url and item.id == version.identifier


def test_geojson_has_polygons_and_circles(desk: Desk, client: FlaskClient) -> None:
    areas = [
        {
            "description": "Springfield County",
            "geocodes": {"SAME": "006037"},
            "polygon": [[34.0, -118.5], [34.2, -118.5], [34.2, -118.2], [34.0, -118.5]],
            "circle": {"lat": 34.1, "lon": -118.3, "radius_km": 15},
        }
    ]
    desk.approve(areas=areas)
    response = client.get("/feeds/alerts.geojson")
    assert response.headers["Content-Type"] == "application/geo+json"
    collection = response.get_json()
    assert collection["type"] == "FeatureCollection"
    # The geojson package, not ours, says the document is valid GeoJSON.
    parsed = geojson.loads(response.get_data(as_text=True))
    assert parsed.is_valid, parsed.errors()
    drawn, circle = collection["features"]
    # The drawn polygon was entered clockwise; GeoJSON gets it counter-clockwise (RFC 7946).
    ring = drawn["geometry"]["coordinates"][0]
    assert sorted(map(tuple, ring[:-1])) == [(-118.5, 34.0), (-118.5, 34.2), (-118.2, 34.2)]
    assert Polygon(ring).exterior.is_ccw and ring[0] == ring[-1]
    # The circle is a polygon 15 km around its centre, which the properties keep exactly.
    assert circle["properties"]["centre"] == [-118.3, 34.1]
    assert circle["properties"]["radius_km"] == 15
    outline = circle["geometry"]["coordinates"][0]
    assert circle["geometry"]["type"] == "Polygon" and Polygon(outline).exterior.is_ccw
    for lon, lat in outline:
        assert abs(_km(34.1, -118.3, lat, lon) - 15) < 0.01


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    # Haversine on the same mean radius: an independent check of the circle's points.
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def test_feeds_answer_304_from_the_cache_without_rebuilding(
    desk: Desk, client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk.approve()
    first = client.get("/feeds/cap.atom")
    # Built this very second: no Last-Modified yet (see BuiltFeeds.http_last_modified).
    assert "Last-Modified" not in first.headers
    later = utcnow() + timedelta(seconds=2)
    monkeypatch.setattr("alertd.channels.cap.views.utcnow", lambda: later)
    first = client.get("/feeds/cap.atom")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["Cache-Control"] == "public, max-age=30"
    with app.app_context():
        builds = feed_cache().builds

    assert client.get("/feeds/cap.atom", headers={"If-None-Match": etag}).status_code == 304
    again = client.get("/feeds/cap.atom", headers={"If-Modified-Since": modified})
    assert again.status_code == 304 and again.headers["ETag"] == etag
    assert client.get("/feeds/cap.atom").data == first.data
    for name in FEEDS[1:]:
        response = client.get(f"/feeds/{name}")
        assert (
            client.get(
                f"/feeds/{name}", headers={"If-None-Match": response.headers["ETag"]}
            ).status_code
            == 304
        )
    with app.app_context():
        assert feed_cache().builds == builds  # every answer above came from one build

    # A stale validator gets the new feed.
    desk.approve()
    changed = client.get("/feeds/cap.atom", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert (
        client.get(
            "/feeds/cap.atom", headers={"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}
        ).status_code
        == 200
    )


def test_cap_documents_answer_304(desk: Desk, client: FlaskClient) -> None:
    alert = desk.approve()
    [version] = desk.versions(alert)
    path = f"/cap/{version.identifier}.xml"
    response = client.get(path)
    assert client.get(path, headers={"If-None-Match": response.headers["ETag"]}).status_code == 304
    assert (
        client.get(
            path, headers={"If-Modified-Since": response.headers["Last-Modified"]}
        ).status_code
        == 304
    )
    assert client.get("/cap/alertd.NOPE.1.xml").status_code == 404


def test_exercise_alerts_appear_only_in_the_test_feeds(desk: Desk, client: FlaskClient) -> None:
    real = desk.approve()
    drill = desk.approve(status="Exercise")
    [real_version], [drill_version] = desk.versions(real), desk.versions(drill)
    for name in FEEDS:
        public = client.get(f"/feeds/{name}").data
        test = client.get(f"/feeds/test/{name}").data
        assert real_version.identifier.encode() in public
        assert drill_version.identifier.encode() not in public
        assert drill_version.identifier.encode() in test
        assert real_version.identifier.encode() not in test
    assert not feedparser.parse(client.get("/feeds/test/cap.atom").data).bozo


def test_the_public_page_speaks_the_readers_language(desk: Desk, client: FlaskClient) -> None:
    alert = desk.approve(description="Jane <b>was</b> taken & driven off.")
    page = f"/a/{alert.public_id}"

    english = client.get(page, headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert english.status_code == 200
    html = english.get_data(as_text=True)
    assert english.headers["Content-Language"] == "en-US"
    assert "Accept-Language" in english.headers["Vary"]
    assert 'data-state="active"' in html and "AMBER ALERT" in html
    assert "Jane &lt;b&gt;was&lt;/b&gt; taken &amp; driven off." in html
    assert "<b>was</b>" not in html
    assert '<meta property="og:title"' in html and '<meta property="og:description"' in html
    assert '<meta property="og:image" content="http://alertd.test/photos/' in html
    assert "+1 800-555-0199" in html and "Nissan" in html and "6WCU986" in html
    assert f'href="/a/{alert.public_id}?lang=es-US"' in html

    spanish = client.get(page, headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
    html = spanish.get_data(as_text=True)
    assert spanish.headers["Content-Language"] == "es-US"
    assert "Activa" in html and "Jane fue secuestrada en un parque." in html
    assert '<html lang="es-US">' in html and f'href="/a/{alert.public_id}?lang=en-US"' in html
    assert client.get(f"{page}?lang=es-US").headers["Content-Language"] == "es-US"

    long_form = client.get(f"/alerts/{alert.public_id}", headers={"Accept-Language": "es"})
    assert long_form.status_code == 200 and long_form.data == spanish.data


def test_the_public_page_states_an_ended_alert_and_drops_the_photo(
    desk: Desk, client: FlaskClient
) -> None:
    alert = desk.approve()
    desk.update(alert, description="New sighting.")
    assert 'data-state="updated"' in client.get(f"/a/{alert.public_id}").get_data(as_text=True)
    desk.cancel(alert)
    html = client.get(f"/a/{alert.public_id}").get_data(as_text=True)
    assert 'data-state="cancelled"' in html and "og:image" not in html
    assert "/photos/" not in html


def test_no_public_page_before_publication(
    ctx: Context, officer: Actor, client: FlaskClient
) -> None:
    draft = services.create_alert(ctx, alert_body(), by=officer)
    assert client.get(f"/a/{draft.public_id}").status_code == 404
    assert client.get("/a/ABCDEFGHJK").status_code == 404


def test_signed_documents_verify_and_stay_valid(
    desk: Desk,
    ctx: Context,
    client: FlaskClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    identity = make_self_signed()
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    key.write_bytes(identity.key_pem)
    cert.write_bytes(identity.cert_pem)
    ctx.settings = ctx.settings.with_overrides(CAP_SIGNING_KEY=str(key), CAP_SIGNING_CERT=str(cert))
    alert = desk.approve()
    desk.cancel(alert)
    for version in desk.versions(alert):
        xml = client.get(f"/cap/{version.identifier}.xml").data
        root = etree.fromstring(xml)
        assert root[-1].tag == f"{{{DSIG_NS}}}Signature"
        verify_cap(xml, identity.cert_pem)
        assert validate_cap(xml, strict=True) == []

    signed = tmp_path / "signed.xml"
    signed.write_bytes(xml)
    assert cli_main(["cap", "verify", str(signed)]) == 0
    assert cli_main(["cap", "verify", str(signed), "--at-sent", "--cert", str(cert)]) == 0
    assert "OK:" in capsys.readouterr().out

    tampered = tmp_path / "tampered.xml"
    tampered.write_bytes(xml.replace(b"<msgType>Cancel<", b"<msgType>Update<"))
    assert cli_main(["cap", "verify", str(tampered)]) == EXIT_CODES["signature"]
    unsigned = tmp_path / "unsigned.xml"
    unsigned.write_bytes(etree.tostring(_without_signature(root)))
    # Unsigned CAP is valid CAP, unless a signature is required.
    assert cli_main(["cap", "verify", str(unsigned)]) == 0
    required = ["cap", "verify", "--require-signature", str(unsigned)]
    assert cli_main(required) == EXIT_CODES["signature"]
    other = tmp_path / "other.pem"
    other.write_bytes(make_self_signed("someone else").cert_pem)
    assert cli_main(["cap", "verify", str(signed), "--cert", str(other)]) == EXIT_CODES["signature"]
    assert "INVALID" in capsys.readouterr().err
    assert cli_main(["cap", "verify", str(tmp_path / "missing.xml")]) == 1


def _without_signature(root: Any) -> Any:
    root.remove(root[-1])
    return root


def test_feed_dir_files_equal_what_flask_serves(
    desk: Desk, ctx: Context, client: FlaskClient, tmp_path: Path
) -> None:
    folder = tmp_path / "feeds"
    ctx.settings = ctx.settings.with_overrides(FEED_DIR=str(folder))
    alert = desk.approve()
    desk.approve(status="Test")
    desk.update(alert, description="Seen at the mall.")
    with ctx.db.session() as session:
        identifiers = list(session.execute(select(CapDocument.identifier)).scalars())
    assert len(identifiers) == 3
    for identifier in identifiers:
        path = folder / "cap" / f"{identifier}.xml"
        assert path.read_bytes() == client.get(f"/cap/{identifier}.xml").data
    for name in FEEDS:
        assert (folder / "feeds" / name).read_bytes() == client.get(f"/feeds/{name}").data
        assert (folder / "feeds" / "test" / name).read_bytes() == client.get(
            f"/feeds/test/{name}"
        ).data
    assert not [p for p in folder.rglob(".*.*") if p.name not in (".lock", ".state")]

    # Rewriting is harmless and changes nothing.
    assert write_feed_dir(ctx, all_documents=True) == []


def test_a_retention_window_ending_updates_flask_and_feed_dir(
    desk: Desk, ctx: Context, client: FlaskClient, tmp_path: Path
) -> None:
    folder = tmp_path / "feeds"
    ctx.settings = ctx.settings.with_overrides(FEED_DIR=str(folder), FEED_RETENTION_HOURS=3 / 3600)
    alert = desk.approve()
    desk.cancel(alert)
    cancel = desk.versions(alert)[-1]
    assert _atom_ids(client) == [_cap_url(cancel.identifier)]
    assert refresh_feed_dir(ctx) == []  # nothing has left yet: no rewrite
    assert cancel.identifier.encode() in (folder / "feeds" / "cap.atom").read_bytes()

    # sent_at is whole seconds, so the window ends 2 to 3 s from now.
    time.sleep(max(0.0, (cancel.sent_at + timedelta(seconds=3.1) - utcnow()).total_seconds()))
    # Nothing was published; only the clock moved past the window's end.
    assert _atom_ids(client) == []
    assert folder / "feeds" / "cap.atom" in refresh_feed_dir(ctx)
    assert (folder / "feeds" / "cap.atom").read_bytes() == client.get("/feeds/cap.atom").data
