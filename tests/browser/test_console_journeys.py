"""Journeys an officer and a supervisor make under stress, in a real Chromium: a double-click
that acts once, delivery progress that moves without a reload, an extension and a cancel, and
no serious or critical axe-core violation on the pages they pass through."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Alert, Version
from alertd.broker import RecordingPublisher
from alertd.context import Context
from alertd.web.app import create_app
from tests.support.browser import (
    _button,
    _by_id,
    _login,
    _submit_and_wait,
    _wait,
    axe_violations,
    screenshot,
)
from tests.support.factories import alert_body, png_bytes
from tests.support.tasks import run_pending_tasks

pytestmark = pytest.mark.browser

SLOW_POST_SECONDS = 0.4
DOUBLE_CLICK_GAP_MS = 150


class PostCounter:
    """WSGI middleware counting the POSTs that reach the app, by path: proof that a
    double-click really sent the form twice. Each POST is held a moment first, as a busy
    server would, so the second click lands while the first request is still out."""

    def __init__(self, app: Any) -> None:
        self.app, self.posts, self.lock = app, [], threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "POST":
            with self.lock:
                self.posts.append(environ["PATH_INFO"])
            time.sleep(SLOW_POST_SECONDS)
        return self.app(environ, start_response)


@pytest.fixture
def counted(ctx: Context) -> Iterator[tuple[str, PostCounter]]:
    app = create_app(context=ctx, test_config={"TESTING": True})  # CSRF stays on.
    counter = PostCounter(app.wsgi_app)
    app.wsgi_app = counter  # type: ignore[method-assign]
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", counter
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        httpd.server_close()


def _kinds(ctx: Context, alert_id: int) -> list[str]:
    with ctx.db.session() as session:
        return list(
            session.execute(
                select(Version.kind).where(Version.alert_id == alert_id).order_by(Version.seq)
            ).scalars()
        )


def _double_click(driver: Any, element: Any) -> None:
    """Two clicks a human double-click apart. (A synthetic double-click's two clicks come in
    the same instant, and Chromium folds two submissions that close into one request.)"""
    driver.execute_script(
        "window.__alertdOldPage = true; const button = arguments[0];"
        "button.click(); setTimeout(() => button.click(), arguments[1]);",
        element,
        DOUBLE_CLICK_GAP_MS,
    )

    def new_page(d: Any) -> bool:
        try:
            return bool(
                d.execute_script(
                    "return window.__alertdOldPage === undefined"
                    " && document.readyState === 'complete';"
                )
            )
        except Exception:  # Still navigating.
            return False

    _wait(driver, new_page)


def _no_serious_violations(driver: Any) -> None:
    found = axe_violations(driver)
    assert found == [], (driver.current_url, found)


def test_double_clicks_act_once_progress_moves_live_and_cancel_ends_it(
    counted: tuple[str, PostCounter],
    browser: Any,
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
) -> None:
    base, counter = counted
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    page = f"{base}/alerts/{alert.id}"
    _login(browser, base, "supervisor1")
    browser.get(page)
    _no_serious_violations(browser)

    # Approve, double-clicked: the form goes twice, the alert is approved once, said once.
    _double_click(browser, _button(browser, "Approve and publish"))
    approve_posts = counter.posts.count(f"/alerts/{alert.id}/approve")
    assert _kinds(ctx, alert.id) == ["alert"]
    assert browser.page_source.count("Approved. The alert is active") == 1
    assert _by_id(browser, "alert-state").text.lower() == "active"

    # Progress moves without a reload: the workers' part runs while the page stays open.
    assert "Waiting for a worker" in _by_id(browser, "progress").text
    browser.execute_script("window.__samePage = true;")
    run_pending_tasks(ctx, publisher)
    _wait(
        browser,
        lambda d: "finished" in d.find_element("css selector", '[data-channel="log"]').text,
        timeout=10,
    )
    assert browser.execute_script("return window.__samePage === true;"), "the page reloaded"
    assert "not yet" not in _by_id(browser, "versions").text
    _no_serious_violations(browser)
    browser.execute_script("document.getElementById('versions').scrollIntoView();")
    screenshot(browser, "alert-progress")

    # Extend, double-clicked: one extension, one update version.
    _double_click(browser, _button(browser, "Extend by 60 minutes"))
    extend_posts = counter.posts.count(f"/alerts/{alert.id}/extend")
    assert _kinds(ctx, alert.id) == ["alert", "extend"]
    assert browser.page_source.count("Extended by 60 minutes") == 1
    # Both double-clicks really sent the form twice, or this test proves nothing.
    assert (approve_posts, extend_posts) == (2, 2), counter.posts

    # Cancel, with its reason.
    _by_id(browser, "cancel-reason").send_keys("Found safe; entered in error.")
    _submit_and_wait(browser, _button(browser, "Cancel alert"))
    assert _by_id(browser, "alert-state").text.lower() == "cancelled"
    assert _kinds(ctx, alert.id) == ["alert", "extend", "cancel"]
    _no_serious_violations(browser)


def test_a_supervisor_reviews_an_update_as_a_readable_diff_and_approves_it(
    server: str, browser: Any, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    # given: a live alert and an officer's update that changes the vehicle and the English
    # description but forgets the Spanish one
    original = alert_body()
    alert = services.create_alert(ctx, original, by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)
    body = copy.deepcopy(original)
    body["description"] = "Jane was last seen getting into a grey van."
    body["vehicles"][0].update(colour="grey", plate="7XYZ123")
    services.propose_update(ctx, alert.id, body, by=officer)

    # when
    _login(browser, server, "supervisor1")
    browser.get(f"{server}/alerts/{alert.id}")

    # then: labelled rows, old and new in words, the stale translation named
    rows = [
        [cell.text for cell in row.find_elements("css selector", "th, td")]
        for row in _by_id(browser, "proposal-changes").find_elements("css selector", "tr")
    ]
    assert ["Vehicle 1: colour", "blue", "grey"] in rows
    assert ["Vehicle 1: plate", "6WCU986", "7XYZ123"] in rows
    assert "es-US description was not updated" in _by_id(browser, "stale-translations").text
    _no_serious_violations(browser)
    browser.execute_script("document.getElementById('proposal-heading').scrollIntoView();")
    screenshot(browser, "update-review")
    _submit_and_wait(browser, _button(browser, "Approve update"))
    assert _kinds(ctx, alert.id) == ["alert", "update"]


def test_an_error_keeps_the_photo_in_the_browser(
    server: str, browser: Any, ctx: Context, officer: Actor, tmp_path: Any
) -> None:
    # given: the raise form filled with a photo and an age the form cannot read
    photo = tmp_path / "jane.png"
    photo.write_bytes(png_bytes(64, 64))
    _login(browser, server, "officer1")
    browser.get(f"{server}/alerts/new")
    for element_id, value in {
        "case_reference": "NCIC-2026-000777",
        "children-0-name": "Jane Doe",
        "children-0-age": "seven",
        "tip_line": "+1 800 555 0199",
    }.items():
        _by_id(browser, element_id).send_keys(value)
    _by_id(browser, "photo").send_keys(str(photo))

    # when
    _submit_and_wait(browser, _button(browser, "Save draft"))

    # then: refused, the photo kept; corrected and saved without choosing it again
    assert "Photo kept" in _by_id(browser, "photo-kept").text
    _no_serious_violations(browser)
    age = _by_id(browser, "children-0-age")
    age.clear()
    age.send_keys("7")
    _submit_and_wait(browser, _button(browser, "Save draft"))
    assert _by_id(browser, "alert-state").text.lower() == "draft"
    with ctx.db.session() as session:
        [alert] = session.execute(select(Alert)).scalars()
        assert alert.photo_id is not None


def test_an_oversized_photo_is_refused_in_the_form_keeping_what_was_typed(
    server: str, browser: Any, ctx: Context, officer: Actor, tmp_path: Any
) -> None:
    # given: a limit the page states, and a file over it
    ctx.settings = ctx.settings.with_overrides(MAX_PHOTO_BYTES=2_000_000)
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + bytes(2_100_000))
    _login(browser, server, "officer1")
    browser.get(f"{server}/alerts/new")
    assert "at most 2 MB" in browser.find_element("css selector", "label[for=photo]").text
    _by_id(browser, "children-0-name").send_keys("Jane Doe")

    # when
    _by_id(browser, "photo").send_keys(str(big))
    browser.execute_script("window.__samePage = true;")
    _button(browser, "Save draft").click()

    # then: nothing was sent; the message is in the form and the typing is still there
    message = _by_id(browser, "photo-too-large").text
    assert "the limit is 2.0 MB" in message, message
    assert browser.execute_script("return window.__samePage === true;")
    assert _by_id(browser, "children-0-name").get_attribute("value") == "Jane Doe"
    with ctx.db.session() as session:
        assert session.execute(select(Alert)).first() is None
