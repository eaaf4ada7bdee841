"""From a dispatch to one delivery row per recipient: planned in chunks, each chunk's tasks
queued as it commits, in time slices that re-queue themselves with a cursor."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import DateTime, Select, Subquery, func, literal, or_, select, update
from sqlalchemy.orm import Session

from alertd.actor import SYSTEM
from alertd.alerts.models import Version
from alertd.audit.recipients import recipient_key
from alertd.audit.services import record
from alertd.channels.dispatch.fanout import (
    _batched,
    _send_after_commit,
    enqueue_open_deliveries,
    task_size,
)
from alertd.channels.dispatch.recipients import hashed_chunk, hashed_rows
from alertd.channels.models import (
    D_FAILED,
    D_PENDING,
    D_PLANNED,
    D_PLANNING,
    PENDING,
    Delivery,
    Dispatch,
)
from alertd.channels.registry import Channel, registry_for
from alertd.context import Context
from alertd.db import dialect_insert, rowcount, utcnow
from alertd.task_names import DELIVER_TASK, PLAN_TASK

log = logging.getLogger(__name__)

# A planning task stops after this long and queues its continuation, far inside Celery's soft
# time limit (90 s, config/celery.py): at the chunk costs below a slice writes some 35,000
# (PostgreSQL) to 190,000 (SQLite) rows, so 1,000,000 recipients take 6 to 30 tasks.
PLAN_SLICE_SECONDS = 5.0
# A slice plus one chunk on a slow machine fits well inside this; a planner lost mid-way is
# resumed by the sweeper from its last committed chunk once it runs out.
PLAN_LEASE_SECONDS = 60
# Planning attempts without progress after which a dispatch is failed.
MAX_PLAN_ATTEMPTS = 5
# Recipients written per planning transaction (one cursor move, its tasks queued on commit).
# Measured on the shared 2-core machine (load 7-9), 50,000 rows: 26 ms a chunk on SQLite, 135 ms
# on PostgreSQL; 2,000 cost 49 and 527 ms (no gain per row), 500 per chunk more commits.
PLAN_CHUNK = 1000


def plan_dispatch(ctx: Context, dispatch_id: int) -> int:
    """Write one delivery row per recipient, in chunks of PLAN_CHUNK, and send each chunk's
    delivery tasks as soon as the chunk commits. A task stops after PLAN_SLICE_SECONDS and
    queues its own continuation; the cursor lives on the dispatch row (``planned_count`` for a
    plan given as an iterable, the last recipient copied for a plan given as a query), written
    in each chunk's transaction, so a task lost mid-way is resumed by the sweeper once its lease
    runs out, from its last committed chunk. Safe to run again: rows exist once, and a rival
    whose lease was taken stops at its next chunk. Returns the rows this task planned."""
    now = utcnow()
    lease = now + timedelta(seconds=PLAN_LEASE_SECONDS)
    with ctx.db.transaction() as session:
        claimed = rowcount(
            session.execute(
                update(Dispatch)
                .where(
                    Dispatch.id == dispatch_id,
                    or_(
                        Dispatch.state == D_PENDING,
                        (Dispatch.state == D_PLANNING) & (Dispatch.lease_until < now),
                    ),
                )
                .values(
                    state=D_PLANNING,
                    lease_until=lease,
                    plan_attempts=Dispatch.plan_attempts + 1,
                )
            )
        )
        if not claimed:
            return 0
        dispatch = session.get(Dispatch, dispatch_id)
        assert dispatch is not None
        version = session.get(Version, dispatch.version_id)
        assert version is not None
    channel = registry_for(ctx).get(dispatch.channel)
    if channel is None:
        _fail_dispatch(ctx, dispatch, f"channel {dispatch.channel!r} is not registered")
        return 0
    try:
        return _Planner(ctx, channel, dispatch, version, lease).run()
    except _LeaseLost:
        log.warning("planning dispatch %s lost its lease; its successor goes on", dispatch_id)
        return 0
    except Exception as exc:
        # Planning is retried when its lease runs out (a subscriber query may fail for a
        # moment); a channel that keeps failing is marked failed and shown, not retried forever.
        log.exception("planning dispatch %s failed", dispatch_id)
        if dispatch.plan_attempts >= MAX_PLAN_ATTEMPTS:
            _fail_dispatch(ctx, dispatch, f"planning failed {dispatch.plan_attempts} times: {exc}")
        return 0


def _fail_dispatch(ctx: Context, dispatch: Dispatch, error: str) -> None:
    with ctx.db.transaction() as session:
        session.execute(
            update(Dispatch)
            .where(Dispatch.id == dispatch.id)
            .values(state=D_FAILED, error=error[:2000], lease_until=None)
        )
        record(
            session,
            actor=SYSTEM,
            action="dispatch.failed",
            outcome="refused",
            target_type="dispatch",
            target_id=dispatch.id,
            detail={
                "channel": dispatch.channel,
                "version_id": dispatch.version_id,
                "error": error[:500],
            },
        )


class _LeaseLost(Exception):
    """Another planner took this dispatch (our lease ran out): stop without writing."""


_COLUMNS = (
    "dispatch_id",
    "version_id",
    "alert_id",
    "channel",
    "recipient",
    "recipient_hash",
    "state",
    "attempts",
    "next_attempt_at",
    "enqueued_at",
    "created_at",
    "last_error",
)


class _Planner:
    """One planning task's slice: chunks written and queued until the plan ends (the dispatch
    is then planned) or the slice is used up (a continuation is queued)."""

    def __init__(
        self, ctx: Context, channel: Channel, dispatch: Dispatch, version: Version, lease: datetime
    ) -> None:
        self.ctx, self.channel, self.version, self.lease = ctx, channel, version, lease
        self.dispatch_id = dispatch.id
        self.total = dispatch.planned_count  # The cursor of an iterable plan: rows consumed.
        self.written = 0
        self.deadline = time.monotonic() + PLAN_SLICE_SECONDS
        self.key = recipient_key(ctx.settings)  # Each row's recipient hash (the audit's).

    def run(self) -> int:
        query = self.channel.plan_query(self.ctx, self.version)
        done = self._copy(query) if query is not None else self._insert_iterable()
        if done:
            self._finish()
        else:
            self._continue_later()
        return self.written

    def _insert_iterable(self) -> bool:
        recipients = islice(self.channel.plan(self.ctx, self.version), self.total, None)
        for chunk in _batched(recipients, PLAN_CHUNK):
            with self.ctx.db.transaction() as session:
                ids = self._insert(session, hashed_rows(session, self.key, chunk))
                self._commit_chunk(session, len(chunk), ids)
            if time.monotonic() >= self.deadline:
                return False
        return True

    def _copy(self, query: Select[tuple[str]]) -> bool:
        """INSERT ... SELECT the query's recipients in chunks ordered by recipient, the cursor
        being the last recipient copied (read back from the rows: one source of truth)."""
        recipients = query.subquery()
        column = next(iter(recipients.c))
        while True:
            with self.ctx.db.transaction() as session:
                cursor = session.execute(
                    select(func.max(Delivery.recipient)).where(
                        Delivery.version_id == self.version.id,
                        Delivery.channel == self.channel.name,
                    )
                ).scalar_one_or_none()
                chunk = select(column).order_by(column).limit(PLAN_CHUNK)
                if cursor is not None:
                    chunk = chunk.where(column > cursor)
                picked = hashed_chunk(session, self.key, chunk)
                if picked is None:
                    return True
                ids = self._insert(session, picked)
                if not ids:
                    return True
                self._commit_chunk(session, len(ids), ids)
            if time.monotonic() >= self.deadline:
                return False

    def _insert(self, session: Session, picked: Subquery) -> list[int]:
        """One INSERT ... SELECT of a chunk's recipients and hashes (``picked.c.r``,
        ``picked.c.h``), each row queued in the same transaction: its task leaves when this
        commits, and if that send is lost the sweeper queues the row again after
        REENQUEUE_AFTER_SECONDS. Rows planned already are passed over; returns the new ids."""
        now = utcnow()
        return list(
            session.execute(
                dialect_insert(session)(Delivery)
                .from_select(
                    list(_COLUMNS),
                    select(
                        literal(self.dispatch_id),
                        literal(self.version.id),
                        literal(self.version.alert_id),
                        literal(self.channel.name),
                        picked.c.r,
                        picked.c.h,
                        literal(PENDING),
                        literal(0),
                        literal(now, DateTime()),
                        literal(now, DateTime()),
                        literal(now, DateTime()),
                        literal(""),
                    )
                    # SQLite reads "SELECT ... ON CONFLICT" as a join unless a WHERE ends the
                    # SELECT (its documented parsing ambiguity).
                    .where(picked.c.r.is_not(None)),
                )
                .on_conflict_do_nothing(index_elements=["version_id", "channel", "recipient"])
                .returning(Delivery.id)
            ).scalars()
        )

    def _while_held(self, session: Session, **values: Any) -> bool:
        """Update the dispatch only while this planner's lease holds; False when another
        planner took it (our lease ran out), and then nothing was written."""
        return bool(
            rowcount(
                session.execute(
                    update(Dispatch)
                    .where(
                        Dispatch.id == self.dispatch_id,
                        Dispatch.state == D_PLANNING,
                        Dispatch.lease_until == self.lease,
                    )
                    .values(**values)
                )
            )
        )

    def _commit_chunk(self, session: Session, consumed: int, ids: list[int]) -> None:
        """Move the cursor in the chunk's own transaction, only while our lease holds, and send
        the chunk's delivery tasks when it commits: the first send never waits for the last row."""
        self.total += consumed
        if not self._while_held(session, planned_count=self.total):
            raise _LeaseLost
        self.written += len(ids)
        ids.sort()
        for batch in _batched(ids, task_size(self.ctx, self.channel)):
            _send_after_commit(self.ctx, session, DELIVER_TASK, [self.dispatch_id, list(batch)])

    def _continue_later(self) -> None:
        """End the slice: give the lease up and queue the continuation, which claims the dispatch
        and goes on from the cursor. Progress was made, so planning attempts count afresh."""
        with self.ctx.db.transaction() as session:
            if self._while_held(
                session, lease_until=utcnow() - timedelta(seconds=1), plan_attempts=0
            ):
                _send_after_commit(self.ctx, session, PLAN_TASK, [self.dispatch_id])

    def _finish(self) -> None:
        with self.ctx.db.transaction() as session:
            if self._while_held(
                session,
                state=D_PLANNED,
                planned_at=utcnow(),
                planned_count=self.total,
                lease_until=None,
            ):
                # Rows an earlier, crashed planner wrote but whose tasks never left.
                enqueue_open_deliveries(self.ctx, session, self.dispatch_id, only_stale=True)
