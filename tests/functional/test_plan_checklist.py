"""The criteria checklist follows the chosen plan without a save: every plan's list is on the
form, only the chosen one shown and sent; without script, a button redraws the form with the
plan's list, saving nothing and keeping what was typed."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from alertd.actor import Actor
from alertd.context import Context
from tests.functional.test_console import login, only_alert, only_alert_count, raise_form


def _checklist(page: str, plan: str) -> str:
    found = re.search(
        rf'<fieldset class="plan-checklist" data-plan="{plan}" id="checklist-{plan}"([^>]*)>',
        page,
    )
    assert found, plan
    return found.group(1)


def test_every_plans_checklist_is_on_the_form_and_only_the_chosen_one_is_sent(
    client: FlaskClient, officer: Actor
) -> None:
    login(client, "officer1")

    page = client.get("/alerts/new").text

    assert _checklist(page, "us-doj") == ""  # the default plan: shown, enabled
    assert _checklist(page, "eu") == " hidden disabled"
    # The chosen plan's boxes carry the ids the error summary links to; the others do not clash.
    assert 'id="criteria-minor"' in page and 'id="plan-eu-criteria-minor"' in page
    assert 'id="plan-eu-criteria-no_added_risk"' in page
    assert '<script src="/static/form.js"' in page


def test_without_script_the_button_redraws_the_form_with_the_plans_checklist_unsaved(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    login(client, "officer1")
    form = raise_form(jurisdiction="eu", show_plan="1")

    response = client.post("/alerts/new", data=form)

    assert response.status_code == 200
    assert only_alert_count(ctx) == 0  # Nothing saved, nothing refused.
    assert 'id="error-summary"' not in response.text
    assert _checklist(response.text, "eu") == ""
    assert _checklist(response.text, "us-doj") == " hidden disabled"
    # What was typed is kept, including boxes the two plans share.
    assert 'value="Jane Doe"' in response.text
    assert re.search(r'id="criteria-minor" name="criteria-minor" value="y" checked', response.text)
    assert 'id="criteria-no_added_risk"' in response.text

    # Saved with the EU plan, only its boxes count.
    form.pop("show_plan")
    form["criteria-no_added_risk"] = "y"
    saved = client.post("/alerts/new", data=form)
    assert saved.status_code == 302, saved.text
    criteria = only_alert(ctx).content["criteria"]
    assert set(criteria) == {
        "minor",
        "abduction_confirmed",
        "imminent_danger",
        "sufficient_description",
        "no_added_risk",
        "parents_consulted",
    }
    assert criteria["no_added_risk"] is True and criteria["parents_consulted"] is False


def test_enter_in_a_field_saves_rather_than_redraws(client: FlaskClient, officer: Actor) -> None:
    login(client, "officer1")
    page = client.get("/alerts/new").text
    form = page[page.index('<form method="post"') :]

    first = re.search(r"<button[^>]*>[^<]*</button>", form)

    # Implicit submission uses the first submit button: it must not be "show_plan".
    assert first and 'name="show_plan"' not in first.group(0), first
