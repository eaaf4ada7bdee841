"""The RSS 2.0 feed (``alerts.rss``): one item per live CAP message, linking to it."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime

from feedgen.feed import FeedGenerator

from alertd.channels.cap.feed_urls import document_url, feed_path, feed_title
from alertd.channels.cap.models import CapDocument
from alertd.public.links import base_url
from alertd.settings import Settings


def rss_feed(
    settings: Settings, scope: str, documents: Sequence[CapDocument], updated: datetime
) -> bytes:
    generator = FeedGenerator()
    generator.title(feed_title(settings, scope))
    generator.link(href=base_url(settings) + feed_path(scope, "alerts.rss"), rel="self")
    generator.link(href=base_url(settings) + "/", rel="alternate")
    generator.description(
        "Child abduction alerts as CAP 1.2 messages; each item links to its CAP document."
    )
    generator.language("en")
    # feedgen stamps the build time by default; the feed's own time keeps the bytes the same
    # in every web process and in the static copy, so the strong ETag holds everywhere.
    generator.lastBuildDate(updated)
    generator.pubDate(updated)
    generator.ttl(1)
    for document in reversed(documents):  # feedgen prepends entries by default
        summary = document.summary
        entry = generator.add_entry()
        entry.title(summary.get("headline") or document.identifier)
        entry.link(href=document_url(settings, document.identifier))
        entry.guid(document.identifier, permalink=False)
        entry.pubDate(document.sent_at)
        # Readers render an RSS description as HTML: escape the text once, so an area typed as
        # "<img …>" shows as those characters, never as markup (lxml escapes it again as XML).
        entry.description(
            html.escape(
                " | ".join(
                    part
                    for part in (
                        summary.get("event"),
                        document.status,
                        document.msg_type,
                        summary.get("area_desc"),
                    )
                    if part
                )
            )
        )
        entry.enclosure(
            document_url(settings, document.identifier), str(document.size), "application/cap+xml"
        )
    body: bytes = generator.rss_str(pretty=True)
    return body
