"""Every change to an alert goes through one of these functions. Each runs in its own
transaction, checks the actor's role and the alert's state, writes the change with its audit
entry (and, for a publication, its version and outbox row), and refuses with a reason that is
audited too. Views, the API, the CLI and tasks all call these."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alertd.actor import Actor
from alertd.alerts.content import ContentErrors, expires_of, parse_content, submission_problems
from alertd.alerts.models import (
    ACTIVE,
    CANCELLED,
    DRAFT,
    ENDED,
    EXPIRED,
    PENDING,
    RESOLVED,
    Alert,
    Proposal,
    Version,
)
from alertd.alerts.photos import store_photo
from alertd.audit.services import record
from alertd.context import Context
from alertd.db import utcnow
from alertd.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from alertd.outbox.services import add_message

DISPATCH_TASK = "alertd.dispatch_version"
# Unambiguous characters for public ids that are read aloud over a radio.
_PUBLIC_ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


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


def _require(actor: Actor, permission: str, action: str, alert: Alert | None) -> None:
    if not actor.can(permission):
        verb = action.split(".", 1)[1].replace("_", " ")
        raise _refusal(
            Forbidden, f"The {actor.role} role may not {verb} alerts.", actor, action, alert
        )


def _load(session: Session, alert_id: int, *, lock: bool = True) -> Alert:
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
            default_expires=utcnow() + timedelta(minutes=settings.DEFAULT_ALERT_MINUTES),
            max_hours=settings.MAX_ALERT_HOURS,
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


def _new_public_id(session: Session) -> str:
    while True:
        candidate = "".join(secrets.choice(_PUBLIC_ID_ALPHABET) for _ in range(10))
        if not session.execute(select(Alert.id).where(Alert.public_id == candidate)).first():
            return candidate


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


# Drafting ------------------------------------------------------------------------------------


def create_alert(ctx: Context, raw: Any, *, by: Actor, photo: bytes | None = None) -> Alert:
    with ctx.db.transaction() as session:
        _require(by, "alert.create", "alert.create", None)
        content = _parse(ctx, raw, by, "alert.create", None)
        alert = Alert(
            public_id=_new_public_id(session),
            state=DRAFT,
            created_by_id=by.user_id,
            content={},
            status="Actual",
            jurisdiction="",
            expires_at=utcnow(),
        )
        _apply_content(alert, content)
        alert.photo_id = _photo_id(ctx, session, photo, by, "alert.create", None)
        session.add(alert)
        session.flush()
        _audit(session, by, "alert.create", alert, after={"state": DRAFT, "content": content})
        return alert


def edit_alert(
    ctx: Context, alert_id: int, raw: Any, *, by: Actor, photo: bytes | None = None
) -> Alert:
    with ctx.db.transaction() as session:
        alert = _load(session, alert_id)
        _require(by, "alert.edit", "alert.edit", alert)
        if alert.state != DRAFT:
            raise _refusal(
                Conflict,
                f"Only a draft can be edited; this alert is {alert.state}. "
                "Propose an update instead.",
                by,
                "alert.edit",
                alert,
            )
        content = _parse(ctx, raw, by, "alert.edit", alert)
        before, after = _changed(alert.content, content)
        _apply_content(alert, content)
        new_photo = _photo_id(ctx, session, photo, by, "alert.edit", alert)
        if new_photo is not None:
            alert.photo_id = new_photo
        _audit(session, by, "alert.edit", alert, before=before, after=after)
        return alert


def submit_alert(ctx: Context, alert_id: int, *, by: Actor) -> Alert:
    with ctx.db.transaction() as session:
        alert = _load(session, alert_id)
        _require(by, "alert.submit", "alert.submit", alert)
        if alert.state == PENDING:
            return alert  # Submitting twice is harmless.
        if alert.state != DRAFT:
            raise _refusal(
                Conflict,
                f"Only a draft can be submitted; this alert is {alert.state}.",
                by,
                "alert.submit",
                alert,
            )
        rule_set = ctx.rule_sets.get(alert.jurisdiction)
        if rule_set is None:
            raise _refusal(
                Invalid,
                f"The criteria of {alert.jurisdiction!r} are no longer "
                "configured; choose another jurisdiction.",
                by,
                "alert.submit",
                alert,
                {"jurisdiction": "unknown rule set"},
            )
        problems = submission_problems(alert.content, rule_set)
        if alert.expires_at <= utcnow():
            problems["expires_at"] = "is in the past; set a new expiry"
        if problems:
            raise _refusal(
                Invalid,
                "The alert does not meet the criteria for publication yet.",
                by,
                "alert.submit",
                alert,
                problems,
            )
        alert.state, alert.submitted_by_id, alert.submitted_at = PENDING, by.user_id, utcnow()
        alert.rejection_reason = ""
        _audit(
            session, by, "alert.submit", alert, before={"state": DRAFT}, after={"state": PENDING}
        )
        return alert


# Approval ------------------------------------------------------------------------------------


def _check_second_person(by: Actor, raised_by: set[int | None], action: str, alert: Alert) -> None:
    if by.user_id in raised_by:
        raise _refusal(
            Forbidden,
            "The person who raised or submitted an alert or update may "
            "not approve it; a second person must.",
            by,
            action,
            alert,
        )


def approve_alert(ctx: Context, alert_id: int, *, by: Actor) -> Alert:
    """Approve a submitted alert: it becomes active and its first version goes out at once.
    Approving an alert that is already active changes nothing."""
    with ctx.db.transaction() as session:
        alert = _load(session, alert_id)
        _require(by, "alert.approve", "alert.approve", alert)
        if alert.state == ACTIVE and alert.approved_by_id is not None:
            return alert
        if alert.state != PENDING:
            raise _refusal(
                Conflict,
                f"Only a submitted alert can be approved; this alert is {alert.state}.",
                by,
                "alert.approve",
                alert,
            )
        _check_second_person(
            by, {alert.created_by_id, alert.submitted_by_id}, "alert.approve", alert
        )
        now = utcnow()
        if alert.expires_at <= now:
            raise _refusal(
                Conflict,
                "The alert's expiry has passed; return it to the officer to set a new one.",
                by,
                "alert.approve",
                alert,
            )
        alert.state, alert.approved_by_id, alert.approved_at = ACTIVE, by.user_id, now
        version = _publish(ctx, session, alert, "alert", "Alert", by, now)
        _audit(
            session,
            by,
            "alert.approve",
            alert,
            before={"state": PENDING},
            after={"state": ACTIVE},
            version=version.identifier,
        )
        return alert


def reject_alert(ctx: Context, alert_id: int, reason: str, *, by: Actor) -> Alert:
    with ctx.db.transaction() as session:
        alert = _load(session, alert_id)
        _require(by, "alert.reject", "alert.reject", alert)
        if alert.state != PENDING:
            raise _refusal(
                Conflict,
                f"Only a submitted alert can be rejected; this alert is {alert.state}.",
                by,
                "alert.reject",
                alert,
            )
        reason = _reason(reason, by, "alert.reject", alert)
        alert.state, alert.rejection_reason, alert.updated_at = DRAFT, reason, utcnow()
        _audit(
            session,
            by,
            "alert.reject",
            alert,
            before={"state": PENDING},
            after={"state": DRAFT},
            reason=reason,
        )
        return alert


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


# Updates -------------------------------------------------------------------------------------


def propose_update(
    ctx: Context, alert_id: int, raw: Any, *, by: Actor, photo: bytes | None = None
) -> Proposal:
    """Propose new content for a live alert. A newer proposal replaces a pending one."""
    with ctx.db.transaction() as session:
        alert = _load(session, alert_id)
        _require(by, "alert.propose_update", "alert.propose_update", alert)
        if alert.state != ACTIVE:
            raise _refusal(
                Conflict,
                f"Only an active alert can be updated; this alert is {alert.state}.",
                by,
                "alert.propose_update",
                alert,
            )
        content = _parse(ctx, raw, by, "alert.propose_update", alert)
        if content["status"] != alert.status:
            raise _refusal(
                Invalid,
                "An update cannot change the alert's status.",
                by,
                "alert.propose_update",
                alert,
                {"status": f"must stay {alert.status}"},
            )
        problems = submission_problems(content, ctx.rule_sets[content["jurisdiction"]])
        if problems:
            raise _refusal(
                Invalid,
                "The update does not meet the criteria for publication.",
                by,
                "alert.propose_update",
                alert,
                problems,
            )
        photo_id = _photo_id(ctx, session, photo, by, "alert.propose_update", alert)
        for old in alert.proposals:
            if old.state == PENDING:
                old.state, old.decided_at, old.reason = "replaced", utcnow(), "replaced"
        proposal = Proposal(
            alert=alert,
            content=content,
            expires_at=expires_of(content),
            photo_id=photo_id or alert.photo_id,
            proposed_by_id=by.user_id,
        )
        session.add(proposal)
        session.flush()
        before, after = _changed(alert.content, content)
        _audit(
            session,
            by,
            "alert.propose_update",
            alert,
            before=before,
            after=after,
            proposal=proposal.id,
        )
        return proposal


def approve_update(ctx: Context, alert_id: int, *, by: Actor) -> Alert:
    with ctx.db.transaction() as session:
        alert = _load(session, alert_id)
        _require(by, "alert.approve", "alert.approve_update", alert)
        proposal = alert.pending_proposal
        if alert.state != ACTIVE or proposal is None:
            raise _refusal(
                Conflict,
                "There is no pending update to approve.",
                by,
                "alert.approve_update",
                alert,
            )
        _check_second_person(by, {proposal.proposed_by_id}, "alert.approve_update", alert)
        now = utcnow()
        if proposal.expires_at <= now:
            raise _refusal(
                Conflict, "The proposed expiry has passed.", by, "alert.approve_update", alert
            )
        before, after = _changed(alert.content, proposal.content)
        _apply_content(alert, proposal.content)
        alert.photo_id = proposal.photo_id
        proposal.state, proposal.decided_by_id, proposal.decided_at = "approved", by.user_id, now
        version = _publish(ctx, session, alert, "update", "Update", by, now)
        _audit(
            session,
            by,
            "alert.approve_update",
            alert,
            before=before,
            after=after,
            proposal=proposal.id,
            version=version.identifier,
        )
        return alert


def reject_update(ctx: Context, alert_id: int, reason: str, *, by: Actor) -> Alert:
    with ctx.db.transaction() as session:
        alert = _load(session, alert_id)
        _require(by, "alert.reject", "alert.reject_update", alert)
        proposal = alert.pending_proposal
        if proposal is None:
            raise _refusal(
                Conflict, "There is no pending update to reject.", by, "alert.reject_update", alert
            )
        reason = _reason(reason, by, "alert.reject_update", alert)
        proposal.state, proposal.decided_by_id = "rejected", by.user_id
        proposal.decided_at, proposal.reason = utcnow(), reason
        _audit(session, by, "alert.reject_update", alert, proposal=proposal.id, reason=reason)
        return alert


# Endings and extension -----------------------------------------------------------------------


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
            content = dict(alert.content, ending_note=reason)
            alert.content = content
            detail["version"] = _publish(ctx, session, alert, kind, msg_type, by, now).identifier
        for proposal in alert.proposals:
            if proposal.state == PENDING:
                proposal.state, proposal.decided_at, proposal.reason = "replaced", now, state
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
    minutes: int | None = None,
    until: datetime | None = None,
) -> Alert:
    """Push the expiry back. What went out is never edited, so this publishes an Update."""
    with ctx.db.transaction() as session:
        alert = _load(session, alert_id)
        _require(by, "alert.extend", "alert.extend", alert)
        if alert.state != ACTIVE:
            raise _refusal(
                Conflict,
                f"Only an active alert can be extended; this alert is {alert.state}.",
                by,
                "alert.extend",
                alert,
            )
        now = utcnow()
        max_minutes = ctx.settings.MAX_ALERT_HOURS * 60
        if minutes is not None and not 1 <= minutes <= max_minutes:
            raise _refusal(
                Invalid,
                f"Extend by 1 to {max_minutes} minutes.",
                by,
                "alert.extend",
                alert,
                {"minutes": f"must be from 1 to {max_minutes}"},
            )
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
                f"An alert may run at most {ctx.settings.MAX_ALERT_HOURS} hours ahead.",
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
            version=version.identifier,
        )
        return alert


def expire_alert(ctx: Context, alert_id: int, *, by: Actor) -> Alert | None:
    """Expire an active alert whose time has passed; None when there is nothing to do."""
    with ctx.db.transaction() as session:
        alert = _load(session, alert_id)
        _require(by, "alert.expire", "alert.expire", alert)
        now = utcnow()
        if alert.state != ACTIVE or alert.expires_at > now:
            return None
        alert.state, alert.ended_at, alert.updated_at = EXPIRED, now, now
        version = _publish(ctx, session, alert, "expire", "Cancel", by, now)
        _audit(
            session,
            by,
            "alert.expire",
            alert,
            before={"state": ACTIVE},
            after={"state": EXPIRED},
            version=version.identifier,
        )
        return alert


def due_for_expiry(ctx: Context) -> list[int]:
    with ctx.db.session() as session:
        return list(
            session.execute(
                select(Alert.id).where(Alert.state == ACTIVE, Alert.expires_at <= utcnow())
            ).scalars()
        )


# Publication ---------------------------------------------------------------------------------


def live_references(alert: Alert, kind: str, now: datetime) -> list[list[str]]:
    """Every earlier version of the incident that has not expired. An expiry refers to the
    versions that were live until this moment."""

    def live(v: Version) -> bool:
        return v.expires_at >= alert.expires_at if kind == "expire" else v.expires_at > now

    return [[v.sender, v.identifier, v.sent_at.isoformat()] for v in alert.versions if live(v)]


def _publish(
    ctx: Context, session: Session, alert: Alert, kind: str, msg_type: str, by: Actor, now: datetime
) -> Version:
    settings = ctx.settings
    seq = max((v.seq for v in alert.versions), default=0) + 1
    version = Version(
        alert=alert,
        seq=seq,
        identifier=f"{settings.CAP_IDENTIFIER_PREFIX}.{alert.public_id}.{seq}",
        sender=settings.CAP_SENDER,
        msg_type=msg_type,
        kind=kind,
        status=alert.status,
        # CAP times have whole seconds; the stored time must equal the published one.
        sent_at=now.replace(microsecond=0),
        expires_at=alert.expires_at,
        content=alert.content,
        photo_id=alert.photo_id,
        references=live_references(alert, kind, now),
        created_by_id=by.user_id,
        approved_by_id=by.user_id,
    )
    session.add(version)
    session.flush()
    add_message(ctx, session, DISPATCH_TASK, {"version_id": version.id})
    return version


# Reading -------------------------------------------------------------------------------------


def get_alert(session: Session, alert_id: int) -> Alert:
    return _load(session, alert_id, lock=False)


def get_alert_by_public_id(session: Session, public_id: str) -> Alert | None:
    return session.execute(select(Alert).where(Alert.public_id == public_id)).scalar_one_or_none()


def list_alerts(session: Session, *, state: str | None = None, limit: int = 200) -> list[Alert]:
    query = select(Alert).order_by(Alert.id.desc()).limit(limit)
    if state:
        query = query.where(Alert.state == state)
    return list(session.execute(query).scalars())


def is_ended(alert: Alert) -> bool:
    return alert.state in ENDED
