"""The console in a real headless Chromium, against a real HTTP server with CSRF on: the forms
work without JavaScript, and the alert page fits a phone screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from alertd.actor import Actor
from alertd.alerts.models import Alert
from alertd.context import Context
from tests.support.browser import (
    PHONE_WIDTH,
    _button,
    _by_id,
    _fill,
    _login,
    _logout,
    _no_horizontal_scroll,
    _submit_and_wait,
)
from tests.support.factories import png_bytes

pytestmark = pytest.mark.browser


def test_officer_raises_supervisor_approves_and_the_page_fits_a_phone(
    server: str, browser: Any, ctx: Context, officer: Actor, supervisor: Actor, tmp_path: Path
) -> None:
    photo = tmp_path / "jane.png"
    photo.write_bytes(png_bytes(64, 64))

    _login(browser, server, "officer1")
    browser.get(f"{server}/alerts/new")
    _fill(
        browser,
        {
            "case_reference": "NCIC-2026-000123",
            "children-0-name": "Jane Doe",
            "children-0-age": "7",
            "children-0-clothing": "red raincoat",
            "vehicles-0-make": "Nissan",
            "vehicles-0-model": "Versa",
            "vehicles-0-colour": "blue",
            "vehicles-0-plate": "6WCU986",
            "last_seen_place": "Main St & 3rd Ave, Springfield",
            "tip_line": "+1 800 555 0199",
            "description": "Jane was taken from a playground.",
            "instruction": "Call the tip line. Do not approach.",
            "areas-0-description": "Springfield County",
            "areas-0-geocodes": "SAME=006037",
            "areas-0-polygon": "34.0,-118.5 34.2,-118.5 34.2,-118.2",
            # Two languages: English, and Spanish with its own texts.
            "languages": "en-US, es-US",
            "translations-0-lang": "es-US",
            "translations-0-description": "Jane fue secuestrada en un parque.",
            "translations-0-instruction": "Llame a la línea de información. No se acerque.",
        },
    )
    for key in ("minor", "abduction_confirmed", "imminent_danger", "sufficient_description"):
        _by_id(browser, f"criteria-{key}").click()
    _by_id(browser, "photo").send_keys(str(photo))
    _submit_and_wait(browser, _button(browser, "Save draft"))
    assert "saved" in browser.page_source, browser.page_source
    assert _by_id(browser, "alert-state").text == "DRAFT"  # Shown in capitals by CSS.

    _submit_and_wait(browser, _button(browser, "Submit for approval"))
    assert _by_id(browser, "alert-state").text.lower() == "pending"
    alert_url = browser.current_url
    _logout(browser)

    _login(browser, server, "supervisor1")
    browser.get(alert_url)
    assert "CHILD ABDUCTION ALERT. Jane Doe, 7" in browser.page_source
    _submit_and_wait(browser, _button(browser, "Approve and publish"))
    assert _by_id(browser, "alert-state").text.lower() == "active"
    first_row = [
        cell.text
        for cell in _by_id(browser, "versions").find_elements(
            "css selector", "tbody tr:first-child td"
        )
    ]
    assert first_row[0] == "1" and first_row[2] == "Alert", first_row
    with ctx.db.session() as session:
        alert = session.execute(select(Alert)).scalar_one()
        assert (alert.state, alert.photo_id is not None) == ("active", True)
        assert alert.content["languages"] == ["en-US", "es-US"]
        assert alert.content["translations"]["es-US"]["description"].startswith("Jane fue")

    # A phone: 375 CSS pixels wide, as the page's viewport meta tag asks to be laid out.
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": PHONE_WIDTH, "height": 812, "deviceScaleFactor": 2, "mobile": True},
    )
    for path in (alert_url, f"{server}/", f"{server}/users"):
        browser.get(path)
        scroll_width, inner_width = _no_horizontal_scroll(browser)
        assert inner_width == PHONE_WIDTH
        assert scroll_width <= inner_width, (path, scroll_width, inner_width)
    browser.get(alert_url)
    shot = tmp_path / "alert-375.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 1000
    _logout(browser)
    _login(browser, server, "officer1")
    # The narrowest phones in use are 360 CSS pixels wide; the longest page must fit them too.
    for width in (PHONE_WIDTH, 360):
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 800, "deviceScaleFactor": 2, "mobile": True},
        )
        for path in (f"{server}/alerts/new", alert_url):
            browser.get(path)
            scroll_width, inner_width = _no_horizontal_scroll(browser)
            assert scroll_width <= inner_width == width, (path, scroll_width, inner_width)
