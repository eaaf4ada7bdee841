"""Reading alerts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from alertd.alerts.models import (
    DISCARDED,
    ENDED,
    STATES,
    Alert,
)
from alertd.alerts.services._common import MAX_ID, _load
from alertd.errors import Invalid


def get_alert(session: Session, alert_id: int) -> Alert:
    return _load(session, alert_id, lock=False)


def get_alert_by_public_id(session: Session, public_id: str) -> Alert | None:
    return session.execute(select(Alert).where(Alert.public_id == public_id)).scalar_one_or_none()


# A page holds at most this many alerts; the default is what a screen shows.
MAX_PAGE, DEFAULT_PAGE = 200, 50


@dataclass(frozen=True)
class Page:
    alerts: list[Alert]
    # The id to pass as ``before`` for the next (older) page; None on the last page.
    next_before: int | None


def list_alerts(
    session: Session,
    *,
    state: str | None = None,
    limit: int = DEFAULT_PAGE,
    before: int | None = None,
) -> Page:
    """Newest first, ``limit`` at a time: a keyset page (ids below ``before``), so every alert
    is reachable however many there are, and a page does not shift as new alerts arrive."""
    if state is not None and state not in STATES:
        raise Invalid(f"Unknown state {state!r}.", fields={"state": f"one of {', '.join(STATES)}"})
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit must be 1 to {MAX_PAGE}.", fields={"limit": f"1 to {MAX_PAGE}"})
    query = select(Alert).order_by(Alert.id.desc()).limit(limit + 1)
    # Discarded drafts are listed only when asked for.
    query = query.where(Alert.state == state if state else Alert.state != DISCARDED)
    if before is not None:
        query = query.where(Alert.id < before)
    alerts = list(session.execute(query).scalars())
    more = len(alerts) > limit
    alerts = alerts[:limit]
    return Page(alerts, alerts[-1].id if more else None)


def parse_page_args(args: Mapping[str, str]) -> tuple[str | None, int, int | None]:
    """``state``, ``limit`` and ``cursor`` from a query string, refused when malformed."""
    state = args.get("state") or None
    try:
        limit = int(args.get("limit") or DEFAULT_PAGE)
    except ValueError:
        raise Invalid("limit must be a whole number.", fields={"limit": "not a number"}) from None
    cursor = args.get("cursor") or None
    before = None
    if cursor is not None:
        if not cursor.isdigit() or not 0 < int(cursor) <= MAX_ID:
            raise Invalid("The cursor is not one this server gave.", fields={"cursor": "invalid"})
        before = int(cursor)
    return state, limit, before


def is_ended(alert: Alert) -> bool:
    return alert.state in ENDED
