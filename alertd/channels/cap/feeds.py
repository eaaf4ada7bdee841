"""The feeds broadcasters poll: a thin Atom index, RSS 2.0 and GeoJSON of the live CAP messages.

Which message is live (DOMAIN.md section 4, issue 3):

- only the latest published message of each alert; a superseded one leaves when its successor
  enters (a successor whose CAP build failed never entered, so its predecessor stays);
- an Alert or Update (including an extension) stays until its expiry;
- a Cancel or a resolving Update (AllClear) stays for ``FEED_RETENTION_HOURS`` after it was sent,
  so pollers learn the alert ended, then leaves;
- an expired alert leaves at its expiry. The Cancel that the sweeper publishes when an alert
  expires is kept at its permanent URL but never enters the feeds: its predecessor already left
  at the same moment, and re-announcing a dead alert would make some aggregators show it again;
- Actual messages go to the public feeds only; Exercise and Test messages only to the test feeds.

A build reads the candidate rows by index (expiry or sending time), so it costs in proportion to
the live and recently ended alerts, not to the history. The output is a pure function of the
database and the clock's position between boundaries, so every web process and the static writer
produce the same bytes and the same strong ETag.
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from feedgen.feed import FeedGenerator
from lxml import etree  # type: ignore[import-untyped]  # lxml ships no type information
from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.orm import Session

from alertd.alerts.geometry import geojson_circle, geojson_polygon
from alertd.channels.cap.message import CAP_NS, format_cap_datetime
from alertd.channels.cap.models import CapDocument
from alertd.db import Database, utcnow
from alertd.localtime import to_local
from alertd.public.links import base_url
from alertd.settings import Settings
from alertd.web.http_cache import strong_etag

ATOM_NS = "http://www.w3.org/2005/Atom"
PUBLIC, TEST = "public", "test"
SCOPE_STATUSES = {PUBLIC: ("Actual",), TEST: ("Exercise", "Test")}
# Kinds that keep a message live until its expiry, and kinds that end the alert but are kept
# for the retention window. "expire" is in neither (see the module docstring).
LIVE_KINDS = ("alert", "update", "extend")
RETAINED_KINDS = ("cancel", "resolve")
FEED_NAMES = ("cap.atom", "cap-full.atom", "alerts.rss", "alerts.geojson")
CONTENT_TYPES = {
    "cap.atom": "application/atom+xml; charset=utf-8",
    "cap-full.atom": "application/atom+xml; charset=utf-8",
    "alerts.rss": "application/rss+xml; charset=utf-8",
    "alerts.geojson": "application/geo+json",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# (number of documents, newest id): what a cached build is checked against on every request.
Fingerprint = tuple[int, int]


@dataclass(frozen=True)
class BuiltFeeds:
    """The three feeds of one scope as they stand for one database state."""

    scope: str
    fingerprint: Fingerprint
    # The next moment an entry leaves by expiry or retention; the build is stale from then on.
    valid_until: datetime | None
    # The feeds' own <updated>/<lastBuildDate>, derived from the rows so that every process
    # and the static writer produce the same bytes. It can predate the commit that made the
    # newest document visible (created_at is set at insert), so it is no HTTP validator.
    last_modified: datetime
    bodies: Mapping[str, bytes]
    etags: Mapping[str, str] = field(default_factory=dict)
    # Read from the clock after the build's queries: every commit and boundary this build
    # reflects happened before it, which is what Last-Modified must be measured from.
    built_at: datetime = _EPOCH

    def fresh(self, fingerprint: Fingerprint, now: datetime) -> bool:
        return fingerprint == self.fingerprint and (
            self.valid_until is None or now < self.valid_until
        )

    def http_last_modified(self, now: datetime) -> datetime | None:
        """The Last-Modified to send at `now`, or None to send none and rely on the ETag.

        The value is the first whole second after this build (or its rows' own time, if a
        writer's clock runs ahead), and it is only sent once that second has begun. A client
        holding it therefore fetched after the build, and any later change is committed later
        still and gets a later build, hence a later whole second: If-Modified-Since cannot
        hide a change made within the second it was fetched in. A client that sends the Date
        of a same-second response as If-Modified-Since is covered too, being below the value.
        """
        changed = max(self.built_at, self.last_modified)
        stamp = changed.replace(microsecond=0) + timedelta(seconds=1)
        return stamp if stamp <= now else None


# URLs ------------------------------------------------------------------------------------------


def document_path(identifier: str) -> str:
    # Identifiers never hold spaces, commas, < or & (CAP 1.2 section 3.2.1); quoting the rest
    # keeps the URL and the static file name the same string.
    return f"/cap/{quote(identifier, safe='@.-_~+')}.xml"


def document_url(settings: Settings, identifier: str) -> str:
    return base_url(settings) + document_path(identifier)


def feed_path(scope: str, name: str) -> str:
    return f"/feeds/{name}" if scope == PUBLIC else f"/feeds/test/{name}"


# The summary stored beside each document --------------------------------------------------------


def summarize(xml: bytes) -> dict[str, Any]:
    """What the feeds show of one message, read from its first info block (the primary language)
    and all its areas, so a feed entry says exactly what the message says."""
    ns = {"cap": CAP_NS}
    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    infos = root.findall("cap:info", ns)
    info = infos[0] if infos else None

    def text(node: Any, path: str) -> str:
        found = node.find(path, ns) if node is not None else None
        return str(found.text or "").strip() if found is not None else ""

    areas: list[dict[str, Any]] = []
    for area in info.findall("cap:area", ns) if info is not None else []:
        polygons = []
        for polygon in area.findall("cap:polygon", ns):
            points = [pair.split(",") for pair in str(polygon.text or "").split()]
            polygons.append([[float(lat), float(lon)] for lat, lon in points])
        circles = []
        for circle in area.findall("cap:circle", ns):
            centre, radius = str(circle.text or "").split()
            lat, lon = centre.split(",")
            circles.append({"lat": float(lat), "lon": float(lon), "radius_km": float(radius)})
        geocodes = [
            [text(g, "cap:valueName"), text(g, "cap:value")]
            for g in area.findall("cap:geocode", ns)
        ]
        areas.append(
            {
                "description": text(area, "cap:areaDesc"),
                "polygons": polygons,
                "circles": circles,
                "geocodes": geocodes,
            }
        )
    return {
        "sender": text(root, "cap:sender"),
        "language": text(info, "cap:language"),
        "languages": [text(i, "cap:language") for i in infos],
        "event": text(info, "cap:event"),
        "category": text(info, "cap:category"),
        "response_type": text(info, "cap:responseType"),
        "urgency": text(info, "cap:urgency"),
        "severity": text(info, "cap:severity"),
        "certainty": text(info, "cap:certainty"),
        "sender_name": text(info, "cap:senderName"),
        "headline": text(info, "cap:headline"),
        "web": text(info, "cap:web"),
        "area_desc": "; ".join(a["description"] for a in areas if a["description"]),
        "areas": areas,
    }


# Which documents are live ----------------------------------------------------------------------


def _retention(settings: Settings) -> timedelta:
    return timedelta(hours=settings.FEED_RETENTION_HOURS)


def leaves_at(document: CapDocument, retention: timedelta) -> datetime | None:
    """When this document leaves the feeds if nothing supersedes it; None if it never enters."""
    if document.kind in LIVE_KINDS:
        return document.expires_at
    if document.kind in RETAINED_KINDS:
        return document.sent_at + retention
    return None


def live_documents(
    session: Session, scope: str, now: datetime, retention: timedelta
) -> tuple[list[CapDocument], datetime | None]:
    """The live documents of a scope, newest first, and the next time one of them leaves."""
    statuses = SCOPE_STATUSES[scope]
    # Alerts that may have a live document: found through the expiry and sending-time indexes,
    # so the cost follows the live and recently ended alerts, not the whole history.
    candidates = (
        select(CapDocument.alert_id)
        .where(
            CapDocument.status.in_(statuses),
            or_(
                and_(CapDocument.kind.in_(LIVE_KINDS), CapDocument.expires_at > now),
                and_(CapDocument.kind.in_(RETAINED_KINDS), CapDocument.sent_at > now - retention),
            ),
        )
        .distinct()
    )
    latest = (
        select(func.max(CapDocument.version_id))
        .where(CapDocument.alert_id.in_(candidates))
        .group_by(CapDocument.alert_id)
    )
    documents = (
        session.execute(select(CapDocument).where(CapDocument.version_id.in_(latest)))
        .scalars()
        .all()
    )
    live: list[CapDocument] = []
    boundary: datetime | None = None
    for document in documents:
        leaves = leaves_at(document, retention)
        if leaves is None or leaves <= now:
            continue
        live.append(document)
        boundary = leaves if boundary is None else min(boundary, leaves)
    live.sort(key=lambda d: (d.sent_at, d.id), reverse=True)
    return live, boundary


def last_modified(session: Session, now: datetime, retention: timedelta) -> datetime:
    """When the feeds last changed, or a little later: the newest document, or the latest
    expiry or retention end already passed. Each term is one index seek. It may overstate the
    time (a superseded document's expiry counts), which costs a client one extra 200, but it
    never goes backwards, so If-Modified-Since never hides a change."""
    newest = session.execute(
        select(CapDocument.created_at).order_by(CapDocument.id.desc()).limit(1)
    ).scalar()
    expired = session.execute(
        select(CapDocument.expires_at)
        .where(CapDocument.expires_at <= now)
        .order_by(CapDocument.expires_at.desc())
        .limit(1)
    ).scalar()
    retired = session.execute(
        select(CapDocument.sent_at)
        .where(CapDocument.sent_at <= now - retention)
        .order_by(CapDocument.sent_at.desc())
        .limit(1)
    ).scalar()
    moments = [m for m in (newest, expired, retired + retention if retired else None) if m]
    return max(moments, default=_EPOCH).replace(microsecond=0)


def document_fingerprint(db: Database) -> Fingerprint:
    """The feed fingerprint, read on every request: (number of documents, newest id).

    The newest id alone misses a commit: PostgreSQL assigns ids at insert, so document N can
    commit after N+1, and a feed built in between stays "fresh" once N appears. Documents are
    never deleted, so the count rises with every commit of a new one; the newest id stays in
    as a guard against a delete followed by an insert. Both come from one statement, so they
    describe one snapshot. On PostgreSQL count(*) walks the primary-key index, which for one
    row per published version is still a small read; no feed build happens when it matches.

    A read session: on SQLite it begins without the write lock, so pollers never queue behind
    the workers publishing the next alert.
    """
    with db.session() as session:
        row = session.execute(text("SELECT count(*), max(id) FROM cap_documents")).one()
    return (int(row[0] or 0), int(row[1] or 0))


# Building --------------------------------------------------------------------------------------


def build_feeds(
    session: Session,
    settings: Settings,
    scope: str,
    *,
    fingerprint: Fingerprint,
    now: datetime | None = None,
) -> BuiltFeeds:
    now = now or utcnow()
    retention = _retention(settings)
    documents, boundary = live_documents(session, scope, now, retention)
    modified = last_modified(session, now, retention)
    bodies = {
        "cap.atom": atom_feed(settings, scope, documents, modified),
        "cap-full.atom": atom_feed(settings, scope, documents, modified, full=True),
        "alerts.rss": rss_feed(settings, scope, documents, modified),
        "alerts.geojson": geojson_feed(settings, documents),
    }
    etags = {name: strong_etag(body) for name, body in bodies.items()}
    # The real clock even when `now` is given: this is when the rows were read.
    return BuiltFeeds(scope, fingerprint, boundary, modified, bodies, etags, utcnow())


def _rfc3339(moment: datetime) -> str:
    # Atom wants RFC 3339; "+00:00" rather than CAP's "-00:00", which RFC 3339 reads as
    # "offset unknown".
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _title(settings: Settings, scope: str) -> str:
    name = settings.CAP_SENDER_NAME
    return f"{name}: child abduction alerts" + (" (exercises and tests)" if scope == TEST else "")


def _atom(name: str) -> str:
    return f"{{{ATOM_NS}}}{name}"


def _cap(name: str) -> str:
    return f"{{{CAP_NS}}}{name}"


def _text_element(parent: Any, tag: str, text: str, **attributes: str) -> Any:
    element = etree.SubElement(parent, tag, **attributes)
    element.text = text
    return element


def atom_feed(
    settings: Settings,
    scope: str,
    documents: Sequence[CapDocument],
    updated: datetime,
    *,
    full: bool = False,
) -> bytes:
    """The thin Atom index of DOMAIN.md section 4: one entry per live message whose id is the
    message's permanent URL, with the cap: summary pollers filter on before fetching it.

    `full=True` is the same feed with each entry's `content` the CAP document itself, for
    readers that do not follow links. It is written without re-indenting, so an embedded
    signed document keeps the exact bytes its signature covers.
    """
    self_url = base_url(settings) + feed_path(scope, "cap-full.atom" if full else "cap.atom")
    # The full feed declares cap: on each summary element, not on the root: lxml would otherwise
    # rewrite an embedded document's default namespace to that prefix, changing the bytes its
    # signature covers.
    feed = etree.Element(_atom("feed"), nsmap={None: ATOM_NS} if full else _ROOT_NSMAP)
    _text_element(feed, _atom("id"), self_url)
    _text_element(feed, _atom("title"), _title(settings, scope))
    _text_element(feed, _atom("updated"), _rfc3339(updated))
    author = etree.SubElement(feed, _atom("author"))
    _text_element(author, _atom("name"), settings.CAP_SENDER_NAME)
    etree.SubElement(feed, _atom("link"), rel="self", type="application/atom+xml", href=self_url)
    for document in documents:
        summary = document.summary
        url = document_url(settings, document.identifier)
        entry = etree.SubElement(feed, _atom("entry"))
        _text_element(entry, _atom("id"), url)
        _text_element(entry, _atom("title"), summary.get("headline") or document.identifier)
        _text_element(entry, _atom("updated"), _rfc3339(document.sent_at))
        _text_element(entry, _atom("published"), _rfc3339(document.sent_at))
        entry_author = etree.SubElement(entry, _atom("author"))
        _text_element(
            entry_author, _atom("name"), summary.get("sender_name") or settings.CAP_SENDER_NAME
        )
        etree.SubElement(
            entry, _atom("link"), rel="alternate", type="application/cap+xml", href=url
        )
        if summary.get("web"):
            etree.SubElement(
                entry, _atom("link"), rel="related", type="text/html", href=summary["web"]
            )
        _text_element(entry, _atom("summary"), summary.get("headline") or "")
        if full:
            content = etree.SubElement(entry, _atom("content"), type="application/cap+xml")
            content.append(etree.fromstring(document.xml, _PARSER))
        summary_elements = (
            ("identifier", document.identifier),
            ("event", summary.get("event", "")),
            # NWS-style readers read the category among the summary elements.
            ("category", _category(document)),
            ("status", document.status),
            ("msgType", document.msg_type),
            ("urgency", summary.get("urgency", "")),
            ("severity", summary.get("severity", "")),
            ("certainty", summary.get("certainty", "")),
            ("areaDesc", summary.get("area_desc", "")),
            ("sent", format_cap_datetime(to_local(document.sent_at, settings))),
            ("expires", format_cap_datetime(to_local(document.expires_at, settings))),
        )
        for name, value in summary_elements:
            element = etree.SubElement(entry, _cap(name), nsmap=_CAP_NSMAP if full else None)
            element.text = value
    body: bytes = etree.tostring(
        feed, xml_declaration=True, encoding="UTF-8", pretty_print=not full
    )
    return body


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)
_ROOT_NSMAP = {None: ATOM_NS, "cap": CAP_NS}
_CAP_NSMAP = {"cap": CAP_NS}


def _category(document: CapDocument) -> str:
    # Documents stored before the summary kept the category are read again for it.
    summary = document.summary
    if "category" not in summary:
        summary = summarize(document.xml)
    return str(summary.get("category") or "")


def rss_feed(
    settings: Settings, scope: str, documents: Sequence[CapDocument], updated: datetime
) -> bytes:
    generator = FeedGenerator()
    generator.title(_title(settings, scope))
    generator.link(href=base_url(settings) + feed_path(scope, "alerts.rss"), rel="self")
    generator.link(href=base_url(settings) + "/", rel="alternate")
    generator.description(
        "Child abduction alerts as CAP 1.2 messages; each item links to its CAP document."
    )
    generator.language("en")
    # feedgen stamps the build time by default; the feed's own time keeps the bytes the same
    # in every web process and in the static copy, so the strong ETag holds everywhere.
    generator.lastBuildDate(updated)
    generator.pubDate(updated)
    generator.ttl(1)
    for document in reversed(documents):  # feedgen prepends entries by default
        summary = document.summary
        entry = generator.add_entry()
        entry.title(summary.get("headline") or document.identifier)
        entry.link(href=document_url(settings, document.identifier))
        entry.guid(document.identifier, permalink=False)
        entry.pubDate(document.sent_at)
        # Readers render an RSS description as HTML: escape the text once, so an area typed as
        # "<img …>" shows as those characters, never as markup (lxml escapes it again as XML).
        entry.description(
            html.escape(
                " | ".join(
                    part
                    for part in (
                        summary.get("event"),
                        document.status,
                        document.msg_type,
                        summary.get("area_desc"),
                    )
                    if part
                )
            )
        )
        entry.enclosure(
            document_url(settings, document.identifier), str(document.size), "application/cap+xml"
        )
    body: bytes = generator.rss_str(pretty=True)
    return body


def geojson_feed(settings: Settings, documents: Sequence[CapDocument]) -> bytes:
    """Live alerts for web maps. GeoJSON has no circle, so a CAP circle is a polygon that
    approximates it, with ``centre`` ([lon, lat]) and ``radius_km`` properties; an alert with
    only geocodes is a feature with a null geometry."""
    features: list[dict[str, Any]] = []
    for document in documents:
        summary = document.summary
        properties: dict[str, Any] = {
            "identifier": document.identifier,
            "cap_url": document_url(settings, document.identifier),
            "web": summary.get("web", ""),
            "headline": summary.get("headline", ""),
            "event": summary.get("event", ""),
            "status": document.status,
            "msgType": document.msg_type,
            "urgency": summary.get("urgency", ""),
            "severity": summary.get("severity", ""),
            "certainty": summary.get("certainty", ""),
            "sent": format_cap_datetime(to_local(document.sent_at, settings)),
            "expires": format_cap_datetime(to_local(document.expires_at, settings)),
        }
        shapes = list(_shapes(summary.get("areas") or []))
        if not shapes:
            features.append(
                {
                    "type": "Feature",
                    "geometry": None,
                    "properties": {**properties, "areaDesc": summary.get("area_desc")},
                }
            )
        for geometry, extra in shapes:
            features.append(
                {"type": "Feature", "geometry": geometry, "properties": {**properties, **extra}}
            )
    collection = {"type": "FeatureCollection", "features": features}
    return (json.dumps(collection, ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode()


def _shapes(areas: Iterable[Mapping[str, Any]]) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
    for area in areas:
        extra = {"areaDesc": area.get("description", "")}
        for polygon in area.get("polygons") or []:
            yield geojson_polygon(polygon), extra
        for circle in area.get("circles") or []:
            # Maps draw the approximating polygon; the properties keep the circle exact.
            lat, lon, radius = circle["lat"], circle["lon"], circle["radius_km"]
            yield (
                geojson_circle(lat, lon, radius),
                {**extra, "centre": [lon, lat], "radius_km": radius},
            )


# The in-process cache --------------------------------------------------------------------------


class FeedCache:
    """Built feeds per scope, reused while the fingerprint (document count and newest id) and
    the next boundary hold. A poller's conditional request then costs one ``count(*), max(id)``
    query and no build."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: dict[str, BuiltFeeds] = {}
        self.builds = 0  # how many times a feed was built; tests and the benchmark read it

    def get(
        self, db: Database, settings: Settings, scope: str, *, now: datetime | None = None
    ) -> BuiltFeeds:
        # The clock is read before the fingerprint, so a commit that the returned build misses
        # came after `now`: a caller deciding on Last-Modified with this `now` relies on that.
        now = now or utcnow()
        fingerprint = document_fingerprint(db)
        built = self._built.get(scope)
        if built is not None and built.fresh(fingerprint, now):
            return built
        # One build at a time: a burst of pollers after a change waits for one build instead
        # of each doing the same work.
        with self._lock:
            built = self._built.get(scope)
            if built is not None and built.fresh(fingerprint, now):
                return built
            with db.session() as session:
                built = build_feeds(session, settings, scope, fingerprint=fingerprint, now=now)
            self._built[scope] = built
            self.builds += 1
            return built
