"""What each enabled channel will carry for content not yet published, per language, for the
supervisor's review: from each channel's own ``preview_texts`` hook, with each text's size
against the channel's limit, so a new channel shows up by itself."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from alertd.alerts.models import Version
from alertd.channels.base import PreviewText
from alertd.context import Context

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelPreview:
    channel: str
    text: PreviewText

    @property
    def language(self) -> str:
        return self.text.language


def channel_previews(
    ctx: Context,
    content: dict[str, Any],
    *,
    kind: str,
    status: str,
    alert_id: int | None = None,
) -> tuple[list[ChannelPreview], list[str]]:
    """Previews, and the channels that can only show theirs once the version exists."""
    # Never added to a session: it only words the message as it would go out.
    version = Version(content=content, kind=kind, status=status, alert_id=alert_id)
    previews, unavailable = [], []
    for channel in ctx.channels.channels():
        try:
            texts = channel.preview_texts(ctx, version)
        except Exception:  # A channel that needs the stored version says so, not a 500.
            log.info("channel %s has no preview before publication", channel.name, exc_info=True)
            unavailable.append(channel.name)
            continue
        previews += [ChannelPreview(channel.name, t) for t in texts]
    return previews, unavailable
