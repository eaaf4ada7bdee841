from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from alertd.db import Base, utcnow

RUNNING, DONE = "running", "done"


class IdempotencyKey(Base):
    """One action requested under a key: claimed before it runs, its answer kept after."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("user_id", "key"),
        Index("ix_idempotency_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(100))
    # What was asked (method, path and a hash of the body): the same key for another request
    # is a client's mistake, refused rather than answered with the wrong outcome.
    fingerprint: Mapped[str] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(10), default=RUNNING)
    status: Mapped[int | None]
    response: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
