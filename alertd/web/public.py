"""Routes anyone may read: photos at their stable URLs and a health check."""

from __future__ import annotations

from flask import Blueprint, Response, abort, jsonify, request
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
        # A draft's, submitted alert's or pending update's photo does not exist for the public
        # until a version carrying it goes out; staff see it on the alert's console page.
        if not is_published(session, found):
            abort(404)
        etag = f'"{found.sha256}"'
        # The name is the content's hash, so the bytes at this URL never change.
        headers = {"ETag": etag, "Cache-Control": "public, max-age=31536000, immutable"}
        if etag in request.headers.get("If-None-Match", ""):
            return Response(status=304, headers=headers)
        return Response(found.data, mimetype=found.mime_type, headers=headers)


@bp.get("/healthz")
def health() -> Response:
    with ctx().db.session() as session:
        session.execute(text("SELECT 1"))
    return jsonify(status="ok")
