"""Which CAP messages are live in the feeds broadcasters poll (DOMAIN.md section 4, issue 3):

- only the latest published message of each alert; a superseded one leaves when its successor
  enters (a successor whose CAP build failed never entered, so its predecessor stays);
- an Alert or Update (including an extension) stays until its expiry;
- a Cancel or a resolving Update (AllClear) stays for ``FEED_RETENTION_HOURS`` after it was sent,
  so pollers learn the alert ended, then leaves;
- an expired alert leaves at its expiry. The Cancel that the sweeper publishes when an alert
  expires is kept at its permanent URL but never enters the feeds: its predecessor already left
  at the same moment, and re-announcing a dead alert would make some aggregators show it again;
- Actual messages go to the public feeds only; Exercise and Test messages only to the test feeds.

The candidate rows are read by index (expiry or sending time), so a read costs in proportion to
the live and recently ended alerts, not to the history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from alertd.channels.cap.models import CapDocument
from alertd.settings import Settings

PUBLIC, TEST = "public", "test"
SCOPE_STATUSES = {PUBLIC: ("Actual",), TEST: ("Exercise", "Test")}
# Kinds that keep a message live until its expiry, and kinds that end the alert but are kept
# for the retention window. "expire" is in neither (see the module docstring).
LIVE_KINDS = ("alert", "update", "extend")
RETAINED_KINDS = ("cancel", "resolve")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def feed_retention(settings: Settings) -> timedelta:
    return timedelta(hours=settings.FEED_RETENTION_HOURS)


def leaves_at(document: CapDocument, retention: timedelta) -> datetime | None:
    """When this document leaves the feeds if nothing supersedes it; None if it never enters."""
    if document.kind in LIVE_KINDS:
        return document.expires_at
    if document.kind in RETAINED_KINDS:
        return document.sent_at + retention
    return None


def live_documents(
    session: Session, scope: str, now: datetime, retention: timedelta
) -> tuple[list[CapDocument], datetime | None]:
    """The live documents of a scope, newest first, and the next time one of them leaves."""
    statuses = SCOPE_STATUSES[scope]
    # Alerts that may have a live document: found through the expiry and sending-time indexes,
    # so the cost follows the live and recently ended alerts, not the whole history.
    candidates = (
        select(CapDocument.alert_id)
        .where(
            CapDocument.status.in_(statuses),
            or_(
                and_(CapDocument.kind.in_(LIVE_KINDS), CapDocument.expires_at > now),
                and_(CapDocument.kind.in_(RETAINED_KINDS), CapDocument.sent_at > now - retention),
            ),
        )
        .distinct()
    )
    latest = (
        select(func.max(CapDocument.version_id))
        .where(CapDocument.alert_id.in_(candidates))
        .group_by(CapDocument.alert_id)
    )
    documents = (
        session.execute(select(CapDocument).where(CapDocument.version_id.in_(latest)))
        .scalars()
        .all()
    )
    live: list[CapDocument] = []
    boundary: datetime | None = None
    for document in documents:
        leaves = leaves_at(document, retention)
        if leaves is None or leaves <= now:
            continue
        live.append(document)
        boundary = leaves if boundary is None else min(boundary, leaves)
    live.sort(key=lambda d: (d.sent_at, d.id), reverse=True)
    return live, boundary


def last_modified(session: Session, now: datetime, retention: timedelta) -> datetime:
    """When the feeds last changed, or a little later: the newest document, or the latest
    expiry or retention end already passed. Each term is one index seek. It may overstate the
    time (a superseded document's expiry counts), which costs a client one extra 200, but it
    never goes backwards, so If-Modified-Since never hides a change."""
    newest = session.execute(
        select(CapDocument.created_at).order_by(CapDocument.id.desc()).limit(1)
    ).scalar()
    expired = session.execute(
        select(CapDocument.expires_at)
        .where(CapDocument.expires_at <= now)
        .order_by(CapDocument.expires_at.desc())
        .limit(1)
    ).scalar()
    retired = session.execute(
        select(CapDocument.sent_at)
        .where(CapDocument.sent_at <= now - retention)
        .order_by(CapDocument.sent_at.desc())
        .limit(1)
    ).scalar()
    moments = [m for m in (newest, expired, retired + retention if retired else None) if m]
    return max(moments, default=EPOCH).replace(microsecond=0)
