"""What every alert action shares: refusals that are audited after the rollback, role and
state checks, loading with a row lock, parsing the body, and audit entries."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alertd.accounts.models import ApiToken
from alertd.actor import Actor
from alertd.alerts.content import ContentErrors, expires_of, parse_content
from alertd.alerts.models import (
    Alert,
)
from alertd.alerts.photos import store_photo
from alertd.audit.models import AuditEntry
from alertd.audit.services import record
from alertd.context import Context
from alertd.db import MAX_ROW_ID, utcnow
from alertd.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError


def _refusal(
    error: type[ServiceError],
    message: str,
    actor: Actor,
    action: str,
    alert: Alert | None,
    fields: dict[str, str] | None = None,
) -> ServiceError:
    return error(
        message,
        fields=fields,
        audit={
            "actor": actor,
            "action": action,
            "outcome": "refused",
            "target_type": "alert",
            "target_id": alert.id if alert else None,
            "detail": {
                "reason": message,
                "state": alert.state if alert else None,
                **({"fields": fields} if fields else {}),
            },
        },
    )


def _require_state(
    alert: Alert, state: str, by: Actor, action: str, what: str, hint: str = ""
) -> None:
    if alert.state != state:
        message = f"Only {what}; this alert is {alert.state}. {hint}".strip()
        raise _refusal(Conflict, message, by, action, alert)


def _require(actor: Actor, permission: str, action: str, alert: Alert | None) -> None:
    if not actor.can(permission):
        verb = action.split(".", 1)[1].replace("_", " ")
        raise _refusal(
            Forbidden, f"The {actor.role} role may not {verb} alerts.", actor, action, alert
        )


# The largest id the database stores; a larger one in a URL is simply not an alert.
MAX_ID = MAX_ROW_ID


def _load(session: Session, alert_id: int, *, lock: bool = True) -> Alert:
    if not 0 < alert_id <= MAX_ID:
        raise NotFound(f"No alert {alert_id}.")
    query = select(Alert).where(Alert.id == alert_id)
    if lock:
        query = query.with_for_update()
    alert = session.execute(query).scalar_one_or_none()
    if alert is None:
        raise NotFound(f"No alert {alert_id}.")
    return alert


def _parse(
    ctx: Context, raw: Any, actor: Actor, action: str, alert: Alert | None
) -> dict[str, Any]:
    settings = ctx.settings
    try:
        return parse_content(
            raw,
            rule_sets=ctx.rule_sets,
            default_jurisdiction=settings.DEFAULT_JURISDICTION,
            default_expires=utcnow().replace(microsecond=0)
            + timedelta(minutes=settings.DEFAULT_ALERT_MINUTES),
            max_hours=settings.MAX_ALERT_HOURS,
            phone_region=settings.SMS_DEFAULT_REGION,
        )
    except ContentErrors as errors:
        raise _refusal(
            Invalid, "The alert has errors; nothing was saved.", actor, action, alert, errors.fields
        ) from None


def _audit(
    session: Session,
    actor: Actor,
    action: str,
    alert: Alert,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    **extra: Any,
) -> None:
    detail = {"public_id": alert.public_id, **extra}
    if before is not None:
        detail["before"] = dict(before)
    if after is not None:
        detail["after"] = dict(after)
    record(
        session, actor=actor, action=action, target_type="alert", target_id=alert.id, detail=detail
    )


def _changed(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def _apply_content(alert: Alert, content: dict[str, Any]) -> None:
    alert.content = content
    alert.status = content["status"]
    alert.jurisdiction = content["jurisdiction"]
    alert.case_reference = content["case_reference"]
    alert.expires_at = expires_of(content)
    alert.updated_at = utcnow()


def _photo_id(
    ctx: Context,
    session: Session,
    photo: bytes | None,
    actor: Actor,
    action: str,
    alert: Alert | None,
) -> int | None:
    if photo is None:
        return None
    try:
        return store_photo(session, photo, max_bytes=ctx.settings.MAX_PHOTO_BYTES).id
    except Invalid as error:
        raise _refusal(Invalid, error.message, actor, action, alert, error.fields) from None


def _people(
    session: Session,
    alert: Alert,
    user_ids: set[int | None],
    actions: tuple[str, ...],
    proposal_id: int | None = None,
) -> set[int]:
    """The people behind the credentials that did ``actions`` to the alert: the users, and the
    minters of the API tokens they used (read from the audit trail, which names each token).
    With ``proposal`` in an entry's detail, only the ``proposal_id`` one counts."""
    people = {uid for uid in user_ids if uid is not None}
    rows = session.execute(
        select(AuditEntry.detail, ApiToken.created_by_id)
        .join(ApiToken, ApiToken.id == AuditEntry.token_id)
        .where(
            AuditEntry.target_type == "alert",
            AuditEntry.target_id == str(alert.id),
            AuditEntry.action.in_(actions),
            AuditEntry.outcome == "ok",
        )
    )
    people.update(
        creator
        for detail, creator in rows
        if creator is not None and (proposal_id is None or detail.get("proposal") == proposal_id)
    )
    return people


def _check_second_person(by: Actor, raised_by: set[int], action: str, alert: Alert) -> None:
    """The two-person rule compares people, not credentials: a token counts as the person
    who minted it as well as its owner."""
    if by.people & raised_by:
        raise _refusal(
            Forbidden,
            "The person who raised or submitted an alert or update may "
            "not approve it; a second person must.",
            by,
            action,
            alert,
        )


def _reason(reason: str, by: Actor, action: str, alert: Alert, *, required: bool = True) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise _refusal(Invalid, "Give a reason.", by, action, alert, {"reason": "is required"})
    if len(reason) > 1000:
        raise _refusal(
            Invalid,
            "The reason is too long.",
            by,
            action,
            alert,
            {"reason": "at most 1000 characters"},
        )
    return reason
