"""What each enabled channel will carry for content not yet published, per language, for the
supervisor's review: from each channel's own ``preview`` hook, so a new channel shows up by
itself."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from alertd.alerts.models import Version
from alertd.context import Context

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelPreview:
    channel: str
    language: str
    text: str

    @property
    def characters(self) -> int:
        return len(self.text)


def channel_previews(
    ctx: Context, content: dict[str, Any], *, kind: str, status: str
) -> tuple[list[ChannelPreview], list[str]]:
    """Previews, and the channels that can only show theirs once the version exists."""
    # Never added to a session: it only words the message as it would go out.
    version = Version(content=content, kind=kind, status=status)
    previews, unavailable = [], []
    for channel in ctx.channels.channels():
        try:
            texts = channel.preview(ctx, version)
        except Exception:  # A channel that needs the stored version (CAP) says so, not a 500.
            log.info("channel %s has no preview before publication", channel.name, exc_info=True)
            unavailable.append(channel.name)
            continue
        previews += [ChannelPreview(channel.name, lang, text) for lang, text in texts.items()]
    return previews, unavailable
