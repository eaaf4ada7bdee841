"""The public page on a phone (390 x 844): the first screen carries the banner, the child's
name, age and photo, the vehicle with its plate and a tap-to-call tip line."""

from __future__ import annotations

from typing import Any

import pytest

from alertd.actor import Actor
from alertd.alerts import services
from alertd.context import Context
from tests.support.browser import axe_violations, screenshot
from tests.support.factories import alert_body, png_bytes

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True}


def _bottom(driver: Any, selector: str) -> float:
    rect = driver.execute_script(
        "const r = document.querySelector(arguments[0]).getBoundingClientRect();return r.bottom;",
        selector,
    )
    return float(rect)


def test_the_public_page_leads_with_the_child_and_the_tip_line_on_a_phone(
    server: str, browser: Any, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    # given: a live alert with a portrait photo
    alert = services.create_alert(ctx, alert_body(), by=officer, photo=png_bytes(600, 800))
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)

    # when
    browser.get(f"{server}/a/{alert.public_id}")

    # then: everything that matters is above the fold, each fact once
    first_screen = PHONE["height"]
    for selector in ("[data-state]", ".lead .child", "img.photo", ".lead .vehicle", "#tip-line"):
        assert _bottom(browser, selector) <= first_screen, selector
    tip = browser.find_element("css selector", "#tip-line")
    assert tip.get_attribute("href") == "tel:+18005550199"
    lead = browser.find_element("css selector", ".lead").text
    assert "Jane Doe" in lead and "7" in lead and "6WCU986" in lead
    page = browser.find_element("tag name", "main").text
    assert page.count("6WCU986") == 1
    assert "NCIC-2026-000123" not in browser.find_element("tag name", "h1").text
    assert axe_violations(browser) == []
    screenshot(browser, "public-page-390x844")
    shares = browser.find_elements("css selector", "ul.share a")
    assert [a.text for a in shares] == ["X", "Facebook", "WhatsApp", "Email"]

    # The Spanish page: the same first screen, its words and values in Spanish.
    browser.get(f"{server}/a/{alert.public_id}?lang=es-US")
    for selector in ("[data-state]", ".lead .child", "img.photo", ".lead .vehicle", "#tip-line"):
        assert _bottom(browser, selector) <= first_screen, selector
    assert "ALERTA AMBER" in browser.find_element("css selector", "[data-state]").text
    lead = browser.find_element("css selector", ".lead").text
    assert "7 años" in lead and "Nissan Versa 2014 azul" in lead and "Matrícula" in lead
    assert axe_violations(browser) == []
    screenshot(browser, "public-page-390x844-es")
