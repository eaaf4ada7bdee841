"""Reading dispatches and deliveries for the console and the API."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alertd.alerts.models import Version
from alertd.channels.models import (
    Delivery,
    Dispatch,
)


def delivery_counts(session: Session, alert_id: int) -> dict[str, dict[str, int]]:
    """Per channel, how many deliveries of this alert are in each state."""
    # By dispatch, so the (dispatch_id, state) index answers alone: filtered on alert_id the
    # count read every delivery row (no index), 390 ms at 100,000 on a loaded machine.
    channels: dict[int, str] = dict(
        session.execute(
            select(Dispatch.id, Dispatch.channel)
            .join(Version, Version.id == Dispatch.version_id)
            .where(Version.alert_id == alert_id)
        ).all()
    )
    rows = [
        (channels[dispatch_id], state, n)
        for dispatch_id, state, n in session.execute(
            select(Delivery.dispatch_id, Delivery.state, func.count())
            .where(Delivery.dispatch_id.in_(list(channels)))
            .group_by(Delivery.dispatch_id, Delivery.state)
        )
    ]
    counts: dict[str, dict[str, int]] = {}
    for channel, state, n in rows:
        by_state = counts.setdefault(channel, {})
        by_state[state] = by_state.get(state, 0) + n
    return counts


def dispatches_for(session: Session, version_ids: Sequence[int]) -> list[Dispatch]:
    return list(
        session.execute(
            select(Dispatch).where(Dispatch.version_id.in_(list(version_ids))).order_by(Dispatch.id)
        ).scalars()
    )
