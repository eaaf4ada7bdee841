"""The console in a real headless Chromium, against a real HTTP server with CSRF on: the forms
work without JavaScript, and the alert page fits a phone screen."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from alertd.actor import Actor
from alertd.alerts.models import Alert
from alertd.context import Context
from alertd.web.app import create_app
from tests.support.factories import PASSWORD, png_bytes

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PHONE_WIDTH = 375


@pytest.fixture
def server(ctx: Context) -> Iterator[str]:
    app = create_app(context=ctx, test_config={"TESTING": True})  # CSRF stays on.
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        httpd.server_close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    if not CHROMIUM.exists() or not (CHROMEDRIVER.exists() or shutil.which("chromedriver")):
        pytest.skip("Chromium is not installed: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1200,900",
    ):
        options.add_argument(flag)
    # Naming the driver keeps Selenium Manager from looking for (or downloading) one.
    driver_path = CHROMEDRIVER if CHROMEDRIVER.exists() else shutil.which("chromedriver")
    service = webdriver.ChromeService(executable_path=str(driver_path))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, condition: Any, timeout: float = 15) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _by_id(driver: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def _button(driver: Any, text: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.XPATH, f"//button[normalize-space()='{text}']")


def _submit_and_wait(driver: Any, element: Any) -> None:
    """Click something that submits a form and wait for the next page to replace this one.

    A marker set on the old page's window is gone once the new page has loaded. (Waiting for
    the clicked element to go stale is racy: mid-navigation chromedriver can answer with an
    inspector error instead of "stale".)"""
    from selenium.common.exceptions import WebDriverException

    driver.execute_script("window.__alertdOldPage = true;")
    element.click()

    def new_page_loaded(d: Any) -> bool:
        try:
            return bool(
                d.execute_script(
                    "return window.__alertdOldPage === undefined"
                    " && document.readyState === 'complete';"
                )
            )
        except WebDriverException:
            return False  # Still navigating.

    _wait(driver, new_page_loaded)


def _login(driver: Any, base: str, username: str) -> None:
    driver.get(f"{base}/login")
    _by_id(driver, "username").send_keys(username)
    _by_id(driver, "password").send_keys(PASSWORD)
    _submit_and_wait(driver, _button(driver, "Sign in"))
    assert username in driver.page_source, driver.page_source


def _logout(driver: Any) -> None:
    _submit_and_wait(driver, _button(driver, "Sign out"))
    assert "/login" in driver.current_url


def _fill(driver: Any, values: dict[str, str]) -> None:
    for element_id, value in values.items():
        field = _by_id(driver, element_id)
        field.clear()
        field.send_keys(value)


def _no_horizontal_scroll(driver: Any) -> tuple[int, int]:
    widths: tuple[int, int] = tuple(
        driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth];")
    )
    return widths


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
