"""A refused form or action lists its errors at the top in the words an officer uses, each
linked to its field; the API keeps its machine paths."""

from __future__ import annotations

import re
from html import unescape

from flask.testing import FlaskClient

from alertd.actor import Actor
from alertd.alerts import services
from alertd.context import Context
from tests.functional.test_api import _token
from tests.functional.test_console import login, raise_through_form
from tests.support.factories import alert_body

MACHINE_PATH = re.compile(r"\w\[\d+\]|criteria\.\w|translations\.\w")


def _summary(page: str) -> list[tuple[str, str]]:
    """(link target, sentence) for each item of the error summary."""
    box = re.search(
        r'<div class="flash error error-summary" id="error-summary".*?</div>', page, re.S
    )
    assert box, page
    return [
        (target, unescape(words))
        for target, words in re.findall(r'<li><a href="([^"]*)">(.*?)</a></li>', box.group(0))
    ]


def test_a_refused_form_lists_each_error_in_words_linked_to_its_field(
    client: FlaskClient, officer: Actor
) -> None:
    login(client, "officer1")

    # The first child slot is left blank, so the body's children[0] is the form's Child 2.
    response = raise_through_form(
        client,
        **{
            "children-0-name": "",
            "children-0-age": "",
            "children-0-sex": "",
            "children-0-height_cm": "",
            "children-0-weight_kg": "",
            "children-0-hair": "",
            "children-0-eyes": "",
            "children-0-clothing": "",
            "children-1-name": "Sam",
            "children-1-age": "seven",
            "vehicles-0-year": "20x4",
            "translations-0-lang": "",
        },
    )

    assert response.status_code == 400
    summary = _summary(response.text)
    assert ("#children-1-age", "Child 2: age must be a whole number") in summary
    assert ("#vehicles-0-year", "Vehicle 1: year must be a whole number") in summary
    assert (
        "#translations-0-lang",
        "Translation 1: language tag: say which language this text is in",
    ) in summary
    # In the order of the page, and every link lands on a field the page has.
    targets = [t for t, _ in summary]
    assert targets.index("#children-1-age") < targets.index("#vehicles-0-year")
    assert targets.index("#vehicles-0-year") < targets.index("#translations-0-lang")
    for target, _ in summary:
        assert f'id="{target[1:]}"' in response.text, target
    assert not any(MACHINE_PATH.search(words) for _, words in summary), summary


def test_a_refused_submit_names_the_age_limit_and_links_to_the_edit_form(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    criteria = {**alert_body()["criteria"], "abduction_confirmed": False}
    body = alert_body(criteria=criteria)
    body["children"][0]["age"] = 25
    alert = services.create_alert(ctx, body, by=officer)
    login(client, "officer1")

    response = client.post(f"/alerts/{alert.id}/submit", data={})

    assert response.status_code == 400
    listed = re.search(r'<ul id="error-list">(.*?)</ul>', response.text, re.S)
    assert listed, response.text
    items = dict(
        (unescape(words), target)
        for target, words in re.findall(r'<a href="([^"]*)">(.*?)</a>', listed.group(1))
    )
    edit = f"/alerts/{alert.id}/edit"
    assert items["Child 1: age 25 is above 17, the limit for US DOJ alerts"] == (
        f"{edit}#children-0-age"
    )
    unticked = (
        "Criteria checklist: “Law enforcement confirms or reasonably believes an abduction has "
        "occurred” is not ticked, and the plan requires it"
    )
    assert items[unticked] == f"{edit}#criteria-abduction_confirmed"
    assert not MACHINE_PATH.search(listed.group(1))
    # The link lands on the field in the edit form.
    assert 'id="children-0-age"' in client.get(edit).text


def test_the_api_keeps_its_machine_paths(client: FlaskClient, ctx: Context, officer: Actor) -> None:
    body = alert_body()
    body["children"][0]["age"] = 25
    alert = services.create_alert(ctx, body, by=officer)

    response = client.post(f"/api/v1/alerts/{alert.id}/submit", headers=_token(ctx, officer))

    assert response.status_code == 400
    fields = response.get_json()["fields"]
    assert fields["children[0].age"] == "25 is above 17, the limit for US DOJ alerts"
