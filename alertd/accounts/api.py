"""JSON API for credentials: one's own tokens, revoking tokens, deactivating users. The same
service functions as the console and the command line."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from alertd.accounts.models import ApiToken
from alertd.accounts.services import create_token, list_tokens, revoke_token, set_active
from alertd.errors import Invalid
from alertd.web.auth import ctx, current_actor, token_required
from alertd.web.json_api import json_api_blueprint
from alertd.web.jsonbody import json_object

bp = json_api_blueprint("accounts_api", __name__)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def token_json(row: ApiToken) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "owner": row.user.username,
        "created_at": _iso(row.created_at),
        "last_used_at": _iso(row.last_used_at),
        "revoked_at": _iso(row.revoked_at),
    }


@bp.get("/tokens")
@token_required
def tokens() -> Response:
    with ctx().db.session() as db:
        return jsonify(tokens=[token_json(t) for t in list_tokens(db, by=current_actor())])


@bp.post("/tokens")
@token_required
def create() -> tuple[Response, int]:
    """A new token for the caller (nobody mints one for someone else). Shown once."""
    name = json_object(optional=True).get("name", "api")
    if not isinstance(name, str):
        raise Invalid("name must be text.", fields={"name": "must be text"})
    actor = current_actor()
    with ctx().db.transaction() as db:
        new = create_token(db, actor.username, name, by=actor)
        body = token_json(new.record) | {"token": new.token}
    return jsonify(body), 201


@bp.post("/tokens/<int:token_id>/revoke")
@token_required
def revoke(token_id: int) -> Response:
    with ctx().db.transaction() as db:
        return jsonify(token_json(revoke_token(db, token_id, by=current_actor())))


@bp.post("/users/<name>/<any(deactivate, activate):change>")
@token_required
def activate(name: str, change: str) -> Response:
    with ctx().db.transaction() as db:
        user = set_active(db, name, change == "activate", by=current_actor())
        return jsonify(username=user.username, role=user.role, active=user.active)
