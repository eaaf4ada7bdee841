"""The console's tables at a desktop's 1280 px and a phone's 390 px: no word is broken across
lines in any cell (a wide table scrolls in its box instead), and with an alert in every state
on the list, axe-core finds no contrast or other serious violation in the state badges."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from alertd.actor import SYSTEM, Actor
from alertd.alerts import services
from alertd.alerts.models import Alert
from alertd.context import Context
from alertd.db import utcnow
from config import defaults
from tests.support.browser import _login, _logout, axe_violations, screenshot
from tests.support.factories import alert_body

# The operator's webhook and SMS pages exist with those channels enabled (the default set).
pytestmark = [pytest.mark.browser, pytest.mark.channels(*defaults.CHANNELS.split(","))]

WIDTHS = (1280, 390)

# Every word of every table cell, and the words whose boxes sit on more than one line.
BROKEN_WORDS = """
const broken = [];
for (const cell of document.querySelectorAll('td, th')) {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const m of node.data.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const lines = new Set([...range.getClientRects()].filter(r => r.width > 0)
        .map(r => Math.round(r.top)));
      if (lines.size > 1) broken.push(m[0]);
    }
  }
}
return [broken, document.querySelectorAll('td').length];
"""


def _every_state(ctx: Context, officer: Actor, supervisor: Actor) -> dict[str, int]:
    ids: dict[str, int] = {}
    for state in ("draft", "pending", "active", "resolved", "cancelled", "expired"):
        alert = services.create_alert(ctx, alert_body(), by=officer)
        ids[state] = alert.id
        if state == "draft":
            continue
        services.submit_alert(ctx, alert.id, by=officer)
        if state == "pending":
            continue
        services.approve_alert(ctx, alert.id, by=supervisor)
        if state == "resolved":
            services.resolve_alert(ctx, alert.id, "Found safe.", by=supervisor)
        elif state == "cancelled":
            services.cancel_alert(ctx, alert.id, "Entered in error.", by=supervisor)
        elif state == "expired":
            with ctx.db.transaction() as session:
                session.execute(
                    update(Alert)
                    .where(Alert.id == alert.id)
                    .values(expires_at=utcnow() - timedelta(minutes=1))
                )
            services.expire_alert(ctx, alert.id, by=SYSTEM)
    return ids


def test_table_words_stay_whole_and_badges_pass_axe_at_desktop_and_phone_widths(
    server: str,
    browser: Any,
    ctx: Context,
    officer: Actor,
    supervisor: Actor,
    operator: Actor,
    admin: Actor,
) -> None:
    ids = _every_state(ctx, officer, supervisor)
    pages = {
        "supervisor1": ["/", f"/alerts/{ids['active']}", f"/alerts/{ids['expired']}"],
        "operator1": ["/webhooks/", "/sms/subscribers"],
        "admin1": ["/users"],
    }
    problems: list[Any] = []
    for username, paths in pages.items():
        _login(browser, server, username)
        for width in WIDTHS:
            browser.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 800},
            )
            for path in paths:
                browser.get(server + path)
                broken, cells = browser.execute_script(BROKEN_WORDS)
                if broken:
                    problems.append((width, path, broken))
                violations = axe_violations(browser)
                if violations:
                    problems.append((width, path, violations))
                if path == "/":
                    # Every state's badge is on the list, so axe checked each one's contrast.
                    for state in ids:
                        assert browser.find_elements("css selector", f".state-{state}"), state
                    assert cells > 0
                    screenshot(browser, f"alert-list-every-state-{width}")
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        _logout(browser)
    assert problems == [], problems
