"""The channel interface and registry. A channel renders a version, plans its recipients, and
delivers one batch; the dispatch service does the claiming, re-checking and recording."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from alertd.alerts.models import Version
from alertd.channels.models import Delivery
from alertd.context import Context

log = logging.getLogger(__name__)

# Outcome states a channel may report for one delivery.
OUT_SENT, OUT_RETRY, OUT_FAILED, OUT_UNKNOWN, OUT_SKIPPED = (
    "sent",
    "retry",
    "failed",
    "unknown",
    "skipped",
)


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    state: str
    error: str = ""
    # Seconds to wait before the next attempt (a Retry-After); None uses the default schedule.
    retry_after: float | None = None
    external_id: str | None = None


@runtime_checkable
class Channel(Protocol):
    name: str
    # True when sending a delivery twice is harmless (a feed write, a webhook with a stable id):
    # an expired lease is then retried. Otherwise its outcome is unknown and never resent blindly.
    idempotent: bool
    # True when superseded versions must still be delivered (a feed keeps every document at its
    # permanent URL); false when only the current version is worth sending (a text message).
    sends_superseded: bool

    def render(self, ctx: Context, version: Version) -> str:
        """A human-readable preview of what this channel will send."""
        ...

    def plan(self, ctx: Context, version: Version) -> Iterable[str]:
        """The recipient keys for this version. Called again after a crash: must be stable."""
        ...

    def deliver(
        self, ctx: Context, version: Version, deliveries: Sequence[Delivery]
    ) -> list[Outcome]:
        """Send one batch. Called with no database transaction open."""
        ...


BUILTIN = {
    "cap": "alertd.channels.cap.channel:CapFeedChannel",
    "log": "alertd.channels.log:LogChannel",
    "webhook": "alertd.channels.webhooks.channel:WebhookChannel",
}


def load_channel(spec: str) -> Channel:
    target = BUILTIN.get(spec, spec)
    module_name, _, attr = target.partition(":")
    if not attr:
        raise ValueError(f"unknown channel {spec!r}: use one of {sorted(BUILTIN)} or module:Class")
    channel = getattr(importlib.import_module(module_name), attr)()
    if not isinstance(channel, Channel):
        raise TypeError(f"{target} does not implement the Channel interface")
    return channel


class Registry:
    def __init__(self, channels: Iterable[Channel]) -> None:
        self._channels = {c.name: c for c in channels}

    @classmethod
    def from_spec(cls, spec: str) -> Registry:
        return cls(load_channel(s.strip()) for s in spec.split(",") if s.strip())

    def names(self) -> list[str]:
        return list(self._channels)

    def channels(self) -> list[Channel]:
        return list(self._channels.values())

    def get(self, name: str) -> Channel | None:
        return self._channels.get(name)


_registries: dict[str, Registry] = {}


def registry_for(ctx: Context) -> Registry:
    spec = ctx.settings.CHANNELS
    if spec not in _registries:
        _registries[spec] = Registry.from_spec(spec)
    return _registries[spec]
