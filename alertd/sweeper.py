"""The periodic sweep: expire alerts, relay the outbox, reclaim expired leases and resume
stalled work. It holds a database lock, so a second scheduler running by mistake is harmless."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, update
from sqlalchemy.orm import Mapped, mapped_column

from alertd.actor import SYSTEM
from alertd.alerts.services import due_for_expiry, expire_alert
from alertd.audit.checkpoints import write_checkpoint_quietly
from alertd.channels.dispatch import reclaim_expired_leases, resume_stalled
from alertd.context import Context
from alertd.db import Base, rowcount, utcnow
from alertd.errors import ServiceError
from alertd.idempotency.services import purge_old_keys
from alertd.outbox.services import relay

log = logging.getLogger(__name__)

SWEEP_LOCK = "sweeper"
# Longer than a sweep can take; a crashed holder is replaced after this.
LOCK_SECONDS = 60
HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SchedulerLock(Base):
    __tablename__ = "scheduler_locks"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    lease_until: Mapped[datetime]


def acquire_lock(ctx: Context, name: str, holder: str, seconds: int) -> bool:
    now = utcnow()
    with ctx.db.transaction() as session:
        if session.get(SchedulerLock, name) is None:
            session.add(
                SchedulerLock(
                    name=name, holder=holder, lease_until=now + timedelta(seconds=seconds)
                )
            )
            return True
        taken = rowcount(
            session.execute(
                update(SchedulerLock)
                .where(
                    SchedulerLock.name == name,
                    (SchedulerLock.lease_until < now) | (SchedulerLock.holder == holder),
                )
                .values(holder=holder, lease_until=now + timedelta(seconds=seconds))
            )
        )
        return bool(taken)


def release_lock(ctx: Context, name: str, holder: str) -> None:
    with ctx.db.transaction() as session:
        session.execute(
            update(SchedulerLock)
            .where(SchedulerLock.name == name, SchedulerLock.holder == holder)
            .values(lease_until=utcnow())
        )


@dataclass(frozen=True)
class SweepReport:
    expired: int
    relayed: int
    reclaimed: int
    resumed: int


def sweep(ctx: Context, holder: str = HOLDER) -> SweepReport | None:
    """One pass. None when another sweeper holds the lock."""
    if not acquire_lock(ctx, SWEEP_LOCK, holder, LOCK_SECONDS):
        return None
    try:
        expired = 0
        for alert_id in due_for_expiry(ctx):
            try:
                expired += expire_alert(ctx, alert_id, by=SYSTEM) is not None
            except ServiceError:
                log.exception("could not expire alert %s", alert_id)
        report = SweepReport(expired, relay(ctx), reclaim_expired_leases(ctx), resume_stalled(ctx))
        for channel in ctx.channels.channels():
            # Some channels have work only the clock triggers (a feed's retention window).
            channel.periodic(ctx)
        purge_old_keys(ctx)
        write_checkpoint_quietly(ctx, min_age_seconds=ctx.settings.AUDIT_CHECKPOINT_SECONDS)
    finally:
        release_lock(ctx, SWEEP_LOCK, holder)
    if any((report.expired, report.relayed, report.reclaimed, report.resumed)):
        log.info("sweep: %s", report)
    return report
