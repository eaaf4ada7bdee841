"""Raising an alert: the draft, its edits, and its submission for approval."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alertd.actor import Actor
from alertd.alerts.content import submission_problems
from alertd.alerts.models import (
    DISCARDED,
    DRAFT,
    PENDING,
    Alert,
)
from alertd.alerts.photos import photo_by_name, store_photo
from alertd.alerts.services._common import (
    _apply_content,
    _audit,
    _changed,
    _load,
    _parse,
    _photo_id,
    _refusal,
    _require,
    _require_state,
)
from alertd.context import Context
from alertd.db import utcnow
from alertd.errors import Forbidden, Invalid, ServiceError

# Unambiguous characters for public ids that are read aloud over a radio.
_PUBLIC_ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _new_public_id(session: Session) -> str:
    while True:
        candidate = "".join(secrets.choice(_PUBLIC_ID_ALPHABET) for _ in range(10))
        if not session.execute(select(Alert.id).where(Alert.public_id == candidate)).first():
            return candidate


def _names_expiry(raw: Any) -> bool:
    return isinstance(raw, Mapping) and bool(raw.get("expires_at"))


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
        alert.expires_by_default = not _names_expiry(raw)
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
        _require_state(
            alert, DRAFT, by, "alert.edit", "a draft can be edited", "Propose an update instead."
        )
        content = _parse(ctx, raw, by, "alert.edit", alert)
        before, after = _changed(alert.content, content)
        _apply_content(alert, content)
        alert.expires_by_default = not _names_expiry(raw)
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
        _require_state(alert, DRAFT, by, "alert.submit", "a draft can be submitted")
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


def hold_photo(ctx: Context, data: bytes) -> str | None:
    """Keep the photo of a form that was refused, so the officer need not choose it again;
    its name goes back in the form. None when the photo itself is refused (its error says why).
    Stored like any photo (by content hash) and never public until a version carries it."""
    try:
        with ctx.db.transaction() as session:
            photo = store_photo(session, data, max_bytes=ctx.settings.MAX_PHOTO_BYTES)
            return f"{photo.sha256}.{photo.extension}"
    except ServiceError:
        return None


def held_photo(ctx: Context, name: str) -> bytes | None:
    with ctx.db.session() as session:
        photo = photo_by_name(session, name)
        return photo.data if photo is not None else None


def discard_draft(ctx: Context, alert_id: int, *, by: Actor) -> Alert:
    """Throw away a draft its author no longer wants. Only the officer who raised it, and only
    before submission; the alert is kept as discarded so the audit chain still names it."""
    with ctx.db.transaction() as session:
        alert = _load(session, alert_id)
        _require(by, "alert.edit", "alert.discard", alert)
        if alert.created_by_id != by.user_id:
            raise _refusal(
                Forbidden,
                "Only the officer who raised a draft may discard it.",
                by,
                "alert.discard",
                alert,
            )
        if alert.state == DISCARDED:
            return alert  # Discarding twice is harmless.
        _require_state(
            alert,
            DRAFT,
            by,
            "alert.discard",
            "a draft can be discarded",
            "Ask a supervisor to reject or cancel it.",
        )
        alert.state = DISCARDED
        _audit(
            session, by, "alert.discard", alert, before={"state": DRAFT}, after={"state": DISCARDED}
        )
        return alert
