"""Cancel (the pre-authorised one-step withdrawal), resolve (child found), extend, and the
sweeper's expiry."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask_babel import ngettext
from sqlalchemy import select

from alertd.actor import Actor
from alertd.alerts.models import (
    ACTIVE,
    CANCELLED,
    DRAFT,
    EXPIRED,
    PENDING,
    RESOLVED,
    Alert,
)
from alertd.alerts.services._common import (
    _audit,
    _load,
    _reason,
    _refusal,
    _require,
    _require_state,
)
from alertd.alerts.services.publication import _publish
from alertd.audit.digests import version_detail
from alertd.context import Context
from alertd.db import utcnow
from alertd.errors import Conflict, Invalid, ServiceError


def cancel_alert(ctx: Context, alert_id: int, reason: str, *, by: Actor) -> Alert:
    """The pre-authorised one-step cancel. A live alert gets a Cancel version; a draft or a
    submitted alert, which never went out, is withdrawn without one."""
    return _end(ctx, alert_id, reason, by, CANCELLED, "cancel", "Cancel", "alert.cancel")


def resolve_alert(ctx: Context, alert_id: int, note: str, *, by: Actor) -> Alert:
    """The child was found: an Update telling everyone the alert is over."""
    return _end(ctx, alert_id, note, by, RESOLVED, "resolve", "Update", "alert.resolve")


def _end(
    ctx: Context,
    alert_id: int,
    reason: str,
    by: Actor,
    state: str,
    kind: str,
    msg_type: str,
    action: str,
) -> Alert:
    with ctx.db.transaction() as session:
        alert = _load(session, alert_id)
        _require(by, action, action, alert)
        if alert.state == state:
            return alert  # Cancelling or resolving twice is harmless.
        reason = _reason(reason, by, action, alert, required=state == CANCELLED)
        allowed = (ACTIVE, DRAFT, PENDING) if state == CANCELLED else (ACTIVE,)
        if alert.state not in allowed:
            raise _refusal(
                Conflict, f"This alert is {alert.state}; it cannot be {state}.", by, action, alert
            )
        before_state, now = alert.state, utcnow()
        alert.state, alert.ended_at, alert.updated_at = state, now, now
        detail: dict[str, Any] = {"reason": reason}
        if before_state == ACTIVE:
            if state == RESOLVED:
                # The resolve note is written for the public. A cancel reason is internal (a
                # false report may name someone): it stays in the audit entry, never in the
                # published version, which every channel and the public page read.
                alert.content = dict(alert.content, ending_note=reason)
            detail.update(version_detail(_publish(ctx, session, alert, kind, msg_type, by, now)))
        _close_proposals(alert, now, state)
        _audit(
            session,
            by,
            action,
            alert,
            before={"state": before_state},
            after={"state": state},
            **detail,
        )
        return alert


def extend_alert(
    ctx: Context,
    alert_id: int,
    *,
    by: Actor,
    minutes: object = None,
    until: object = None,
) -> Alert:
    """Push the expiry back. What went out is never edited, so this publishes an Update.

    ``minutes`` and ``until`` may be raw input (text from a form or JSON): they are checked
    here, after the role, so a wrong role is refused as such whatever it typed."""
    with ctx.db.transaction() as session:
        alert = _load(session, alert_id)
        _require(by, "alert.extend", "alert.extend", alert)
        _require_state(alert, ACTIVE, by, "alert.extend", "an active alert can be extended")
        now = utcnow()
        minutes, until = _extension(ctx, alert, by, minutes, until)
        if until is None:
            step = ctx.settings.EXTEND_MINUTES if minutes is None else minutes
            until = max(alert.expires_at, now) + timedelta(minutes=step)
        until = until.replace(microsecond=0)
        if until.tzinfo is None or until <= alert.expires_at or until <= now:
            raise _refusal(
                Invalid,
                "The new expiry must be later than the current one.",
                by,
                "alert.extend",
                alert,
                {"expires_at": "must be later"},
            )
        if until > now + timedelta(hours=ctx.settings.MAX_ALERT_HOURS):
            raise _refusal(
                Invalid,
                ngettext(
                    "An alert may run at most %(num)d hour ahead.",
                    "An alert may run at most %(num)d hours ahead.",
                    ctx.settings.MAX_ALERT_HOURS,
                ),
                by,
                "alert.extend",
                alert,
                {"expires_at": "too far ahead"},
            )
        before = alert.expires_at
        alert.content = dict(alert.content, expires_at=until.isoformat())
        alert.expires_at, alert.updated_at = until, now
        version = _publish(ctx, session, alert, "extend", "Update", by, now)
        _audit(
            session,
            by,
            "alert.extend",
            alert,
            before={"expires_at": before.isoformat()},
            after={"expires_at": until.isoformat()},
            **version_detail(version),
        )
        return alert


def _close_proposals(alert: Alert, now: datetime, ending: str) -> None:
    """An ended alert has nothing left to update: its pending proposal is closed with it."""
    for proposal in alert.proposals:
        if proposal.state == PENDING:
            proposal.state, proposal.decided_at, proposal.reason = "replaced", now, ending


def _extension(
    ctx: Context, alert: Alert, by: Actor, minutes: object, until: object
) -> tuple[int | None, datetime | None]:
    max_minutes = ctx.settings.MAX_ALERT_HOURS * 60

    def bad(field: str, message: str) -> ServiceError:
        return _refusal(
            Invalid, f"{field}: {message}.", by, "alert.extend", alert, {field: message}
        )

    if minutes in (None, ""):
        minutes = None
    else:
        try:
            if isinstance(minutes, bool | float):
                raise ValueError
            minutes = int(str(minutes).strip())
        except ValueError:
            raise bad("minutes", f"a whole number from 1 to {max_minutes}") from None
        if not 1 <= minutes <= max_minutes:
            raise bad("minutes", f"a whole number from 1 to {max_minutes}")
    if until in (None, ""):
        until = None
    elif not isinstance(until, datetime):
        try:
            until = datetime.fromisoformat(str(until).strip())
        except ValueError:
            raise bad("expires_at", "an ISO-8601 date-time with a UTC offset") from None
    if until is not None and until.tzinfo is None:
        raise bad("expires_at", "needs a UTC offset")
    return minutes, until


def expire_alert(ctx: Context, alert_id: int, *, by: Actor) -> Alert | None:
    """Expire an active alert whose time has passed; None when there is nothing to do."""
    with ctx.db.transaction() as session:
        alert = _load(session, alert_id)
        _require(by, "alert.expire", "alert.expire", alert)
        now = utcnow()
        if alert.state != ACTIVE or alert.expires_at > now:
            return None
        alert.state, alert.ended_at, alert.updated_at = EXPIRED, now, now
        _close_proposals(alert, now, EXPIRED)
        version = _publish(ctx, session, alert, "expire", "Cancel", by, now)
        _audit(
            session,
            by,
            "alert.expire",
            alert,
            before={"state": ACTIVE},
            after={"state": EXPIRED},
            **version_detail(version),
        )
        return alert


def due_for_expiry(ctx: Context) -> list[int]:
    with ctx.db.session() as session:
        return list(
            session.execute(
                select(Alert.id).where(Alert.state == ACTIVE, Alert.expires_at <= utcnow())
            ).scalars()
        )
