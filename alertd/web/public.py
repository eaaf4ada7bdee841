"""Routes anyone may read: photos at their stable URLs and a health check."""

from __future__ import annotations

from flask import Blueprint, Response, abort, g, jsonify, request
from sqlalchemy import text

from alertd.alerts.photos import is_published, photo_by_name
from alertd.web.auth import ctx
from alertd.web.http_cache import public

bp = Blueprint("public", __name__)


@bp.get("/photos/<name>")
@public
def photo(name: str) -> Response:
    with ctx().db.session() as session:
        found = photo_by_name(session, name)
        if found is None:
            abort(404)
        published = is_published(session, found)
        # Before publication only signed-in staff (reviewing the draft) see it; to anyone else
        # it does not exist, and no shared cache may keep it.
        if not published and g.get("actor") is None:
            abort(404)
        # The name is the content's hash, so the bytes at this URL never change.
        cache = "public, max-age=31536000, immutable" if published else "private, no-store"
        etag = f'"{found.sha256}"'
        if etag in request.headers.get("If-None-Match", ""):
            return Response(status=304, headers={"ETag": etag, "Cache-Control": cache})
        return Response(
            found.data,
            mimetype=found.mime_type,
            headers={"ETag": etag, "Cache-Control": cache},
        )


@bp.get("/healthz")
def health() -> Response:
    with ctx().db.session() as session:
        session.execute(text("SELECT 1"))
    return jsonify(status="ok")
