"""The console's alert form as WTForms classes: the repeated children, suspects, vehicles, areas
and translations are ``FieldList(FormField(...))``, so their inputs are named and numbered by
WTForms (``children-0-age``), the names the error summary links to.

Every field is text: the values go to ``alertd.alerts.content`` as the officer typed them, so the
domain layer alone decides what is valid and reports it with the API's field paths. The inputs
are derived from content.py's field tuples (plus the numbers it reads), and the labels from
``alertd.alerts.labels``, so the form, the API and the error summary name the same fields.
"""

from __future__ import annotations

from typing import Any

from wtforms import FieldList, Form, FormField, StringField, TextAreaField

from alertd.alerts.content import (
    CHILD_FIELDS,
    LONG_TEXT_FIELDS,
    MAX_ITEMS,
    SUSPECT_FIELDS,
    TOP_TEXT_FIELDS,
    VEHICLE_FIELDS,
)
from alertd.alerts.labels import FIELD_LABELS, part_label

# The numbers content.py reads, placed among its text fields as the form shows them.
CHILD_INPUTS = (
    CHILD_FIELDS[0],
    "age",
    CHILD_FIELDS[1],
    "height_cm",
    "weight_kg",
    *CHILD_FIELDS[2:],
)
SUSPECT_INPUTS = SUSPECT_FIELDS
VEHICLE_INPUTS = (*VEHICLE_FIELDS[:3], "year", *VEHICLE_FIELDS[3:])
# An area's geometry is typed as text and split by alertd.alerts.forms.
AREA_INPUTS = ("description", "geocodes", "polygon", "circle")
TRANSLATION_INPUTS = ("lang", *LONG_TEXT_FIELDS)
GROUPS: dict[str, tuple[str, ...]] = {
    "children": CHILD_INPUTS,
    "suspects": SUSPECT_INPUTS,
    "vehicles": VEHICLE_INPUTS,
    "areas": AREA_INPUTS,
    "translations": TRANSLATION_INPUTS,
}
# Empty entries shown on a fresh form; an alert with more entries gets one for each.
DEFAULT_ENTRIES = {"children": 2, "suspects": 1, "vehicles": 1, "areas": 2, "translations": 3}
# Beyond the content limit, so an over-long list is reported by content.py rather than silently
# cut; bounded so a forged form cannot make us build thousands of entries.
MAX_ENTRIES = MAX_ITEMS + 5
# How many entries an officer may add: content.py's limit (translations: one per language).
ENTRY_LIMITS = {group: MAX_ITEMS for group in GROUPS}
DATETIME_FIELDS = ("last_seen_at", "expires_at")
# Inputs typed as prose: a textarea rather than a one-line input.
_PROSE = frozenset(LONG_TEXT_FIELDS)
# Hints beside an input, by the input's name within its entry.
ENTRY_HINTS = {
    ("children", "age"): "In years.",
    ("areas", "geocodes"): "NAME=value, separated by commas, e.g. SAME=006037, FIPS=06037",
    ("areas", "polygon"): "Points as lat,lon separated by spaces, "
    "e.g. 34.0,-118.5 34.2,-118.5 34.2,-118.2",
    ("areas", "circle"): "Centre and radius: lat,lon radius_km, e.g. 34.05,-118.25 25",
    ("translations", "lang"): "One of the languages above, e.g. es-US.",
}
# Inputs read as numbers get the phone's number keypad.
INPUT_MODES = {"age": "numeric", "year": "numeric", "height_cm": "decimal", "weight_kg": "decimal"}


def _text_field(label: str, prose: bool = False) -> Any:
    return (TextAreaField if prose else StringField)(label)


def _entry_form(group: str) -> type[Form]:
    fields = {
        name: _text_field(part_label(name).capitalize(), name in _PROSE) for name in GROUPS[group]
    }
    return type(f"{group.capitalize()}Entry", (Form,), fields)


ENTRY_FORMS: dict[str, type[Form]] = {group: _entry_form(group) for group in GROUPS}


def _alert_form() -> type[Form]:
    fields: dict[str, Any] = {
        "status": StringField(FIELD_LABELS["status"]),
        "jurisdiction": StringField("Criteria plan"),
        "languages": StringField(FIELD_LABELS["languages"]),
    }
    for name in TOP_TEXT_FIELDS:
        fields[name] = _text_field(FIELD_LABELS[name])
    for name in LONG_TEXT_FIELDS:
        fields[name] = _text_field(FIELD_LABELS[name], prose=True)
    for name in DATETIME_FIELDS:
        fields[name] = StringField(FIELD_LABELS[name])
        fields[f"{name}_offset"] = StringField("UTC offset")
    for group, entry in ENTRY_FORMS.items():
        fields[group] = FieldList(
            FormField(entry), min_entries=DEFAULT_ENTRIES[group], max_entries=MAX_ENTRIES
        )
    return type("AlertForm", (Form,), fields)


# The whole form. Criteria are not fields of it: each plan has its own checklist, and the form
# sends only the chosen plan's (alertd.alerts.forms reads them against the plan).
AlertForm = _alert_form()
