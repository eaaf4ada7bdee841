"""``/api/v1/endpoints``: webhook endpoints, their delivery log and replays, for operators'
tokens. The same service functions as the console and the CLI."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from alertd.channels.webhooks import queries, services
from alertd.errors import Invalid
from alertd.web.auth import ctx, current_actor, token_required
from alertd.web.json_api import json_api_blueprint
from alertd.web.jsonbody import json_object

bp = json_api_blueprint("webhooks_api", __name__)


def _body() -> dict[str, Any]:
    return json_object(optional=True)


def _endpoint(endpoint_id: int, status: int = 200, **extra: Any) -> tuple[Response, int]:
    with ctx().db.session() as session:
        endpoint = queries.get_endpoint(session, endpoint_id)
        failed = queries.failed_counts(session).get(endpoint_id, 0)
        return jsonify({**queries.endpoint_json(endpoint, failed), **extra}), status


@bp.get("/endpoints")
@token_required
def list_endpoints() -> Response:
    queries.require_reader(current_actor())
    with ctx().db.session() as session:
        failed = queries.failed_counts(session)
        rows = queries.list_endpoints(session)
        return jsonify(endpoints=[queries.endpoint_json(e, failed.get(e.id, 0)) for e in rows])


@bp.post("/endpoints")
@token_required
def add_endpoint() -> tuple[Response, int]:
    new = services.add_endpoint(ctx(), _body(), by=current_actor())
    # The only time the secret is shown.
    return _endpoint(new.endpoint.id, 201, secret=new.secret)


@bp.get("/endpoints/<int:endpoint_id>")
@token_required
def get_endpoint(endpoint_id: int) -> tuple[Response, int]:
    queries.require_reader(current_actor())
    return _endpoint(endpoint_id)


@bp.post("/endpoints/<int:endpoint_id>/disable")
@token_required
def disable(endpoint_id: int) -> tuple[Response, int]:
    reason = _body().get("reason", "")
    if not isinstance(reason, str):
        raise Invalid("reason must be text.", fields={"reason": "must be text"})
    services.set_enabled(ctx(), endpoint_id, False, by=current_actor(), reason=reason[:500])
    return _endpoint(endpoint_id)


@bp.post("/endpoints/<int:endpoint_id>/enable")
@token_required
def enable(endpoint_id: int) -> tuple[Response, int]:
    services.set_enabled(ctx(), endpoint_id, True, by=current_actor())
    return _endpoint(endpoint_id)


@bp.post("/endpoints/<int:endpoint_id>/rotate-secret")
@token_required
def rotate(endpoint_id: int) -> tuple[Response, int]:
    new = services.rotate_secret(ctx(), endpoint_id, by=current_actor())
    return _endpoint(endpoint_id, secret=new.secret)


@bp.get("/endpoints/<int:endpoint_id>/attempts")
@token_required
def endpoint_attempts(endpoint_id: int) -> Response:
    queries.require_reader(current_actor())
    with ctx().db.session() as session:
        queries.get_endpoint(session, endpoint_id)
        rows = queries.attempts(session, endpoint_id=endpoint_id)
        return jsonify(attempts=[queries.attempt_json(a) for a in rows])


@bp.get("/alerts/<int:alert_id>/webhook-attempts")
@token_required
def alert_attempts(alert_id: int) -> Response:
    queries.require_reader(current_actor())
    with ctx().db.session() as session:
        rows = queries.attempts(session, alert_id=alert_id)
        return jsonify(attempts=[queries.attempt_json(a) for a in rows])


@bp.post("/endpoints/<int:endpoint_id>/replay")
@token_required
def replay_endpoint(endpoint_id: int) -> Response:
    count = services.replay(ctx(), by=current_actor(), endpoint_id=endpoint_id)
    return jsonify(replayed=count)


@bp.post("/webhook-deliveries/<int:delivery_id>/replay")
@token_required
def replay_delivery(delivery_id: int) -> Response:
    count = services.replay(ctx(), by=current_actor(), delivery_id=delivery_id)
    return jsonify(replayed=count)
