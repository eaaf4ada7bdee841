"""Loading channels by name and keeping the enabled ones; a :class:`Registry` lives on the
:class:`~alertd.context.Context` (``ctx.channels``)."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from alertd.channels.base import (
    OUT_FAILED,
    OUT_RETRY,
    OUT_SENT,
    OUT_SKIPPED,
    OUT_THROTTLED,
    OUT_UNKNOWN,
    Channel,
    Outcome,
)

if TYPE_CHECKING:
    from alertd.context import Context

log = logging.getLogger(__name__)

__all__ = [
    "BUILTIN",
    "OUT_FAILED",
    "OUT_RETRY",
    "OUT_SENT",
    "OUT_SKIPPED",
    "OUT_THROTTLED",
    "OUT_UNKNOWN",
    "Channel",
    "Outcome",
    "Registry",
    "load_channel",
    "registry_for",
]

BUILTIN = {
    "cap": "alertd.channels.cap.channel:CapFeedChannel",
    "log": "alertd.channels.log:LogChannel",
    "webhook": "alertd.channels.webhooks.channel:WebhookChannel",
    "sms": "alertd.channels.sms.channel:SmsChannel",
}


def load_channel(spec: str, environ: Mapping[str, str] | None = None) -> Channel:
    target = BUILTIN.get(spec, spec)
    module_name, _, attr = target.partition(":")
    if not attr:
        raise ValueError(f"unknown channel {spec!r}: use one of {sorted(BUILTIN)} or module:Class")
    channel = getattr(importlib.import_module(module_name), attr)()
    if not isinstance(channel, Channel):
        raise TypeError(f"{target} is not a subclass of alertd.channels.base.Channel")
    channel.configure(environ)
    return channel


class Registry:
    def __init__(self, channels: Iterable[Channel]) -> None:
        self._channels = {c.name: c for c in channels}

    @classmethod
    def from_spec(cls, spec: str, environ: Mapping[str, str] | None = None) -> Registry:
        return cls(load_channel(s.strip(), environ) for s in spec.split(",") if s.strip())

    def names(self) -> list[str]:
        return list(self._channels)

    def channels(self) -> list[Channel]:
        return list(self._channels.values())

    def get(self, name: str) -> Channel | None:
        return self._channels.get(name)


def registry_for(ctx: Context) -> Registry:
    """The channels enabled for this context (kept for callers that predate ``ctx.channels``)."""
    return ctx.channels
