"""Reading alerts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from alertd.alerts.models import (
    ENDED,
    Alert,
)
from alertd.alerts.services._common import _load


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
