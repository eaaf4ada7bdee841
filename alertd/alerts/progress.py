"""Delivery progress of an alert, per version and per channel, read from the dispatch and
delivery tables. Nothing here names a channel: a new one appears as soon as it has a dispatch."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alertd.actor import Actor
from alertd.alerts.models import Version
from alertd.channels.base import VersionNote
from alertd.channels.dispatch.queries import tallies
from alertd.channels.models import (
    D_FAILED,
    D_PLANNED,
    DELIVERED,
    FAILED,
    OPEN_STATES,
    SENT,
    SKIPPED,
    UNKNOWN,
    Dispatch,
)
from alertd.context import Context

log = logging.getLogger(__name__)

# What the page counts, in this order; "waiting" is every state still in flight.
COLUMNS = ("sent", "delivered", "failed", "unknown", "skipped", "waiting")


@dataclass
class ChannelProgress:
    channel: str
    dispatch_state: str
    planned: int
    counts: dict[str, int]
    first_sent_at: datetime | None
    last_sent_at: datetime | None
    error: str = ""

    @property
    def done(self) -> int:
        return self.planned - self.counts["waiting"]

    @property
    def finished(self) -> bool:
        return self.dispatch_state in (D_PLANNED, D_FAILED) and self.counts["waiting"] == 0

    @property
    def percent(self) -> int:
        return 100 if self.planned == 0 else round(100 * self.done / self.planned)

    @property
    def state(self) -> str:
        """The dispatch in words an operator reads."""
        if self.dispatch_state == D_FAILED:
            return "failed to plan"
        if self.dispatch_state != D_PLANNED:
            return "planning recipients"
        if self.counts["waiting"]:
            return "sending"
        if self.counts["failed"] or self.counts["unknown"]:
            return "finished with problems"
        return "finished"

    def as_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "dispatch_state": self.dispatch_state,
            "state": self.state,
            "planned": self.planned,
            **self.counts,
            "percent": self.percent,
            "finished": self.finished,
            "first_sent_at": _iso(self.first_sent_at),
            "last_sent_at": _iso(self.last_sent_at),
            "error": self.error,
        }


@dataclass
class VersionProgress:
    version_id: int
    seq: int
    kind: str
    approved_at: datetime
    channels: list[ChannelProgress] = field(default_factory=list)

    @property
    def first_sent_at(self) -> datetime | None:
        return min((c.first_sent_at for c in self.channels if c.first_sent_at), default=None)

    @property
    def finished(self) -> bool:
        return bool(self.channels) and all(c.finished for c in self.channels)

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "approved_at": _iso(self.approved_at),
            "first_sent_at": _iso(self.first_sent_at),
            "finished": self.finished,
            "channels": [c.as_json() for c in self.channels],
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _bucket(state: str) -> str:
    if state in OPEN_STATES:
        return "waiting"
    if state in (SENT, DELIVERED, FAILED, UNKNOWN, SKIPPED):
        return state
    return "skipped"  # Cancelled rows were never sent, like skipped ones.


def alert_progress(
    session: Session, versions: Sequence[Version], max_age: float = 0.0
) -> list[VersionProgress]:
    """Newest version first, each with one row per dispatched channel; counts at most
    ``max_age`` seconds old (see alertd.channels.dispatch.queries.tallies)."""
    by_id = {v.id: v for v in versions}
    if not by_id:
        return []
    dispatches = list(
        session.execute(
            select(Dispatch).where(Dispatch.version_id.in_(list(by_id))).order_by(Dispatch.channel)
        ).scalars()
    )
    found = tallies(session, [d.id for d in dispatches], max_age)
    progress = {
        v.id: VersionProgress(v.id, v.seq, v.kind, v.approved_at or v.sent_at) for v in versions
    }
    for d in dispatches:
        tally = found[d.id]
        row = dict.fromkeys(COLUMNS, 0)
        for state, n in tally.counts.items():
            row[_bucket(state)] += n
        planned = d.planned_count if d.state == D_PLANNED else sum(row.values())
        progress[d.version_id].channels.append(
            ChannelProgress(
                d.channel,
                d.state,
                max(planned, sum(row.values())),
                row,
                tally.first_sent_at,
                tally.last_sent_at,
                d.error,
            )
        )
    return sorted(progress.values(), key=lambda p: p.seq, reverse=True)


@dataclass(frozen=True)
class ChannelNote:
    """A channel's own line about the alert (its ``console_status``), and its page if any."""

    channel: str
    line: str
    url: str | None


def channel_notes(ctx: Context, actor: Actor, versions: Sequence[Version]) -> list[ChannelNote]:
    """Each enabled channel's line about the newest version, for the live progress section."""
    if not versions:
        return []
    latest = max(versions, key=lambda v: v.seq)
    notes = []
    for channel in ctx.channels.channels():
        try:
            line = channel.console_status(ctx, latest)
            url = channel.console_page(actor, latest.alert_id) if line else None
        except Exception:  # One channel's bug must not take the alert page down.
            log.exception("channel %s console status failed", channel.name)
            continue
        if line:
            notes.append(ChannelNote(channel.name, line, url))
    return notes


def version_notes(ctx: Context, session: Session, alert_id: int) -> dict[int, list[VersionNote]]:
    """Each enabled channel's notes on the alert's versions, by version id, for the Versions
    table."""
    notes: dict[int, list[VersionNote]] = {}
    for channel in ctx.channels.channels():
        try:
            by_version = channel.version_notes(ctx, session, alert_id)
        except Exception:  # One channel's bug must not take the alert page down.
            log.exception("channel %s version notes failed", channel.name)
            continue
        for version_id, note in by_version.items():
            notes.setdefault(version_id, []).append(note)
    return notes
