"""The browser tests' fixtures: a live server and a headless Chromium (tests/support/browser.py)."""

from tests.support.browser import browser, server

__all__ = ["browser", "server"]
