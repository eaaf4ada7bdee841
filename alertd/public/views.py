"""Routes anyone may read: the alert page, photos at their stable URLs and a health check."""

from __future__ import annotations

import re

from flask import Blueprint, Flask, Response, abort, jsonify, request
from sqlalchemy import text
from werkzeug.routing import BaseConverter

from alertd.alerts.photos import is_published, photo_by_name
from alertd.public.page import render_alert_page
from alertd.web.auth import ctx
from alertd.web.http_cache import public

bp = Blueprint("public", __name__)

_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")


class PublicIdConverter(BaseConverter):
    """Ten characters of the public-id alphabet with at least one letter, so that a path of
    digits only, such as the console's ``/alerts/<int:id>``, can never match it."""

    regex = r"(?=[0-9A-Z]*[A-Z])[A-Z2-9]{10}"


@bp.record_once
def _register_converter(state: object) -> None:
    app: Flask = state.app  # type: ignore[attr-defined]
    app.url_map.converters.setdefault("public_id", PublicIdConverter)


@bp.get("/a/<public_id:public_id>")
@bp.get("/alerts/<public_id:public_id>")
@public
def alert_page(public_id: str) -> Response:
    # Two addresses, one page: /alerts/ as the issue names it, and /a/ because every character
    # counts in a text message. Neither can match the console's /alerts/<int:id>.
    chosen = request.args.get("lang", "")
    if chosen and not _LANGUAGE_TAG.fullmatch(chosen):
        chosen = ""
    return render_alert_page(public_id, chosen)


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
