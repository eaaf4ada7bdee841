"""Reading dispatches and deliveries for the console and the API."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alertd.channels.models import (
    Delivery,
    Dispatch,
)


def delivery_counts(session: Session, alert_id: int) -> dict[str, dict[str, int]]:
    """Per channel, how many deliveries of this alert are in each state."""
    rows = session.execute(
        select(Delivery.channel, Delivery.state, func.count())
        .where(Delivery.alert_id == alert_id)
        .group_by(Delivery.channel, Delivery.state)
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for channel, state, n in rows:
        counts.setdefault(channel, {})[state] = n
    return counts


def dispatches_for(session: Session, version_ids: Sequence[int]) -> list[Dispatch]:
    return list(
        session.execute(
            select(Dispatch).where(Dispatch.version_id.in_(list(version_ids))).order_by(Dispatch.id)
        ).scalars()
    )
