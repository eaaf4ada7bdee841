"""Reviewing an update: labelled fields with old and new values in words, never JSON, and
translations left behind by a change to the main text flagged before approval."""

from __future__ import annotations

import copy
import re
from typing import Any

from flask.testing import FlaskClient

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.review import readable_diff, stale_translations
from alertd.context import Context
from tests.support.factories import PASSWORD, alert_body


def _active(ctx: Context, officer: Actor, supervisor: Actor, body: dict[str, Any]) -> int:
    alert = services.create_alert(ctx, body, by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)
    return alert.id


def _changes(html: str) -> list[tuple[str, str, str]]:
    body = re.search(r'<tbody id="proposal-changes">(.*?)</tbody>', html, re.S)
    assert body, html
    rows = re.findall(
        r"<tr><th scope=\"row\">(.*?)</th><td><del>(.*?)</del></td><td><ins>(.*?)</ins></td></tr>",
        body.group(1),
        re.S,
    )
    return [(a, b, c) for a, b, c in rows]


def test_an_update_is_reviewed_as_labelled_words_with_stale_translations_flagged(
    client: FlaskClient, ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    # given: the officer changes the vehicle's colour and plate, the child's clothing and the
    # English description, but not the Spanish one
    original = alert_body()
    alert_id = _active(ctx, officer, supervisor, original)
    body = copy.deepcopy(original)
    body["description"] = "Jane was last seen getting into a grey van."
    body["vehicles"][0].update(colour="grey", plate="7XYZ123")
    body["children"][0]["clothing"] = "yellow raincoat"
    services.propose_update(ctx, alert_id, body, by=officer)
    client.post("/login", data={"username": "supervisor1", "password": PASSWORD})

    # when
    page = client.get(f"/alerts/{alert_id}").text

    # then
    changes = _changes(page)
    assert ("Vehicle 1: colour", "blue", "grey") in changes
    assert ("Vehicle 1: plate", "6WCU986", "7XYZ123") in changes
    assert ("Child 1: clothing", "red raincoat, blue jeans", "yellow raincoat") in changes
    assert any(label == "Description" for label, _, _ in changes)
    assert len(changes) == 4, changes  # Nothing unchanged is listed.
    assert not any("{" in before + after for _, before, after in changes)
    stale = re.search(
        r'<div class="warning" role="alert" id="stale-translations">(.*?)</div>', page, re.S
    )
    assert stale and "es-US description was not updated" in stale.group(1)


def test_updating_the_translation_too_clears_the_flag() -> None:
    before = alert_body()
    after = alert_body(
        description="New English text.",
        translations={"es-US": {"description": "Texto nuevo.", "instruction": "Llame."}},
    )

    assert stale_translations(before, after) == []


def test_times_are_shown_with_the_given_formatter_and_criteria_by_label() -> None:
    before = alert_body()
    after = alert_body(
        expires_at="2030-01-01T10:00:00+00:00",
        criteria={**before["criteria"], "ncic_entered": False},
    )

    changes = readable_diff(before, after, lambda value: f"at {value[:10]}", None)

    labels = {c.label: (c.before, c.after) for c in changes}
    assert labels["Expires"][1] == "at 2030-01-01"
    assert labels["Criterion: ncic_entered"] == ("met", "not met")
