"""The log channel: writes each version's text to the application log. It is the embedded
default's console backend, and shows the whole dispatch path working with no gateway set up."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from alertd.alerts.models import Version
from alertd.alerts.text import summary_text
from alertd.channels.base import OUT_SENT, Channel, Outcome
from alertd.channels.models import Delivery
from alertd.context import Context

log = logging.getLogger("alertd.channels.log")


class LogChannel(Channel):
    name = "log"
    idempotent = True
    sends_superseded = False

    def preview(self, ctx: Context, version: Version) -> dict[str, str]:
        primary = (version.content.get("languages") or ["en-US"])[0]
        return {primary: summary_text(version)}

    def plan(self, ctx: Context, version: Version) -> Iterable[str]:
        return ["log"]

    def deliver(
        self, ctx: Context, version: Version, deliveries: Sequence[Delivery]
    ) -> list[Outcome]:
        text = summary_text(version)
        for _ in deliveries:
            log.warning(
                "ALERT %s [%s %s] %s", version.identifier, version.status, version.msg_type, text
            )
        return [Outcome(d.id, OUT_SENT) for d in deliveries]
