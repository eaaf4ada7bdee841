"""The published CAP documents: the bytes served at each message's permanent URL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from alertd.db import Base, utcnow


class CapDocument(Base):
    """One CAP message exactly as first published. Never updated: its URL is immutable, and
    aggregators fetch it once, so a second build must not replace what they already have."""

    __tablename__ = "cap_documents"
    __table_args__ = (
        # The feed query looks for documents that may still be live: by expiry for live kinds,
        # by sending time for ended ones. Both keep a feed build proportional to live alerts.
        Index("ix_cap_documents_expires", "expires_at"),
        Index("ix_cap_documents_sent", "sent_at"),
        Index("ix_cap_documents_alert", "alert_id", "version_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    identifier: Mapped[str] = mapped_column(String(120), unique=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), unique=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    status: Mapped[str] = mapped_column(String(10))
    msg_type: Mapped[str] = mapped_column(String(10))
    # The version's kind: a resolve is an Update on the wire but ends the alert, and the feeds
    # must tell it from an ordinary update without parsing the XML.
    kind: Mapped[str] = mapped_column(String(10))
    sent_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    xml: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    # What the feed entries show (headline, event, urgency, areas...), taken from the built
    # message once, so that building a feed never parses stored XML.
    summary: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
