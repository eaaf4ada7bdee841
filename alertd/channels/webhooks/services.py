"""Every write to webhook endpoints: add, enable or disable, rotate the secret, replay dead
letters. The console, the API and the CLI call these; each is one transaction with its audit
entry, and a refusal leaves everything as it was."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from alertd.actor import Actor
from alertd.audit.recipients import batch_detail
from alertd.audit.services import record
from alertd.channels.dispatch import enqueue_open_deliveries
from alertd.channels.dispatch.recipients import hashes_of
from alertd.channels.models import ERASED_PREFIX, FAILED, PENDING, UNKNOWN, Delivery
from alertd.channels.webhooks.models import EVENTS, FORMATS, TOKEN_FORMATS, Endpoint
from alertd.channels.webhooks.secrets import new_secret, seal
from alertd.channels.webhooks.ssrf import Resolver, Target, UnsafeUrl, check_url, parse_networks
from alertd.context import Context
from alertd.db import utcnow
from alertd.errors import Conflict, Forbidden, Invalid, NotFound
from alertd.settings import Settings

CHANNEL = "webhook"
LANGUAGES = ("en", "es", "fr")
# How long the previous secret keeps signing after a rotation: partners deploy the new one.
ROTATION_OVERLAP = timedelta(hours=24)
PERMISSION = "channels.manage"


@dataclass(frozen=True)
class NewEndpoint:
    endpoint: Endpoint
    # Shown once, in the answer to the request that created or rotated it.
    secret: str


def check_endpoint_url(settings: Settings, url: str, resolver: Resolver | None = None) -> Target:
    """The SSRF check, with this instance's allow-list; run at save time and before every
    request."""
    return check_url(
        url,
        allow=parse_networks(settings.WEBHOOK_ALLOW),
        https_only=settings.WEBHOOK_HTTPS_ONLY,
        resolver=resolver,
    )


def _require(by: Actor, action: str, target: int | None = None) -> None:
    if not by.can(PERMISSION):
        raise Forbidden(
            "Only operators manage webhook endpoints.",
            audit={
                "actor": by,
                "action": action,
                "outcome": "refused",
                "target_type": "webhook_endpoint",
                "target_id": target,
                "detail": {"reason": "role"},
            },
        )


def _text(data: Mapping[str, Any], name: str, default: str, limit: int) -> str:
    value = data.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, str):
        raise Invalid(f"{name} must be text.", fields={name: "must be text"})
    if len(value) > limit:
        raise Invalid(f"{name} is too long.", fields={name: f"at most {limit} characters"})
    return value.strip()


def _flag(data: Mapping[str, Any], name: str, default: bool) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise Invalid(f"{name} must be true or false.", fields={name: "must be true or false"})
    return value


def parse_endpoint(
    settings: Settings, data: Mapping[str, Any], resolver: Resolver | None = None
) -> dict[str, Any]:
    """Checked values for a new endpoint, or Invalid naming every bad field."""
    errors: dict[str, str] = {}
    unknown = set(data) - {
        "url",
        "description",
        "events",
        "language",
        "format",
        "enabled",
        "accepts_tests",
        "token",
        "chat_id",
    }
    if unknown:
        errors.update({name: "unknown field" for name in sorted(unknown)})
    url = _text(data, "url", "", 2000)
    fmt = _text(data, "format", "standard", 20)
    if fmt not in FORMATS:
        errors["format"] = f"one of {', '.join(FORMATS)}"
    language = _text(data, "language", "en", 10)
    if language not in LANGUAGES:
        errors["language"] = f"one of {', '.join(LANGUAGES)}"
    events = data.get("events", list(EVENTS))
    if (
        not isinstance(events, list)
        or not events
        or not all(isinstance(e, str) and e in EVENTS for e in events)
        or len(set(events)) != len(events)
    ):
        errors["events"] = f"a non-empty list of {', '.join(EVENTS)}"
        events = []
    token = _text(data, "token", "", 500)
    chat_id = _text(data, "chat_id", "", 100)
    if fmt in TOKEN_FORMATS and not token:
        errors["token"] = f"a {fmt} endpoint needs its access token"
    if fmt == "telegram" and not chat_id:
        errors["chat_id"] = "a Telegram endpoint needs the channel's chat id"
    if not url:
        errors["url"] = "required"
    else:
        try:
            check_endpoint_url(settings, url, resolver)
        except UnsafeUrl as exc:
            errors["url"] = str(exc)
    if errors:
        first = errors.get("url") or next(iter(errors.values()))
        raise Invalid(f"The endpoint was not saved: {first}", fields=errors)
    return {
        "url": url,
        "description": _text(data, "description", "", 500),
        "events": [e for e in EVENTS if e in events],
        "language": language,
        "format": fmt,
        "enabled": _flag(data, "enabled", True),
        "accepts_tests": _flag(data, "accepts_tests", False),
        "token": token,
        "chat_id": chat_id,
    }


def add_endpoint(
    ctx: Context, data: Mapping[str, Any], *, by: Actor, resolver: Resolver | None = None
) -> NewEndpoint:
    _require(by, "webhook.endpoint.add")
    values = parse_endpoint(ctx.settings, data, resolver)
    token = values.pop("token")
    secret = new_secret()
    with ctx.db.transaction() as session:
        endpoint = Endpoint(
            **values,
            secret_enc=seal(ctx.settings, secret),
            token_enc=seal(ctx.settings, token) if token else None,
            created_by=by.username,
            created_at=utcnow(),
            consecutive_failures=0,
            disabled_reason="",
        )
        session.add(endpoint)
        session.flush()
        # Neither the secret, the token nor the URL's path goes into the trail, which is kept
        # forever: chat webhook URLs (Slack, Discord, Teams) carry their credential in the path.
        _audit(session, by, "webhook.endpoint.add", endpoint, host=_host(endpoint.url))
    return NewEndpoint(endpoint, secret)


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}"


def _audit(session: Session, by: Actor, action: str, endpoint: Endpoint, **detail: Any) -> None:
    record(
        session,
        actor=by,
        action=action,
        target_type="webhook_endpoint",
        target_id=endpoint.id,
        detail={"format": endpoint.format, **detail},
    )


def _load(session: Session, endpoint_id: int) -> Endpoint:
    endpoint = session.get(Endpoint, endpoint_id, with_for_update=True)
    if endpoint is None:
        raise NotFound(f"No webhook endpoint {endpoint_id}.")
    return endpoint


def set_enabled(
    ctx: Context, endpoint_id: int, enabled: bool, *, by: Actor, reason: str = ""
) -> Endpoint:
    action = "webhook.endpoint.enable" if enabled else "webhook.endpoint.disable"
    _require(by, action, endpoint_id)
    with ctx.db.transaction() as session:
        endpoint = _load(session, endpoint_id)
        if enabled:
            check = _safe(ctx.settings, endpoint.url)
            if check:
                raise Invalid(f"The endpoint's URL is refused: {check}", fields={"url": check})
        endpoint.enabled = enabled
        endpoint.disabled_reason = "" if enabled else (reason or f"disabled by {by.username}")
        endpoint.consecutive_failures, endpoint.circuit_open_until = 0, None
        _audit(session, by, action, endpoint, reason=reason)
    return endpoint


def _safe(settings: Settings, url: str) -> str:
    try:
        check_endpoint_url(settings, url)
    except UnsafeUrl as exc:
        return str(exc)
    return ""


def rotate_secret(ctx: Context, endpoint_id: int, *, by: Actor) -> NewEndpoint:
    """A new secret signs from now on; the previous one also signs for ROTATION_OVERLAP."""
    _require(by, "webhook.endpoint.rotate", endpoint_id)
    secret = new_secret()
    with ctx.db.transaction() as session:
        endpoint = _load(session, endpoint_id)
        if endpoint.format != "standard":
            raise Conflict("Only standard webhooks are signed; this endpoint has no secret to use.")
        endpoint.previous_secret_enc = endpoint.secret_enc
        endpoint.previous_secret_until = utcnow() + ROTATION_OVERLAP
        endpoint.secret_enc = seal(ctx.settings, secret)
        _audit(session, by, "webhook.endpoint.rotate", endpoint)
    return NewEndpoint(endpoint, secret)


def replay(
    ctx: Context,
    *,
    by: Actor,
    delivery_id: int | None = None,
    endpoint_id: int | None = None,
) -> int:
    """Send failed deliveries again (and unknown ones, which an operator has checked): one, or
    all of an endpoint's. Each keeps its id, so a standard webhook keeps its ``webhook-id`` and
    a post its idempotency key. Returns how many."""
    _require(by, "webhook.replay", endpoint_id)
    if (delivery_id is None) == (endpoint_id is None):
        raise Invalid("Name one delivery or one endpoint to replay.")
    query = select(Delivery).where(
        Delivery.channel == CHANNEL,
        Delivery.state.in_((FAILED, UNKNOWN)),
        # A purged delivery no longer names its endpoint.
        Delivery.recipient.not_like(f"{ERASED_PREFIX}%"),
    )
    if delivery_id is not None:
        query = query.where(Delivery.id == delivery_id)
    else:
        query = query.where(Delivery.recipient == str(endpoint_id))
    with ctx.db.transaction() as session:
        rows = list(session.execute(query.with_for_update()).scalars())
        if delivery_id is not None and not rows:
            raise Conflict(f"Delivery {delivery_id} is not a failed or unknown webhook delivery.")
        if not rows:
            return 0
        ids = [d.id for d in rows]
        hashes = hashes_of(ctx.settings, rows)
        for row in rows:  # Rows planned before they carried their hash get it now.
            row.recipient_hash = hashes[row.id]
        session.flush()
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids))
            .values(
                state=PENDING,
                attempts=0,
                next_attempt_at=utcnow(),
                enqueued_at=None,
                finished_at=None,
                lease_until=None,
            )
        )
        endpoints = {int(d.recipient) for d in rows}
        session.execute(
            update(Endpoint)
            .where(Endpoint.id.in_(endpoints))
            .values(consecutive_failures=0, circuit_open_until=None)
        )
        record(
            session,
            actor=by,
            action="webhook.replay",
            target_type="webhook_endpoint" if endpoint_id else "delivery",
            target_id=endpoint_id or delivery_id,
            # Where each delivery now stands, which `alertd audit verify` follows.
            detail=batch_detail([(i, hashes[i], PENDING) for i in ids]),
        )
        for dispatch_id in sorted({d.dispatch_id for d in rows}):
            enqueue_open_deliveries(ctx, session, dispatch_id)
        return len(ids)
