"""Subscribers of the SMS channel, the areas they follow, and texts the console backend kept."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from alertd.db import Base, utcnow


class Subscriber(Base):
    """One opted-in phone. The number is E.164; the delivery rows name the subscriber's id, so
    the number itself is only here."""

    __tablename__ = "sms_subscribers"
    __table_args__ = (
        # The bounding-box prefilter for subscribers who gave a point rather than areas.
        Index("ix_sms_subscribers_point", "lat", "lon"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    language: Mapped[str] = mapped_column(String(10), default="en")
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    # Where the consent came from (console, api, import, sms) and when.
    opted_in_via: Mapped[str] = mapped_column(String(20), default="")
    opted_in_at: Mapped[datetime] = mapped_column(default=utcnow)
    opted_out: Mapped[bool] = mapped_column(default=False)
    opted_out_at: Mapped[datetime | None]
    # The gateway said the number cannot take texts (21211, 21614): not selected again.
    invalid: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(80), default="")


class SubscriberArea(Base):
    """One geocode a subscriber follows, e.g. scheme SAME, value 006037."""

    __tablename__ = "sms_subscriber_areas"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "scheme", "value"),
        # Selection reads one geocode's subscribers from this index already in id order, so
        # its first page streams without sorting the whole area (migration 0012).
        Index("ix_sms_subscriber_areas_code_subscriber", "scheme", "value", "subscriber_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("sms_subscribers.id", ondelete="CASCADE"))
    scheme: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(100))


class ConsoleText(Base):
    """A text the default ``console`` backend kept instead of sending: shown in the console,
    marked as not sent."""

    __tablename__ = "sms_console_texts"
    __table_args__ = (Index("ix_sms_console_texts_alert", "alert_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), unique=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    to: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GatewayStatus(Base):
    """The furthest state the gateway reported for one delivery's text (queued, sent,
    delivered, undelivered, failed). Status callbacks only ever move it forward."""

    __tablename__ = "sms_gateway_status"

    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    status: Mapped[str] = mapped_column(String(12))
    error_code: Mapped[str] = mapped_column(String(10), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
