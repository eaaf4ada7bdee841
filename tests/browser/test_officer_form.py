"""The officer's form in a real Chromium: a refused form opens at its error summary, whose
links put the cursor in the field at fault; the criteria checklist follows the plan as it is
chosen, without a save; entries are added and removed by buttons that redraw the form and keep
what was typed; axe-core finds nothing serious on any of them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from alertd.actor import Actor
from alertd.alerts.models import Alert
from alertd.context import Context
from tests.support.browser import (
    _button,
    _by_id,
    _login,
    _submit_and_wait,
    axe_violations,
    screenshot,
)

pytestmark = pytest.mark.browser


def _focused_id(driver: Any) -> str:
    return str(driver.execute_script("return document.activeElement.id;"))


def test_the_error_summary_leads_to_each_field_in_officer_words(
    server: str, browser: Any, ctx: Context, officer: Actor
) -> None:
    # given: a form with an age the service cannot read, in the second child slot
    _login(browser, server, "officer1")
    browser.get(f"{server}/alerts/new")
    _by_id(browser, "children-1-name").send_keys("Sam")
    _by_id(browser, "children-1-age").send_keys("seven")
    _by_id(browser, "vehicles-0-year").send_keys("20x4")

    # when
    _submit_and_wait(browser, _button(browser, "Save draft"))

    # then: the page opens at the summary, which names the fields as the form does
    summary = _by_id(browser, "error-summary")
    assert _focused_id(browser) == "error-summary"
    links = {a.text: a for a in summary.find_elements("css selector", "a")}
    assert "Child 2: age must be a whole number" in links, list(links)
    assert "Vehicle 1: year must be a whole number" in links, list(links)
    assert not any("[" in text or "criteria." in text for text in links)
    assert axe_violations(browser) == []
    screenshot(browser, "form-error-summary")

    links["Child 2: age must be a whole number"].click()
    assert _focused_id(browser) == "children-1-age"
    assert browser.execute_script("return location.hash;") == "#children-1-age"
    with ctx.db.session() as session:
        assert session.execute(select(Alert)).first() is None


def test_the_checklist_follows_the_plan_without_a_save(
    server: str, browser: Any, ctx: Context, officer: Actor
) -> None:
    _login(browser, server, "officer1")
    browser.get(f"{server}/alerts/new")
    us, eu = _by_id(browser, "checklist-us-doj"), _by_id(browser, "checklist-eu")
    assert us.is_displayed() and not eu.is_displayed()
    # The no-script button is not needed here.
    assert not _by_id(browser, "show-plan").is_displayed()

    # when: the EU plan is chosen
    browser.execute_script("window.__samePage = true;")
    plan = _by_id(browser, "jurisdiction")
    plan.find_element("css selector", "option[value=eu]").click()

    # then: its checklist is shown at once, on the same page
    assert eu.is_displayed() and not us.is_displayed()
    assert browser.execute_script("return window.__samePage === true;")
    assert "Publishing the alert will not increase the risk to the child" in eu.text
    assert axe_violations(browser) == []

    # and what is ticked there is what is saved
    _by_id(browser, "plan-eu-criteria-no_added_risk").click()
    _by_id(browser, "children-0-name").send_keys("Jane Doe")
    _submit_and_wait(browser, _button(browser, "Save draft"))
    assert _by_id(browser, "alert-state").text.lower() == "draft"
    with ctx.db.session() as session:
        alert = session.execute(select(Alert)).scalar_one()
        assert alert.jurisdiction == "eu"
        assert alert.content["criteria"]["no_added_risk"] is True
        assert "ncic_entered" not in alert.content["criteria"]


def test_children_are_added_and_removed_and_what_was_typed_is_kept(
    server: str, browser: Any, ctx: Context, officer: Actor
) -> None:
    _login(browser, server, "officer1")
    browser.get(f"{server}/alerts/new")
    _by_id(browser, "children-0-name").send_keys("Jane Doe")
    _by_id(browser, "children-1-name").send_keys("Sam Doe")
    _by_id(browser, "vehicles-0-plate").send_keys("6WCU986")

    # when: a third child is added
    _submit_and_wait(browser, _by_id(browser, "add-children"))

    # then: the form is redrawn with a third, empty entry, nothing saved, nothing lost
    assert _by_id(browser, "children-2-name").get_attribute("value") == ""
    assert _by_id(browser, "children-1-name").get_attribute("value") == "Sam Doe"
    assert _by_id(browser, "vehicles-0-plate").get_attribute("value") == "6WCU986"
    assert axe_violations(browser) == []
    _by_id(browser, "children-2-name").send_keys("Ann Doe")

    # when: the first child is removed
    _submit_and_wait(browser, _button(browser, "Remove child 1"))

    # then: the others move up, numbered afresh
    assert _by_id(browser, "children-0-name").get_attribute("value") == "Sam Doe"
    assert _by_id(browser, "children-1-name").get_attribute("value") == "Ann Doe"
    assert "Jane Doe" not in browser.page_source
    with ctx.db.session() as session:
        assert session.execute(select(Alert)).first() is None

    # and the draft saved from there has those two children
    _submit_and_wait(browser, _button(browser, "Save draft"))
    assert _by_id(browser, "alert-state").text.lower() == "draft"
    with ctx.db.session() as session:
        alert = session.execute(select(Alert)).scalar_one()
        assert [c["name"] for c in alert.content["children"]] == ["Sam Doe", "Ann Doe"]
