"""The log channel: writes each version's text to the application log. It is the embedded
default's console backend, and shows the whole dispatch path working with no gateway set up."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from alertd.alerts.models import Version
from alertd.alerts.text import summary_text
from alertd.channels.models import Delivery
from alertd.channels.registry import OUT_SENT, Outcome
from alertd.context import Context

log = logging.getLogger("alertd.channels.log")


class LogChannel:
    name = "log"
    idempotent = True
    sends_superseded = False

    def render(self, ctx: Context, version: Version) -> str:
        return summary_text(version)

    def plan(self, ctx: Context, version: Version) -> Iterable[str]:
        return ["log"]

    def deliver(
        self, ctx: Context, version: Version, deliveries: Sequence[Delivery]
    ) -> list[Outcome]:
        text = self.render(ctx, version)
        for _ in deliveries:
            log.warning(
                "ALERT %s [%s %s] %s", version.identifier, version.status, version.msg_type, text
            )
        return [Outcome(d.id, OUT_SENT) for d in deliveries]
