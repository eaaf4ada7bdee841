"""Publishing a version: immutable, referencing every live earlier version, with the outbox
row that sends it, all in the caller's transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from alertd.actor import Actor
from alertd.alerts.models import (
    Alert,
    Version,
)
from alertd.audit.checkpoints import write_checkpoint_quietly
from alertd.context import Context
from alertd.db import after_commit
from alertd.outbox.services import add_message
from alertd.task_names import DISPATCH_TASK


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
        approved_at=now,
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
    # Every publication is anchored outside the database as soon as it is committed.
    after_commit(session, lambda: write_checkpoint_quietly(ctx))
    return version
