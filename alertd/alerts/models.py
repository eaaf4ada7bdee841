from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from alertd.db import Base, utcnow

# Lifecycle states. Endings stay distinct (DOMAIN.md section 2).
DRAFT, PENDING, ACTIVE = "draft", "pending", "active"
CANCELLED, RESOLVED, EXPIRED = "cancelled", "resolved", "expired"
ENDED = (CANCELLED, RESOLVED, EXPIRED)
# A draft its author threw away before submitting it: kept (the audit chain names it), never
# listed unless asked for, and never published.
DISCARDED = "discarded"
STATES = (DRAFT, PENDING, ACTIVE, *ENDED, DISCARDED)


class Photo(Base):
    """Stored in the database so every web machine can serve it at the same stable URL."""

    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    sha1: Mapped[str] = mapped_column(String(40))
    mime_type: Mapped[str] = mapped_column(String(20))
    size: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def extension(self) -> str:
        return "png" if self.mime_type == "image/png" else "jpg"


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_state_expires", "state", "expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    state: Mapped[str] = mapped_column(String(12), default=DRAFT)
    status: Mapped[str] = mapped_column(String(10))
    jurisdiction: Mapped[str] = mapped_column(String(40))
    case_reference: Mapped[str] = mapped_column(String(200), default="")
    # The body as the API names it; for a live alert, what its latest version published.
    content: Mapped[dict[str, Any]]
    expires_at: Mapped[datetime]
    # The officer named no expiry: the default is counted again from approval, not from the
    # draft's save (a draft approved hours later would otherwise go out nearly expired).
    expires_by_default: Mapped[bool] = mapped_column(default=False)
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("photos.id"))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[datetime | None]
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    rejection_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    photo: Mapped[Photo | None] = relationship()
    versions: Mapped[list[Version]] = relationship(
        back_populates="alert", order_by="Version.seq", lazy="selectin"
    )
    proposals: Mapped[list[Proposal]] = relationship(
        back_populates="alert", order_by="Proposal.id", lazy="selectin"
    )

    @property
    def pending_proposal(self) -> Proposal | None:
        return next((p for p in self.proposals if p.state == PENDING), None)


class Proposal(Base):
    """An officer's proposed update to a live alert, waiting for a second person."""

    __tablename__ = "proposals"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    content: Mapped[dict[str, Any]]
    expires_at: Mapped[datetime]
    # The alert's expiry when this was proposed: if the proposal kept it, an extension approved
    # meanwhile is not undone by approving the proposal.
    base_expires_at: Mapped[datetime | None]
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("photos.id"))
    state: Mapped[str] = mapped_column(String(12), default=PENDING)
    proposed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    proposed_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(Text, default="")

    alert: Mapped[Alert] = relationship(back_populates="proposals")


class Version(Base):
    """One publication. Never updated after insert: an update is a new version."""

    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("alert_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    seq: Mapped[int]
    identifier: Mapped[str] = mapped_column(String(120), unique=True)
    sender: Mapped[str] = mapped_column(String(120))
    # CAP msgType (Alert, Update, Cancel) and what the version did.
    msg_type: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10))
    sent_at: Mapped[datetime]
    # The moment of approval to the microsecond (sent_at has whole seconds, as CAP does): what
    # approval-to-first-send is measured from. Empty on versions older than migration 0004.
    approved_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    content: Mapped[dict[str, Any]]
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("photos.id"))
    # [sender, identifier, sent ISO-8601] of every earlier version still live when this went out.
    references: Mapped[list[Any]]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    alert: Mapped[Alert] = relationship(back_populates="versions")
    photo: Mapped[Photo | None] = relationship()
