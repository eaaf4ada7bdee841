"""Feed entries readers expect: cap:category in each Atom entry, and a full-content Atom feed
whose entries carry the CAP documents themselves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
from flask.testing import FlaskClient
from lxml import etree

from alertd.actor import Actor
from alertd.broker import RecordingPublisher
from alertd.channels.cap.message import CAP_NS
from alertd.channels.cap.signing import verify_cap
from alertd.channels.cap.validate import validate_cap
from alertd.context import Context
from tests.functional.test_feeds import Desk
from tests.unit.channels.cap.conftest import make_self_signed

NS = {"atom": "http://www.w3.org/2005/Atom", "cap": CAP_NS}


@pytest.fixture(autouse=True)
def cap_channels(ctx: Context) -> Iterator[None]:
    ctx.settings = ctx.settings.with_overrides(CHANNELS="cap,log")
    yield


@pytest.fixture
def desk(ctx: Context, publisher: RecordingPublisher, officer: Actor, supervisor: Actor) -> Desk:
    return Desk(ctx, publisher, officer, supervisor)


def test_each_atom_entry_carries_cap_category(desk: Desk, client: FlaskClient) -> None:
    desk.approve()
    for path in ("/feeds/cap.atom", "/feeds/cap-full.atom"):
        root = etree.fromstring(client.get(path).data)
        entries = root.findall("atom:entry", NS)
        assert entries and [e.findtext("cap:category", namespaces=NS) for e in entries] == [
            "Rescue"
        ] * len(entries)


def test_the_full_feed_carries_each_signed_document_byte_for_byte(
    desk: Desk, ctx: Context, client: FlaskClient, tmp_path: Path
) -> None:
    identity = make_self_signed()
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    key.write_bytes(identity.key_pem)
    cert.write_bytes(identity.cert_pem)
    ctx.settings = ctx.settings.with_overrides(CAP_SIGNING_KEY=str(key), CAP_SIGNING_CERT=str(cert))
    first = desk.approve()
    desk.approve()
    desk.update(first, description="Seen at the mall.")

    response = client.get("/feeds/cap-full.atom")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/atom+xml")
    parsed = feedparser.parse(response.data)
    assert not parsed.bozo, parsed.bozo_exception
    thin = etree.fromstring(client.get("/feeds/cap.atom").data)
    full = etree.fromstring(response.data)
    thin_ids = [e.findtext("atom:id", namespaces=NS) for e in thin.findall("atom:entry", NS)]
    full_entries = full.findall("atom:entry", NS)
    assert [e.findtext("atom:id", namespaces=NS) for e in full_entries] == thin_ids
    assert len(full_entries) == 2  # the second alert, and the first one's update
    for entry in full_entries:
        content = entry.find("atom:content", NS)
        assert content.get("type") == "application/cap+xml"
        (alert,) = list(content)
        embedded = etree.tostring(alert)
        # The same document the entry links to, and its signature still verifies when a
        # reader lifts it out of the feed.
        linked = client.get(entry.find("atom:link[@rel='alternate']", NS).get("href")).data
        assert alert.findtext("cap:identifier", namespaces=NS) in linked.decode()
        assert validate_cap(embedded, strict=True) == []
        verify_cap(embedded, identity.cert_pem)
