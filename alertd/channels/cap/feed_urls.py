"""Where the CAP documents and the feeds are (the same paths under ALERTD_FEED_DIR), and what a
feed is called."""

from __future__ import annotations

from urllib.parse import quote

from alertd.channels.cap.feed_live import PUBLIC, TEST
from alertd.public.links import base_url
from alertd.settings import Settings


def document_path(identifier: str) -> str:
    # Identifiers never hold spaces, commas, < or & (CAP 1.2 section 3.2.1); quoting the rest
    # keeps the URL and the static file name the same string.
    return f"/cap/{quote(identifier, safe='@.-_~+')}.xml"


def document_url(settings: Settings, identifier: str) -> str:
    return base_url(settings) + document_path(identifier)


def feed_path(scope: str, name: str) -> str:
    return f"/feeds/{name}" if scope == PUBLIC else f"/feeds/test/{name}"


def feed_title(settings: Settings, scope: str) -> str:
    name = settings.CAP_SENDER_NAME
    return f"{name}: child abduction alerts" + (" (exercises and tests)" if scope == TEST else "")
