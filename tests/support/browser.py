"""Driving the console in a real headless Chromium: a live HTTP server with CSRF on, the
browser, waiting for pages, and axe-core's accessibility check."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from alertd.context import Context
from alertd.settings import REPO_ROOT
from alertd.web.app import create_app
from tests.support.factories import PASSWORD

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


AXE = REPO_ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
# Screenshots land here (CI keeps the folder); one is committed under docs/ for the README.
SCREENSHOTS = REPO_ROOT / "build" / "screenshots"


def axe_violations(driver: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the current page."""
    if not AXE.exists():
        pytest.skip("axe-core is not installed: npm ci --prefix tests/browser")
    driver.execute_script(AXE.read_text())
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))))"
        ".catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));"
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def screenshot(driver: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    assert driver.save_screenshot(str(path))
    return path
