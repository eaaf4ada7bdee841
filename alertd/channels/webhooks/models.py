"""Webhook endpoints and the log of every request made to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from alertd.db import Base, utcnow

EVENTS = ("alert.published", "alert.updated", "alert.resolved", "alert.cancelled", "alert.expired")
FORMATS = ("standard", "slack", "discord", "teams", "mastodon", "telegram")
# Formats that post to a platform's API with a token, rather than to a URL the partner owns.
TOKEN_FORMATS = ("mastodon", "telegram")

# What each kind of version is, as an event a partner subscribes to.
EVENT_OF_KIND = {
    "alert": "alert.published",
    "update": "alert.updated",
    "extend": "alert.updated",
    "resolve": "alert.resolved",
    "cancel": "alert.cancelled",
    "expire": "alert.expired",
}


class Endpoint(Base):
    """Where a partner wants alerts. Secrets are stored encrypted (they must be recoverable to
    sign with) and are shown once, when generated."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500), default="")
    events: Mapped[list[Any]]
    language: Mapped[str] = mapped_column(String(10), default="en")
    format: Mapped[str] = mapped_column(String(12), default="standard")
    enabled: Mapped[bool] = mapped_column(default=True)
    # Test and Exercise alerts go only where a partner asked for them.
    accepts_tests: Mapped[bool] = mapped_column(default=False)
    secret_enc: Mapped[str] = mapped_column(Text)
    # During a rotation the previous secret also signs, until this time.
    previous_secret_enc: Mapped[str | None] = mapped_column(Text)
    previous_secret_until: Mapped[datetime | None]
    # Mastodon access token or Telegram bot token, encrypted; Telegram's chat id.
    token_enc: Mapped[str | None] = mapped_column(Text)
    chat_id: Mapped[str] = mapped_column(String(100), default="")
    disabled_reason: Mapped[str] = mapped_column(Text, default="")
    # Circuit breaker: consecutive failed requests, and until when no request is made.
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    circuit_open_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(80), default="")


class Attempt(Base):
    """One request to one endpoint for one delivery: the delivery log operators read."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        Index("ix_webhook_attempts_endpoint", "endpoint_id", "id"),
        Index("ix_webhook_attempts_alert", "alert_id", "id"),
        Index("ix_webhook_attempts_delivery", "delivery_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"))
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None]
    latency_ms: Mapped[int] = mapped_column(default=0)
    # The first bytes of the response, or why there was none.
    response_head: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(12), default="")
