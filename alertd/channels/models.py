from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from alertd.db import Base, utcnow

# Delivery states. The first three are in flight; the rest are terminal.
PENDING, SENDING, RETRY_WAIT = "pending", "sending", "retry_wait"
SENT, FAILED, SKIPPED, CANCELLED, UNKNOWN = "sent", "failed", "skipped", "cancelled", "unknown"
# A channel that confirms receipt (an SMS status callback) may move a sent delivery on to this.
DELIVERED = "delivered"
OPEN_STATES = (PENDING, SENDING, RETRY_WAIT)
# The rows ix_delivery_due holds (migration 0014).
DUE_INDEX_STATES = "state IN ('pending', 'sending', 'retry_wait', 'unknown', 'failed')"
TERMINAL_STATES = (SENT, FAILED, SKIPPED, CANCELLED, UNKNOWN)
# What a purged delivery's recipient becomes, followed by its id.
ERASED_PREFIX = "erased:"
DELIVERY_STATES = OPEN_STATES + TERMINAL_STATES

# Dispatch states: created, recipients being planned, all delivery rows exist.
D_PENDING, D_PLANNING, D_PLANNED, D_FAILED = "pending", "planning", "planned", "failed"


class Dispatch(Base):
    """One version on one channel."""

    __tablename__ = "dispatches"
    __table_args__ = (
        UniqueConstraint("version_id", "channel"),
        Index("ix_dispatch_state", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    channel: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(12), default=D_PENDING)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    planned_at: Mapped[datetime | None]
    planned_count: Mapped[int] = mapped_column(default=0)
    # Planning attempts; a channel whose planning keeps failing ends "failed", not retried forever.
    plan_attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(Text, default="")


class Delivery(Base):
    """One version to one recipient (a phone, an endpoint, a feed) on one channel."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("version_id", "channel", "recipient"),
        # Only the states the sweeper, health and the operator lists look for: a row sent or
        # skipped leaves the index, so recording the usual outcome adds no entry to it.
        Index(
            "ix_delivery_due",
            "state",
            "next_attempt_at",
            postgresql_where=text(DUE_INDEX_STATES),
            sqlite_where=text(DUE_INDEX_STATES),
        ),
        # Progress reads count a dispatch's rows per state and find its first and last sent
        # from this index alone (100,000 rows: 650 -> 120 ms on SQLite, loaded machine).
        Index("ix_delivery_dispatch_state", "dispatch_id", "state", "finished_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dispatch_id: Mapped[int] = mapped_column(ForeignKey("dispatches.id"))
    # Copies of the dispatch's version and its alert, for indexes; no foreign keys (a trigger
    # per planned row, half of PostgreSQL's planning cost): the dispatch's key pins them, and
    # versions and alerts are never deleted (migration 0013).
    version_id: Mapped[int]
    alert_id: Mapped[int]
    channel: Mapped[str] = mapped_column(String(40))
    # Erased by `alertd deliveries purge` (to ERASED_PREFIX + id: the column is part of a unique
    # key and not nullable) once the dispatch is long finished.
    recipient: Mapped[str] = mapped_column(String(255))
    # HMAC of the recipient (alertd/audit/recipients.py), written when the row is planned: the
    # audit digests name it, so they still verify once the recipient is erased.
    recipient_hash: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12), default=PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    # No claim before this; for a retry, when it is due.
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When a task was last sent for it; the sweeper sends another if none took it.
    enqueued_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    # Set just before a request leaves, cleared by each claim: a lost lease with this set means
    # the outcome is unknown; without it, nothing was sent and a retry is safe.
    attempted_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    external_id: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
