"""``/api/v1/subscribers``: SMS subscribers for operators' and admins' tokens. The same service
functions as the console and the CLI."""

from __future__ import annotations

from flask import Response, jsonify, request

from alertd.channels.sms import queries, services
from alertd.db import MAX_ROW_ID
from alertd.errors import Invalid
from alertd.web.auth import ctx, current_actor, token_required
from alertd.web.json_api import json_api_blueprint
from alertd.web.jsonbody import json_object

bp = json_api_blueprint("sms_api", __name__)


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise Invalid(f"{name} must be a whole number from {low} to {high}.", fields={name: raw})
    return int(raw)


@bp.get("/subscribers")
@token_required
def list_subscribers() -> Response:
    queries.require_reader(current_actor())
    phone = request.args.get("phone", "").strip()[:20]
    limit = _int_arg("limit", queries.PAGE, 1, 1000)
    after = _int_arg("after", 0, 0, MAX_ROW_ID)
    with ctx().db.session() as session:
        rows = queries.list_subscribers(session, phone=phone, after=after, limit=limit)
        areas = queries.areas_of(session, [s.id for s in rows])
        return jsonify(
            subscribers=[queries.subscriber_json(s, areas[s.id]) for s in rows],
            next_after=rows[-1].id if len(rows) == limit else None,
        )


@bp.post("/subscribers")
@token_required
def add_subscriber() -> tuple[Response, int]:
    sub = services.add_subscriber(ctx(), json_object(), by=current_actor())
    return _subscriber(sub.id, 201)


def _subscriber(subscriber_id: int, status: int = 200) -> tuple[Response, int]:
    with ctx().db.session() as session:
        sub = queries.get_subscriber(session, subscriber_id)
        areas = queries.areas_of(session, [sub.id])[sub.id]
        return jsonify(queries.subscriber_json(sub, areas)), status


@bp.get("/subscribers/<int:subscriber_id>")
@token_required
def get_subscriber(subscriber_id: int) -> tuple[Response, int]:
    queries.require_reader(current_actor())
    return _subscriber(subscriber_id)


@bp.delete("/subscribers/<int:subscriber_id>")
@token_required
def delete_subscriber(subscriber_id: int) -> tuple[Response, int]:
    services.delete_subscriber(ctx(), subscriber_id, by=current_actor())
    return jsonify(deleted=subscriber_id), 200
