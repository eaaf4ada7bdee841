"""HTTP caching for what the public reads: CAP documents, feeds and alert pages.

- Such views are marked `@public`: they never read the session cookie, so their responses carry
  neither `Vary: Cookie` nor `Set-Cookie` and any shared cache may keep one copy for everyone.
- `If-None-Match` uses the weak comparison (RFC 9110 section 13.1.2): `W/"tag"` matches `"tag"`.
- With `compress=True`, a client that accepts gzip gets the gzip bytes under their own ETag, so
  a cache never answers a gzip validator with identity bytes or the other way round.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from flask import Flask, Response, current_app, request
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from werkzeug.http import http_date

F = TypeVar("F", bound=Callable[..., Any])


def strong_etag(body: bytes) -> str:
    """A strong validator for exactly these bytes."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


_PUBLIC = "_alertd_public"
# Compressed bodies by ETag: feeds are rebuilt rarely and polled every minute, documents never
# change, so each is compressed once. Bounded so a crawl over old documents cannot grow it.
_GZIP_CACHE: dict[str, bytes] = {}
_GZIP_CACHE_SIZE = 512
# Below this, gzip's header costs more than it saves.
_GZIP_MIN_BYTES = 512


def public(view: F) -> F:
    """Mark a view as public: no session is read or written for it."""
    setattr(view, _PUBLIC, True)
    return view


def is_public_request() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, _PUBLIC, False))


class PublicAwareSessionInterface(SecureCookieSessionInterface):
    """Flask's cookie sessions, except that a public response never saves the session, so it
    gets no `Vary: Cookie` and no `Set-Cookie` (not even a refreshed or cleared cookie)."""

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if request and is_public_request():
            return
        super().save_session(app, session, response)


def weak_etag_matches(etag: str) -> bool:
    """Whether the request's If-None-Match names `etag` (quoted, strong), by weak comparison."""
    header = request.if_none_match
    return bool(header.star_tag or header.contains_weak(etag.strip('"')))


def _gzipped(etag: str, body: bytes) -> bytes:
    cached = _GZIP_CACHE.get(etag)
    if cached is None:
        # mtime=0: the same body always gives the same bytes, so the ETag stays true.
        cached = gzip.compress(body, compresslevel=6, mtime=0)
        if len(_GZIP_CACHE) >= _GZIP_CACHE_SIZE:
            _GZIP_CACHE.pop(next(iter(_GZIP_CACHE)), None)
        _GZIP_CACHE[etag] = cached
    return cached


def conditional(
    body: bytes,
    *,
    etag: str,
    last_modified: datetime | None,
    content_type: str,
    cache_control: str,
    compress: bool = False,
) -> Response:
    """A 200 with validators, or a 304 when the client's copy is current (RFC 9110 13.2.2:
    If-None-Match wins over If-Modified-Since when both are sent).

    Without `last_modified` no Last-Modified is sent and If-Modified-Since is ignored: the
    ETag alone decides, because the time is not yet one a client may safely compare against.
    """
    headers: dict[str, str] = {"Cache-Control": cache_control}
    encoding = None
    if compress:
        headers["Vary"] = "Accept-Encoding"
        if len(body) >= _GZIP_MIN_BYTES and request.accept_encodings["gzip"] > 0:
            encoding = "gzip"
            etag = etag[:-1] + '-gzip"'
    headers["ETag"] = etag
    if last_modified is not None:
        headers["Last-Modified"] = http_date(last_modified)
    if request.if_none_match:
        if weak_etag_matches(etag):
            return Response(status=304, headers=headers)
    elif (
        last_modified is not None
        and request.if_modified_since is not None
        and last_modified.replace(microsecond=0) <= request.if_modified_since
    ):
        return Response(status=304, headers=headers)
    if encoding is not None:
        body = _gzipped(etag, body)
        headers["Content-Encoding"] = encoding
    return Response(body, status=200, headers=headers, content_type=content_type)
