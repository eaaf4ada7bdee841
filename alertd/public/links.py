"""Public addresses, built from ``ALERTD_PUBLIC_URL``: the one place that knows their shape."""

from __future__ import annotations

from alertd.settings import Settings


def base_url(settings: Settings) -> str:
    return settings.PUBLIC_URL.rstrip("/")


def public_page_path(public_id: str) -> str:
    # /a/ rather than /alerts/: every character counts in a text message.
    return f"/a/{public_id}"


def public_page_url(settings: Settings, public_id: str) -> str:
    return base_url(settings) + public_page_path(public_id)
