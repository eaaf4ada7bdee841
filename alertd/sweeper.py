"""The periodic sweep: expire alerts, relay the outbox, reclaim expired leases and resume
stalled work. It holds a database lock, so a second scheduler running by mistake is harmless."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from sqlalchemy import update

from alertd.actor import SYSTEM
from alertd.alerts.services import due_for_expiry, expire_alert
from alertd.audit.checkpoints import write_checkpoint_quietly
from alertd.channels.dispatch import (
    reclaim_expired_leases,
    reconcile_unknown,
    resume_stalled,
)
from alertd.context import Context
from alertd.db import rowcount, utcnow
from alertd.idempotency.services import purge_old_keys
from alertd.locks import SchedulerLock
from alertd.outbox.services import relay

log = logging.getLogger(__name__)

SWEEP_LOCK = "sweeper"
# Longer than a sweep can take; a crashed holder is replaced after this.
LOCK_SECONDS = 60
HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


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


def _step(name: str, run: Callable[[], int | None]) -> int:
    """One step of the sweep; its failure is logged and the sweep goes on with the next."""
    try:
        return run() or 0
    except Exception:
        log.exception("sweep step %s failed; going on", name)
        return 0


def sweep(ctx: Context, holder: str = HOLDER) -> SweepReport | None:
    """One pass. None when another sweeper holds the lock. No step's failure stops the others:
    a poisoned alert or a channel's bug must not stop the relay that keeps dispatch alive."""
    if not acquire_lock(ctx, SWEEP_LOCK, holder, LOCK_SECONDS):
        return None
    try:
        due: list[int] = []

        def find_due() -> None:
            due.extend(due_for_expiry(ctx))

        _step("due_for_expiry", find_due)
        expired = sum(_step(f"expire alert {each}", partial(_expired, ctx, each)) for each in due)
        report = SweepReport(
            expired,
            _step("relay", partial(relay, ctx)),
            _step("reclaim_expired_leases", partial(reclaim_expired_leases, ctx)),
            _step("resume_stalled", partial(resume_stalled, ctx)),
        )
        # Before an unknown outcome reaches an operator, its channel may know what became of it.
        _step("reconcile_unknown", partial(reconcile_unknown, ctx))
        for channel in ctx.channels.channels():
            # Some channels have work only the clock triggers (a feed's retention window).
            _step(f"{channel.name}.periodic", partial(channel.periodic, ctx))
        _step("purge_old_keys", partial(purge_old_keys, ctx))
        _step(
            "write_checkpoint",
            partial(
                write_checkpoint_quietly, ctx, min_age_seconds=ctx.settings.AUDIT_CHECKPOINT_SECONDS
            ),
        )
    finally:
        release_lock(ctx, SWEEP_LOCK, holder)
    if any((report.expired, report.relayed, report.reclaimed, report.resumed)):
        log.info("sweep: %s", report)
    return report


def _expired(ctx: Context, alert_id: int) -> int:
    return int(expire_alert(ctx, alert_id, by=SYSTEM) is not None)
