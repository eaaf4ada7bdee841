"""The alert form's repeated entries (children, suspects, vehicles, translations and areas) are
WTForms ``FieldList``s: a button adds an entry or removes one, redrawing the form without saving
and keeping everything typed; the entries left are numbered afresh, and the saved body has
exactly the entries that were filled."""

from __future__ import annotations

import io
import re

import pytest
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from alertd.actor import Actor
from alertd.alerts.criteria import load_rule_sets
from alertd.alerts.form_classes import GROUPS
from alertd.alerts.forms import alert_form, parse_form, redrawn
from alertd.context import Context
from alertd.settings import REPO_ROOT
from tests.functional.test_console import login, only_alert, only_alert_count, raise_form
from tests.support.factories import png_bytes

RULE_SETS = load_rule_sets(REPO_ROOT / "config" / "criteria")


def _headings(page: str, noun: str) -> list[str]:
    return re.findall(rf'<h3 id="[a-z]+-\d+">({noun} \d+)</h3>', page)


def test_a_fresh_form_shows_the_default_entries_numbered_by_wtforms(
    client: FlaskClient, officer: Actor
) -> None:
    login(client, "officer1")

    page = client.get("/alerts/new").text

    assert _headings(page, "Child") == ["Child 1", "Child 2"]
    assert _headings(page, "Translation") == ["Translation 1", "Translation 2", "Translation 3"]
    for group, inputs in GROUPS.items():
        for name in inputs:
            assert f'id="{group}-0-{name}" name="{group}-0-{name}"' in page, (group, name)
        assert f'name="add" value="{group}"' in page
    assert 'name="remove" value="children-1"' in page


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_adding_an_entry_redraws_the_form_with_one_more_and_saves_nothing(
    client: FlaskClient, ctx: Context, officer: Actor, group: str
) -> None:
    login(client, "officer1")
    form = raise_form(add=group)
    before = len(alert_form(form)[group].entries)

    response = client.post("/alerts/new", data=form)

    assert response.status_code == 200
    assert only_alert_count(ctx) == 0
    assert 'id="error-summary"' not in response.text
    assert f'id="{group}-{before}-{GROUPS[group][0]}"' in response.text
    assert f'id="{group}-{before + 1}-' not in response.text
    # What was typed is all still there.
    assert 'value="Jane Doe"' in response.text and 'value="6WCU986"' in response.text


def test_removing_an_entry_renumbers_the_rest_and_the_save_has_what_is_left(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    login(client, "officer1")
    form = raise_form(
        **{
            "children-1-name": "Sam Doe",
            "children-1-age": "9",
            "children-2-name": "Ann Doe",
            "children-2-age": "5",
            "remove": "children-0",
        }
    )

    response = client.post("/alerts/new", data=form)

    assert response.status_code == 200
    assert only_alert_count(ctx) == 0
    page = response.text
    assert 'id="children-0-name" name="children-0-name" value="Sam Doe"' in page
    assert 'id="children-1-name" name="children-1-name" value="Ann Doe"' in page
    assert "Jane Doe" not in page
    # The redrawn form, saved as it stands, has the two children left, in order.
    kept = {
        name: value
        for name, value in re.findall(
            r'<input type="text" id="[^"]+" name="([^"]+)" value="([^"]*)"', page
        )
    }
    children_typed = {k: v for k, v in kept.items() if k.startswith("children-")}
    saved = client.post("/alerts/new", data=raise_form(**children_typed))
    assert saved.status_code == 302, saved.text
    children = only_alert(ctx).content["children"]
    assert [c["name"] for c in children] == ["Sam Doe", "Ann Doe"]


def test_blank_entries_are_dropped_and_errors_name_the_entry_the_officer_filled() -> None:
    form = MultiDict(
        raise_form(
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
            }
        )
    )

    parsed = parse_form(form, RULE_SETS)

    assert [c["name"] for c in parsed.body["children"]] == ["Sam"]
    assert parsed.input_name("children[0].age") == "children-1-age"


def test_a_filled_last_entry_gets_a_blank_one_after_it_up_to_the_limit() -> None:
    one = alert_form({"suspects-0-name": "John Roe"})
    assert [e.id for e in one["suspects"]] == ["suspects-0", "suspects-1"]
    full = alert_form({f"suspects-{i}-name": f"S{i}" for i in range(10)})
    assert len(full["suspects"].entries) == 10
    # Adding stops at the limit too.
    assert "suspects-10-name" not in redrawn(
        {f"suspects-{i}-name": f"S{i}" for i in range(10)} | {"add": "suspects"}
    )


def test_a_photo_chosen_before_adding_an_entry_is_kept(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    login(client, "officer1")
    data = raise_form(add="vehicles")
    data["photo"] = (io.BytesIO(png_bytes()), "jane.png")

    response = client.post("/alerts/new", data=data, content_type="multipart/form-data")

    assert response.status_code == 200
    assert 'id="photo-kept"' in response.text
    assert only_alert_count(ctx) == 0
