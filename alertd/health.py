"""Liveness seen from outside the workers. Celery workers have been seen to stop consuming
after a Redis reconnect while their process stays alive (RELIABILITY.md section 1), so the only
trustworthy signal is whether work written to the database is being taken."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from alertd.channels.models import PENDING, RETRY_WAIT, Delivery
from alertd.context import Context
from alertd.db import utcnow
from alertd.outbox.models import OutboxMessage


@dataclass(frozen=True)
class Backlog:
    oldest_untaken_outbox_seconds: float
    oldest_due_delivery_seconds: float
    unknown_deliveries: int

    @property
    def oldest_untaken_seconds(self) -> float:
        """How long the oldest work no worker has taken has waited: dispatch's liveness."""
        return max(self.oldest_untaken_outbox_seconds, self.oldest_due_delivery_seconds)

    def healthy(self, max_age_seconds: float) -> bool:
        return self.oldest_untaken_seconds <= max_age_seconds


def backlog(ctx: Context) -> Backlog:
    now = utcnow()
    with ctx.db.session() as session:
        outbox = session.execute(
            select(func.min(OutboxMessage.created_at)).where(OutboxMessage.consumed_at.is_(None))
        ).scalar()
        due = session.execute(
            select(func.min(Delivery.next_attempt_at)).where(
                Delivery.state.in_((PENDING, RETRY_WAIT)), Delivery.next_attempt_at <= now
            )
        ).scalar()
        unknown = session.execute(
            select(func.count()).select_from(Delivery).where(Delivery.state == "unknown")
        ).scalar_one()

    def age(moment: datetime | None) -> float:
        return (now - moment).total_seconds() if moment is not None else 0.0

    return Backlog(age(outbox), age(due), int(unknown))
