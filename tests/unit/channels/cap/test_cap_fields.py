"""CAP fields real senders use: <source>, <incidents>, <effective>, <onset> and the photo inline
as <derefUri> when it is small enough."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from lxml import etree

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Version
from alertd.channels.cap.builder import build_cap
from alertd.channels.cap.channel import build_document, cap_version_for
from alertd.channels.cap.message import CAP_NS, CapReference
from alertd.channels.cap.validate import validate_cap
from alertd.context import Context
from tests.support.factories import alert_body, png_bytes
from tests.unit.channels.cap.conftest import SENT, VersionFactory
from tests.unit.channels.cap.test_independent_validators import xmllint_schema

NS = {"cap": CAP_NS}


def test_source_incidents_effective_and_onset_are_written_where_known(
    make_version: VersionFactory, tmp_path: Path
) -> None:
    version = make_version(
        source="Springfield PD dispatch",
        content_changes={
            "case_reference": 'NCIC 2025 "0001"',
            "last_seen_at": "2025-03-01T19:30:00+00:00",  # typed in UTC
        },
    )
    xml = build_cap(version)
    path = tmp_path / "fields.xml"
    path.write_bytes(xml)
    assert xmllint_schema(path).returncode == 0  # the schema's element order holds
    assert validate_cap(xml, strict=True) == []
    root = etree.fromstring(xml)
    assert root.findtext("cap:source", namespaces=NS) == "Springfield PD dispatch"
    assert root.findtext("cap:incidents", namespaces=NS) == '"NCIC 2025 0001"'
    info = root.find("cap:info", NS)
    assert info.findtext("cap:effective", namespaces=NS) == root.findtext("cap:sent", namespaces=NS)
    # Last seen becomes the onset, in the same zone as <sent> (-05:00 in this fixture).
    assert info.findtext("cap:onset", namespaces=NS) == "2025-03-01T14:30:00-05:00"


def test_without_them_nothing_empty_is_written(make_version: VersionFactory) -> None:
    version = make_version(content_changes={"case_reference": "", "last_seen_at": ""})
    root = etree.fromstring(build_cap(version))
    for path in ("cap:source", "cap:incidents", "cap:info/cap:onset"):
        assert root.find(path, NS) is None, path
    # An ending says the search is over; "last seen" is no longer the news.
    first = CapReference("alerts@police.example.org", "alertd.A1B2C3D4.1", SENT)
    ended = make_version(
        identifier="alertd.A1B2C3D4.2", msg_type="Cancel", kind="cancel", references=(first,)
    )
    assert etree.fromstring(build_cap(ended)).find("cap:info/cap:onset", NS) is None
    assert etree.fromstring(build_cap(make_version())).find("cap:info/cap:onset", NS) is not None


def test_a_small_photo_travels_inline_beside_its_uri_and_a_large_one_only_by_uri(
    ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    photo = png_bytes(64, 64)
    alert = services.create_alert(ctx, alert_body(), by=officer, photo=photo)
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)
    with ctx.db.session() as session:
        version = session.query(Version).filter_by(alert_id=alert.id).one()
        inline = build_document(ctx.settings, cap_version_for(ctx.settings, version, version.alert))
        small = ctx.settings.with_overrides(CAP_DEREF_MAX_BYTES=len(photo) - 1)
        linked = build_document(small, cap_version_for(small, version, version.alert))
    for xml in (inline, linked):
        assert validate_cap(xml, strict=True) == []
    resource = etree.fromstring(inline).find("cap:info/cap:resource", NS)
    data = base64.b64decode(resource.findtext("cap:derefUri", namespaces=NS), validate=True)
    assert data == photo
    assert resource.findtext("cap:digest", namespaces=NS) == hashlib.sha1(photo).hexdigest()  # noqa: S324  # CAP's digest is SHA-1
    assert resource.findtext("cap:uri", namespaces=NS).startswith("http")
    resource = etree.fromstring(linked).find("cap:info/cap:resource", NS)
    assert resource.find("cap:derefUri", NS) is None and resource.find("cap:uri", NS) is not None
