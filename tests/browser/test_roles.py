"""Every role through the real console in Chromium: each does what it may, and is refused what it
may not (the button is absent, and a hand-made submission with a valid CSRF token is answered
with the 403 page and changes nothing); axe-core finds no serious or critical violation on any
page a role, or the public, can reach, error pages included. Screenshots: build/screenshots/."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from alertd.accounts.models import User
from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Alert, Version
from alertd.channels.sms.models import Subscriber
from alertd.context import Context
from config import defaults
from tests.support.browser import (
    _button,
    _by_id,
    _fill,
    _login,
    _logout,
    _submit_and_wait,
    axe_violations,
    screenshot,
)
from tests.support.factories import alert_body, png_bytes

# The navigation of the default channel set: the operator's webhook and SMS pages among it.
pytestmark = [pytest.mark.browser, pytest.mark.channels(*defaults.CHANNELS.split(","))]

# What each role's navigation offers; every one must load (not an error page) and pass axe.
PAGES = {
    "officer": ["/", "/alerts/new", "/alerts/{id}", "/account"],
    "supervisor": ["/", "/?state=pending", "/alerts/{id}", "/account"],
    "operator": [
        "/",
        "/alerts/{id}",
        "/webhooks/",
        "/webhooks/alerts/{id}",
        "/sms/subscribers",
        "/sms/texts",
        "/sms/alerts/{id}",
        "/account",
    ],
    "admin": ["/", "/alerts/{id}", "/users", "/sms/subscribers", "/account"],
}
# What each role may not open: the 403 page, which must pass axe too.
REFUSED = {
    "officer": ["/users", "/webhooks/", "/sms/subscribers"],
    "supervisor": ["/users", "/alerts/new", "/webhooks/"],
    "operator": ["/users", "/alerts/new"],
    "admin": ["/alerts/new", "/webhooks/"],
}


def _heading(driver: Any) -> str:
    return str(driver.find_element("tag name", "h1").text)


def _axe_clean(driver: Any, found: list[tuple[str, Any]]) -> None:
    violations = axe_violations(driver)
    if violations:
        found.append((driver.current_url, violations))


def _forge_post(driver: Any, action: str, fields: dict[str, str] | None = None) -> None:
    """Submit a form the page does not offer, carrying the page's own CSRF token: what a user
    who edits the HTML, or replays a request, could send. The server must refuse it."""
    driver.execute_script(
        "const form = document.createElement('form');"
        "form.method = 'post'; form.action = arguments[0];"
        "const token = document.querySelector('input[name=csrf_token]');"
        "const add = (n, v) => { const i = document.createElement('input');"
        " i.type = 'hidden'; i.name = n; i.value = v; form.appendChild(i); };"
        "if (token) add('csrf_token', token.value);"
        "for (const [n, v] of Object.entries(arguments[1])) add(n, v);"
        "document.body.appendChild(form); window.__alertdOldPage = true; form.submit();",
        action,
        fields or {},
    )
    from tests.support.browser import _wait

    _wait(
        driver,
        lambda d: d.execute_script(
            "return window.__alertdOldPage === undefined && document.readyState === 'complete';"
        ),
    )


def _live_alert(ctx: Context, officer: Actor, supervisor: Actor) -> Alert:
    alert = services.create_alert(ctx, alert_body(), by=officer, photo=png_bytes(60, 80))
    services.submit_alert(ctx, alert.id, by=officer)
    return services.approve_alert(ctx, alert.id, by=supervisor)


def _state(ctx: Context, alert_id: int) -> tuple[str, int]:
    with ctx.db.session() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        versions = session.execute(
            select(func.count()).select_from(Version).where(Version.alert_id == alert_id)
        ).scalar_one()
        return alert.state, int(versions)


def test_no_page_any_role_or_the_public_reaches_has_a_serious_axe_violation(
    server: str,
    browser: Any,
    ctx: Context,
    officer: Actor,
    supervisor: Actor,
    operator: Actor,
    admin: Actor,
) -> None:
    live = _live_alert(ctx, officer, supervisor)
    found: list[tuple[str, Any]] = []

    # The public: the sign-in page, the alert page, and the error pages anyone can meet.
    for path in ("/login", f"/a/{live.public_id}"):
        browser.get(server + path)
        _axe_clean(browser, found)
    screenshot(browser, "public-page-desktop")
    browser.get(f"{server}/no-such-page")
    assert _heading(browser).startswith("404")
    _axe_clean(browser, found)
    screenshot(browser, "error-404")

    for role, pages in PAGES.items():
        _login(browser, server, f"{role}1")
        for path in pages:
            browser.get(server + path.format(id=live.id))
            assert not _heading(browser)[:3].isdigit(), (role, path, _heading(browser))
            _axe_clean(browser, found)
        for path in REFUSED[role]:
            browser.get(server + path)
            assert _heading(browser).startswith("403"), (role, path, _heading(browser))
            _axe_clean(browser, found)
        if role == "officer":
            screenshot(browser, "error-403")
            browser.get(f"{server}/logout")  # A page only posted to.
            assert _heading(browser).startswith("405")
            _axe_clean(browser, found)
            screenshot(browser, "error-405")
            # A form sent without its CSRF token, and a body over the size limit.
            browser.get(f"{server}/account")
            browser.execute_script(
                "document.querySelectorAll('input[name=csrf_token]').forEach(i => i.remove());"
            )
            _forge_post(browser, "/account/password", {"current_password": "x"})
            assert _heading(browser).startswith("400")
            _axe_clean(browser, found)
            screenshot(browser, "error-400")
            browser.get(f"{server}/account")
            _forge_post(browser, "/account/password", {"filler": "x" * (_max_body(ctx) + 1)})
            assert _heading(browser).startswith("413")
            _axe_clean(browser, found)
            screenshot(browser, "error-413")
        browser.get(f"{server}/")
        screenshot(browser, f"alert-list-{role}")
        _logout(browser)

    assert found == [], found


def _max_body(ctx: Context) -> int:
    return int(ctx.settings.MAX_PHOTO_BYTES * 4 // 3 + 1_000_000)


def test_an_officer_raises_and_submits_but_may_not_approve_or_cancel(
    server: str, browser: Any, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    _login(browser, server, "officer1")
    browser.get(f"{server}/alerts/{alert.id}")
    _submit_and_wait(browser, _button(browser, "Submit for approval"))
    assert _by_id(browser, "alert-state").text.lower() == "pending"
    assert "Approve and publish" not in browser.page_source
    assert "Cancel alert" not in browser.page_source
    screenshot(browser, "officer-submitted")

    _forge_post(browser, f"/alerts/{alert.id}/approve")

    assert "403" in _heading(browser) or "may not" in browser.page_source
    assert _state(ctx, alert.id) == ("pending", 0)


def test_an_operator_extends_and_adds_a_subscriber_but_may_not_approve_or_raise(
    server: str, browser: Any, ctx: Context, officer: Actor, supervisor: Actor, operator: Actor
) -> None:
    live = _live_alert(ctx, officer, supervisor)
    pending = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, pending.id, by=officer)
    _login(browser, server, "operator1")

    # May: extend a live alert, add a subscriber.
    browser.get(f"{server}/alerts/{live.id}")
    assert "Approve and publish" not in browser.page_source
    _submit_and_wait(browser, _button(browser, "Extend by 60 minutes"))
    assert _state(ctx, live.id) == ("active", 2)
    browser.get(f"{server}/sms/subscribers")
    _fill(browser, {"phone": "+1 415 555 0100", "areas": "SAME=006037"})
    _submit_and_wait(browser, _button(browser, "Add subscriber"))
    with ctx.db.session() as session:
        assert session.execute(select(func.count()).select_from(Subscriber)).scalar_one() == 1
    screenshot(browser, "operator-subscribers")

    # May not: approve a pending alert (no button; a forged form is refused), raise one.
    browser.get(f"{server}/alerts/{pending.id}")
    assert "Approve and publish" not in browser.page_source
    _forge_post(browser, f"/alerts/{pending.id}/approve")
    assert "403" in _heading(browser) or "may not" in browser.page_source
    assert _state(ctx, pending.id) == ("pending", 0)
    browser.get(f"{server}/alerts/new")
    assert _heading(browser).startswith("403")
    assert "An operator may not do this." in browser.page_source


def test_an_admin_creates_a_user_but_may_not_touch_an_alert(
    server: str, browser: Any, ctx: Context, officer: Actor, supervisor: Actor, admin: Actor
) -> None:
    live = _live_alert(ctx, officer, supervisor)
    _login(browser, server, "admin1")

    browser.get(f"{server}/users")
    _fill(
        browser,
        {
            "username": "officer9",
            "display_name": "Officer Nine",
            "password": "a long pass phrase 9",
        },
    )
    browser.execute_script("document.getElementById('role').value = 'officer';")
    _submit_and_wait(browser, _button(browser, "Create user"))
    assert "created as an officer" in browser.page_source
    with ctx.db.session() as session:
        assert session.execute(select(User).where(User.username == "officer9")).scalar_one()
    screenshot(browser, "admin-users")

    browser.get(f"{server}/alerts/{live.id}")
    for action in ("Cancel alert", "Extend by 60 minutes", "Resolve"):
        assert action not in browser.page_source
    assert "Nothing for an admin to do in this state." in browser.page_source
    _forge_post(browser, f"/alerts/{live.id}/cancel", {"reason": "admin says so"})
    assert "403" in _heading(browser) or "may not" in browser.page_source
    assert _state(ctx, live.id) == ("active", 1)


def test_the_public_reaches_the_alert_page_and_nothing_of_the_console(
    server: str, browser: Any, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    live = _live_alert(ctx, officer, supervisor)
    browser.get(f"{server}/a/{live.public_id}")
    assert "AMBER ALERT" in browser.find_element("css selector", "[data-state]").text
    for path in ("/", f"/alerts/{live.id}", "/users", "/sms/subscribers", "/webhooks/"):
        browser.get(server + path)
        assert "/login" in browser.current_url, path
        assert "Jane Doe" not in browser.page_source
