"""The feeds broadcasters poll: a thin Atom index, RSS 2.0 and GeoJSON of the live CAP messages,
built together per scope and cached in the process.

Which messages are live is ``feed_live``'s (with the module docstring's rules); each format is
written by ``feed_atom``, ``feed_rss`` or ``feed_geojson``. A build is a pure function of the
database and the clock's position between boundaries, so every web process and the static writer
produce the same bytes and the same strong ETag.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from alertd.channels.cap.feed_atom import atom_feed
from alertd.channels.cap.feed_geojson import geojson_feed
from alertd.channels.cap.feed_live import (
    EPOCH,
    PUBLIC,
    TEST,
    feed_retention,
    last_modified,
    live_documents,
)
from alertd.channels.cap.feed_rss import rss_feed
from alertd.db import Database, utcnow
from alertd.settings import Settings
from alertd.web.http_cache import strong_etag

# PUBLIC and TEST (feed_live's) are the scopes build_feeds and FeedCache.get take: offered here
# beside them.
__all__ = [
    "CONTENT_TYPES",
    "FEED_NAMES",
    "PUBLIC",
    "TEST",
    "BuiltFeeds",
    "FeedCache",
    "Fingerprint",
    "build_feeds",
    "document_fingerprint",
]

FEED_NAMES = ("cap.atom", "cap-full.atom", "alerts.rss", "alerts.geojson")
CONTENT_TYPES = {
    "cap.atom": "application/atom+xml; charset=utf-8",
    "cap-full.atom": "application/atom+xml; charset=utf-8",
    "alerts.rss": "application/rss+xml; charset=utf-8",
    "alerts.geojson": "application/geo+json",
}

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
    built_at: datetime = EPOCH

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


def build_feeds(
    session: Session,
    settings: Settings,
    scope: str,
    *,
    fingerprint: Fingerprint,
    now: datetime | None = None,
) -> BuiltFeeds:
    now = now or utcnow()
    retention = feed_retention(settings)
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
