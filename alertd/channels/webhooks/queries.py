"""Reading endpoints, their delivery log and their dead letters, for the console, API and CLI.
Secrets never leave through here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alertd.actor import Actor
from alertd.channels.models import FAILED, UNKNOWN, Delivery
from alertd.channels.webhooks.models import Attempt, Endpoint
from alertd.channels.webhooks.services import CHANNEL, PERMISSION
from alertd.db import utcnow
from alertd.errors import Forbidden, NotFound

LOG_PAGE = 200


def require_reader(by: Actor) -> None:
    if not by.can(PERMISSION):
        raise Forbidden("Only operators see webhook endpoints.")


def list_endpoints(session: Session) -> list[Endpoint]:
    return list(session.execute(select(Endpoint).order_by(Endpoint.id)).scalars())


def get_endpoint(session: Session, endpoint_id: int) -> Endpoint:
    endpoint = session.get(Endpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(f"No webhook endpoint {endpoint_id}.")
    return endpoint


def circuit_state(endpoint: Endpoint) -> str:
    if endpoint.circuit_open_until and endpoint.circuit_open_until > utcnow():
        return "open"
    return "closed" if endpoint.consecutive_failures == 0 else "failing"


def endpoint_json(endpoint: Endpoint, failed: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "events": endpoint.events,
        "language": endpoint.language,
        "format": endpoint.format,
        "enabled": endpoint.enabled,
        "accepts_tests": endpoint.accepts_tests,
        "disabled_reason": endpoint.disabled_reason or None,
        "chat_id": endpoint.chat_id or None,
        "circuit": circuit_state(endpoint),
        "circuit_open_until": (
            endpoint.circuit_open_until.isoformat() if endpoint.circuit_open_until else None
        ),
        "consecutive_failures": endpoint.consecutive_failures,
        "rotating": bool(
            endpoint.previous_secret_until and endpoint.previous_secret_until > utcnow()
        ),
        "created_at": endpoint.created_at.isoformat(),
    }
    if failed is not None:
        data["failed_deliveries"] = failed
    return data


def failed_counts(session: Session) -> dict[int, int]:
    rows = session.execute(
        select(Delivery.recipient, func.count())
        .where(Delivery.channel == CHANNEL, Delivery.state.in_((FAILED, UNKNOWN)))
        .group_by(Delivery.recipient)
    ).all()
    return {int(recipient): n for recipient, n in rows}


def attempts(
    session: Session, *, endpoint_id: int | None = None, alert_id: int | None = None
) -> list[Attempt]:
    query = select(Attempt).order_by(Attempt.id.desc()).limit(LOG_PAGE)
    if endpoint_id is not None:
        query = query.where(Attempt.endpoint_id == endpoint_id)
    if alert_id is not None:
        query = query.where(Attempt.alert_id == alert_id)
    return list(session.execute(query).scalars())


def attempt_count(session: Session, alert_id: int) -> int:
    """Requests made to partners about an alert, every retry included."""
    return int(
        session.execute(
            select(func.count()).select_from(Attempt).where(Attempt.alert_id == alert_id)
        ).scalar_one()
    )


def attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "id": attempt.id,
        "delivery_id": attempt.delivery_id,
        "endpoint_id": attempt.endpoint_id,
        "alert_id": attempt.alert_id,
        "at": attempt.at.isoformat(),
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "response_head": attempt.response_head,
        "outcome": attempt.outcome,
    }


def dead_letters(session: Session, endpoint_id: int) -> list[Delivery]:
    return list(
        session.execute(
            select(Delivery)
            .where(
                Delivery.channel == CHANNEL,
                Delivery.state.in_((FAILED, UNKNOWN)),
                Delivery.recipient == str(endpoint_id),
            )
            .order_by(Delivery.id)
            .limit(LOG_PAGE)
        ).scalars()
    )
