"""Public routes of the CAP channel: documents at permanent URLs and the feeds.

Caching (issue 3, item 6; issue 9, item 6): every response carries a strong ETag and answers 304
to If-None-Match (weak comparison) or, without it, to If-Modified-Since; documents and feeds are
offered gzip-compressed under an ETag of their own; no public response varies on the cookie
(alertd.web.http_cache). Documents and pages always carry
Last-Modified; a feed carries it only once a whole second has passed since the build it serves
(see BuiltFeeds.http_last_modified), since a feed can change twice within one second and a
whole-second validator would then hide the second change. Feeds come from the in-process
FeedCache, so a conditional poll costs one ``count(*), max(id)`` query and no feed build.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app
from sqlalchemy import select

from alertd.channels.cap.feeds import CONTENT_TYPES, PUBLIC, TEST, FeedCache
from alertd.channels.cap.models import CapDocument
from alertd.db import utcnow
from alertd.web.auth import ctx
from alertd.web.http_cache import conditional, public, strong_etag

__all__ = ["bp", "conditional", "feed_cache"]

bp = Blueprint("cap", __name__)

FEED_CACHE_CONTROL = "public, max-age=30"
DOCUMENT_CACHE_CONTROL = "public, max-age=31536000, immutable"
CAP_CONTENT_TYPE = "application/cap+xml; charset=utf-8"
_CACHE_KEY = "alertd.cap.feeds"


def feed_cache() -> FeedCache:
    # Per application: tests build many apps over one database whose ids restart from 1.
    cache = current_app.extensions.get(_CACHE_KEY)
    if cache is None:
        cache = current_app.extensions[_CACHE_KEY] = FeedCache()
    assert isinstance(cache, FeedCache)
    return cache


# CAP documents ---------------------------------------------------------------------------------


@bp.get("/cap/<identifier>.xml")
@public
def cap_document(identifier: str) -> Response:
    with ctx().db.session() as session:
        document = session.execute(
            select(CapDocument).where(CapDocument.identifier == identifier)
        ).scalar_one_or_none()
        if document is None:
            abort(404)
    return conditional(
        document.xml,
        etag=f'"{document.sha256[:32]}"',
        last_modified=document.created_at,
        content_type=CAP_CONTENT_TYPE,
        cache_control=DOCUMENT_CACHE_CONTROL,
        compress=True,
    )


# Feeds -----------------------------------------------------------------------------------------


def _feed(scope: str, name: str) -> Response:
    context = ctx()
    # Read before the cache reads the fingerprint, so every commit this answer misses came
    # later; http_last_modified's guarantee rests on that order.
    now = utcnow()
    built = feed_cache().get(context.db, context.settings, scope, now=now)
    body = built.bodies[name]
    return conditional(
        body,
        etag=built.etags.get(name) or strong_etag(body),
        last_modified=built.http_last_modified(now),
        content_type=CONTENT_TYPES[name],
        cache_control=FEED_CACHE_CONTROL,
        compress=True,
    )


@bp.get("/feeds/cap.atom")
@public
def atom() -> Response:
    return _feed(PUBLIC, "cap.atom")


@bp.get("/feeds/cap-full.atom")
@public
def atom_full() -> Response:
    return _feed(PUBLIC, "cap-full.atom")


@bp.get("/feeds/test/cap-full.atom")
@public
def test_atom_full() -> Response:
    return _feed(TEST, "cap-full.atom")


@bp.get("/feeds/alerts.rss")
@public
def rss() -> Response:
    return _feed(PUBLIC, "alerts.rss")


@bp.get("/feeds/alerts.geojson")
@public
def geojson() -> Response:
    return _feed(PUBLIC, "alerts.geojson")


@bp.get("/feeds/test/cap.atom")
@public
def test_atom() -> Response:
    return _feed(TEST, "cap.atom")


@bp.get("/feeds/test/alerts.rss")
@public
def test_rss() -> Response:
    return _feed(TEST, "alerts.rss")


@bp.get("/feeds/test/alerts.geojson")
@public
def test_geojson() -> Response:
    return _feed(TEST, "alerts.geojson")
