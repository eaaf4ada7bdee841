"""JSON API v1 for computer-aided dispatch systems. The same service functions as the console,
so the same rules; every error is a JSON body with a 4xx status, never a 500."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from flask import Response, jsonify, request, url_for
from sqlalchemy.orm import Session

from alertd.alerts import services
from alertd.alerts.criteria import RuleSet
from alertd.alerts.models import Alert, Version
from alertd.alerts.openapi import openapi_document
from alertd.alerts.progress import alert_progress
from alertd.channels.dispatch import delivery_counts
from alertd.errors import Invalid, NotFound
from alertd.idempotency import services as idempotency
from alertd.web.auth import ctx, current_actor, token_required
from alertd.web.json_api import json_api_blueprint
from alertd.web.jsonbody import JSON, MERGE_PATCH, json_object

bp = json_api_blueprint("api", __name__)


def _body() -> dict[str, Any]:
    return json_object()


def _photo(body: dict[str, Any]) -> bytes | None:
    """The photo travels as base64 in ``photo`` (JSON has no bytes)."""
    encoded = body.pop("photo", None)
    if encoded is None:
        return None
    if not isinstance(encoded, str):
        raise Invalid("photo must be a base64 string.", fields={"photo": "must be base64"})
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid("photo is not valid base64.", fields={"photo": "invalid base64"}) from None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# Content fields the OpenAPI document types as date-time: empty means absent, sent as null.
_CONTENT_TIMES = ("last_seen_at", "expires_at")


def content_json(content: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if k in _CONTENT_TIMES and v == "" else v) for k, v in content.items()}


def version_json(version: Version) -> dict[str, Any]:
    return {
        "seq": version.seq,
        "identifier": version.identifier,
        "msg_type": version.msg_type,
        "kind": version.kind,
        "status": version.status,
        "sent_at": _iso(version.sent_at),
        "expires_at": _iso(version.expires_at),
        "references": [{"sender": s, "identifier": i, "sent": t} for s, i, t in version.references],
    }


def alert_json(session: Session, alert: Alert, *, full: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": alert.id,
        "public_id": alert.public_id,
        "state": alert.state,
        "status": alert.status,
        "jurisdiction": alert.jurisdiction,
        "case_reference": alert.case_reference,
        "expires_at": _iso(alert.expires_at),
        "created_at": _iso(alert.created_at),
        "submitted_at": _iso(alert.submitted_at),
        "approved_at": _iso(alert.approved_at),
        "ended_at": _iso(alert.ended_at),
        "url": url_for("api.get_alert", alert_id=alert.id, _external=True),
    }
    if full:
        data["content"] = content_json(alert.content)
        data["rejection_reason"] = alert.rejection_reason or None
        # The API's own URL: the public one answers only once a version carrying it went out.
        data["photo_url"] = (
            url_for("api.alert_photo", alert_id=alert.id, _external=True) if alert.photo else None
        )
        data["versions"] = [version_json(v) for v in alert.versions]
        proposal = alert.pending_proposal
        data["pending_update"] = (
            None
            if proposal is None
            else {
                "id": proposal.id,
                "content": content_json(proposal.content),
                "proposed_at": _iso(proposal.proposed_at),
            }
        )
        max_age = ctx().settings.PROGRESS_CACHE_SECONDS
        data["deliveries"] = delivery_counts(session, alert.id, max_age)
        data["progress"] = [p.as_json() for p in alert_progress(session, alert.versions, max_age)]
    return data


ApiView = Callable[..., tuple[Response, int]]
REPLAYED_HEADER = "Idempotent-Replayed"


def idempotent(view: ApiView) -> ApiView:
    """With an ``Idempotency-Key`` header, the action runs once per key and token user; a
    repeat (with the same method, path and body) gets the first answer, marked replayed.
    A refusal changes nothing and is not kept, so the key may be tried again."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> tuple[Response, int]:
        key = request.headers.get("Idempotency-Key")
        user_id = current_actor().user_id
        if key is None or user_id is None:
            return view(*args, **kwargs)
        body = hashlib.sha256(request.get_data()).hexdigest()
        stored = idempotency.begin(ctx(), user_id, key, f"{request.method} {request.path} {body}")
        if stored is not None:
            response = jsonify(stored.response.get("body"))
            response.headers[REPLAYED_HEADER] = "true"
            if stored.response.get("location"):
                response.headers["Location"] = stored.response["location"]
            return response, stored.status
        try:
            response, status = view(*args, **kwargs)
        except BaseException:
            idempotency.forget(ctx(), user_id, key)
            raise
        idempotency.finish(
            ctx(),
            user_id,
            key,
            status,
            {"body": response.get_json(), "location": response.headers.get("Location")},
        )
        return response, status

    return wrapped


def _answer(alert_id: int, status: int = 200) -> tuple[Response, int]:
    with ctx().db.session() as session:
        alert = services.get_alert(session, alert_id)
        return jsonify(alert_json(session, alert)), status


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document(ctx().channels.channels()))


@bp.get("/alerts")
@token_required
def list_alerts() -> Response:
    state, limit, before = services.parse_page_args(request.args)
    with ctx().db.session() as session:
        page = services.list_alerts(session, state=state, limit=limit, before=before)
        cursor = None if page.next_before is None else str(page.next_before)
        return jsonify(
            alerts=[alert_json(session, a, full=False) for a in page.alerts],
            next_cursor=cursor,
            next=None
            if cursor is None
            else url_for("api.list_alerts", state=state, limit=limit, cursor=cursor),
        )


@bp.post("/alerts")
@token_required
@idempotent
def create_alert() -> tuple[Response, int]:
    body = _body()
    photo = _photo(body)
    alert = services.create_alert(ctx(), body, by=current_actor(), photo=photo)
    response, status = _answer(alert.id, 201)
    response.headers["Location"] = url_for("api.get_alert", alert_id=alert.id)
    return response, status


@bp.get("/alerts/<int:alert_id>")
@token_required
def get_alert(alert_id: int) -> tuple[Response, int]:
    return _answer(alert_id)


@bp.get("/alerts/<int:alert_id>/photo")
@token_required
def alert_photo(alert_id: int) -> Response:
    """The alert's current photo, published or not; never kept by a shared cache."""
    with ctx().db.session() as session:
        photo = services.get_alert(session, alert_id).photo
        if photo is None:
            raise NotFound("This alert has no photo.")
        return Response(
            photo.data, mimetype=photo.mime_type, headers={"Cache-Control": "private, no-store"}
        )


@bp.put("/alerts/<int:alert_id>")
@token_required
@idempotent
def edit_alert(alert_id: int) -> tuple[Response, int]:
    body = _body()
    photo = _photo(body)
    services.edit_alert(ctx(), alert_id, body, by=current_actor(), photo=photo)
    return _answer(alert_id)


def _optional_body() -> dict[str, Any]:
    """The body of an action, where one is optional: absent means {}, malformed is a 400."""
    return json_object(optional=True)


def _reason() -> str:
    body = _optional_body()
    reason = body.get("reason", body.get("note", ""))
    if not isinstance(reason, str):
        raise Invalid("reason must be text.", fields={"reason": "must be text"})
    return reason


def _approve(alert_id: int) -> object:
    """Approve the alert; with a ``proposal_id``, approve that pending update instead (an
    update is "approved like an alert"). Without one, approving an active alert changes
    nothing, so a repeated click can never publish an update nobody reviewed."""
    proposal_id = _optional_body().get("proposal_id")
    if proposal_id is not None:
        return services.approve_update(ctx(), alert_id, by=current_actor(), proposal_id=proposal_id)
    return services.approve_alert(ctx(), alert_id, by=current_actor())


def _action(name: str, call: Callable[[int], object]) -> None:
    def view(alert_id: int) -> tuple[Response, int]:
        call(alert_id)
        return _answer(alert_id)

    view.__name__ = name
    bp.post(f"/alerts/<int:alert_id>/{name.replace('_', '/')}")(token_required(idempotent(view)))


_action("submit", lambda i: services.submit_alert(ctx(), i, by=current_actor()))
# The console's discard, for the draft's own officer; the service refuses and audits the rest.
_action("discard", lambda i: services.discard_draft(ctx(), i, by=current_actor()))
_action("approve", lambda i: _approve(i))
_action("reject", lambda i: services.reject_alert(ctx(), i, _reason(), by=current_actor()))
_action("cancel", lambda i: services.cancel_alert(ctx(), i, _reason(), by=current_actor()))
_action("resolve", lambda i: services.resolve_alert(ctx(), i, _reason(), by=current_actor()))
_action(
    "update_approve",
    lambda i: services.approve_update(
        ctx(), i, by=current_actor(), proposal_id=_optional_body().get("proposal_id")
    ),
)
_action("update_reject", lambda i: services.reject_update(ctx(), i, _reason(), by=current_actor()))


@bp.post("/alerts/<int:alert_id>/update")
@token_required
@idempotent
def propose_update(alert_id: int) -> tuple[Response, int]:
    # A full body replaces the content; a merge patch (RFC 7396) changes only what it names.
    body = json_object(types=(JSON, MERGE_PATCH))
    photo = _photo(body)
    patch = request.mimetype == MERGE_PATCH
    services.propose_update(
        ctx(), alert_id, body, by=current_actor(), photo=photo, merge_patch=patch
    )
    return _answer(alert_id, 202)


@bp.get("/jurisdictions")
@token_required
def jurisdictions() -> Response:
    """Each criteria rule set a body's ``jurisdiction`` may name, with what it asks for."""
    context = ctx()
    return jsonify(
        default=context.settings.DEFAULT_JURISDICTION,
        jurisdictions=[rule_set_json(r) for _, r in sorted(context.rule_sets.items())],
    )


def rule_set_json(rule_set: RuleSet) -> dict[str, Any]:
    return {
        "name": rule_set.name,
        "title": rule_set.title,
        "public_name": rule_set.public_name,
        "source": rule_set.source,
        "criteria": [
            {"key": c.key, "label": c.label, "required": c.required} for c in rule_set.criteria
        ],
        "rules": {
            "max_age": rule_set.max_age,
            "requires_case_reference": rule_set.requires_case_reference,
        },
    }


@bp.post("/alerts/<int:alert_id>/extend")
@token_required
@idempotent
def extend_alert(alert_id: int) -> tuple[Response, int]:
    body = _optional_body()
    services.extend_alert(
        ctx(),
        alert_id,
        by=current_actor(),
        minutes=body.get("minutes"),
        until=body.get("expires_at"),
    )
    return _answer(alert_id)
