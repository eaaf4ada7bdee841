"""Machine paths and console input names in officer words: one mapping, no brackets."""

from __future__ import annotations

import re

import pytest

from alertd.alerts.criteria import load_rule_sets
from alertd.alerts.labels import input_label, path_label, path_sentence, sentence
from alertd.settings import REPO_ROOT

US = load_rule_sets(REPO_ROOT / "config" / "criteria")["us-doj"]


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("children[0].age", "Child 1: age"),
        ("children[2].height_cm", "Child 3: height (cm)"),
        ("vehicles[0].plate_region", "Vehicle 1: plate state or region"),
        ("areas[1].polygon[3]", "Area 2: outline, point 4"),
        ("areas[0].circle.radius_km", "Area 1: circle, radius (km)"),
        ("areas[0].geocodes.SAME", "Area 1: area codes, SAME"),
        ("translations.es-US.instruction", "es-US instruction"),
        ("criteria.minor", "Criterion: The child is 17 years of age or younger"),
        ("last_seen_at", "Last seen (time)"),
        ("expires_at_offset", "Expires: UTC offset"),
        ("tip_line", "Tip line"),
        ("areas", "Target areas"),
        ("something[4].odd_key", "Something 5 odd key"),
    ],
)
def test_paths_read_as_the_form_labels_them(path: str, words: str) -> None:
    assert path_label(path, US) == words
    assert not re.search(r"[\[\]]|\.\w", path_label(path, US))


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("children-1-age", "Child 2: age"),
        ("translations-0-lang", "Translation 1: language tag"),
        ("areas-2-circle", "Area 3: circle"),
        ("criteria-ncic_entered", "Criterion: " + US.criteria[-1].label),
        ("last_seen_at_offset", "Last seen (time): UTC offset"),
    ],
)
def test_input_names_read_as_the_form_numbers_its_slots(name: str, words: str) -> None:
    assert input_label(name, US) == words


def test_sentences_read_on_or_take_a_colon() -> None:
    assert sentence("Child 1: age", "25 is above 17") == "Child 1: age 25 is above 17"
    assert sentence("Child 1: name", "is required") == "Child 1: name is required"
    assert sentence("Target areas", "at least one target area is required") == (
        "Target areas: at least one target area is required"
    )
    assert path_sentence("criteria.minor", "not met: whatever", US) == (
        "Criteria checklist: “The child is 17 years of age or younger” is not ticked, "
        "and the plan requires it"
    )
