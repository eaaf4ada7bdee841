"""The console's alert form: WTForms fields in (``alertd.alerts.form_classes``), the API-shaped
body out, and back again.

The body is the same content dict the API takes, and ``alertd.alerts.content`` checks it, so
every rule lives in the domain layer: values are passed on as the officer typed them, and this
module only complains about what it must split itself. Blank entries of a list are dropped.
Entries are added and removed by buttons that redraw the form without saving, so it works the
same with or without JavaScript.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict
from wtforms import Form

from alertd.alerts.content import LONG_TEXT_FIELDS, STATUSES, TOP_TEXT_FIELDS
from alertd.alerts.criteria import RuleSet
from alertd.alerts.form_classes import (
    DATETIME_FIELDS,
    ENTRY_LIMITS,
    GROUPS,
    MAX_ENTRIES,
    AlertForm,
)
from alertd.alerts.form_text import (
    circle,
    circle_text,
    closed_ring,
    geocodes,
    geocodes_text,
    joined_datetime,
    number_text,
    offset_choices,
    ring_text,
    split_datetime,
    zone_offset,
)

_ENTRY = re.compile(r"^(children|suspects|vehicles|areas|translations)-(\d{1,3})$")
# The form's own inputs (a list by its name), and what a refused action may name.
_TOP_INPUTS = frozenset(f.name for f in AlertForm()) | {"photo", "reason", "minutes"}
# Buttons that redraw the form without saving it, and are not part of what was typed.
REDRAW_BUTTONS = ("show_plan", "add", "remove")


@dataclass
class ParsedForm:
    body: dict[str, Any]
    # Problems found while splitting the fields, keyed by input name.
    errors: dict[str, str] = field(default_factory=dict)
    # For each list, the form entry each body entry came from, so that content.py's
    # ``children[0].age`` can be shown next to the entry the officer actually filled.
    slots: dict[str, list[int]] = field(default_factory=dict)
    # Translation entries by language, for ``translations.es-US.description`` paths.
    translation_slots: dict[str, int] = field(default_factory=dict)

    def input_errors(self, fields: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """Split a service error's field paths into (by input name, not placeable)."""
        placed: dict[str, str] = dict(self.errors)
        other: dict[str, str] = {}
        for path, message in fields.items():
            name = self.input_name(path)
            if name is None:
                other.setdefault(path, message)
            else:
                placed.setdefault(name, message)
        return placed, other

    def input_name(self, path: str) -> str | None:
        return input_name_for(path, self.slots, self.translation_slots)


def input_name_for(
    path: str,
    slots: Mapping[str, list[int]] | None = None,
    translation_slots: Mapping[str, int] | None = None,
) -> str | None:
    """The form input a content field path belongs to, or None when no single input does."""
    slots = slots or {}
    translation_slots = translation_slots or {}
    if path in _TOP_INPUTS:
        return path
    if path.startswith("criteria."):
        return "criteria-" + path.removeprefix("criteria.")
    if path.startswith("translations."):
        lang, _, rest = path.removeprefix("translations.").partition(".")
        slot = translation_slots.get(lang)
        if slot is None:
            return None
        return f"translations-{slot}-{rest if rest in LONG_TEXT_FIELDS else 'lang'}"
    match = re.match(r"^(children|suspects|vehicles|areas)\[(\d+)\]\.?([a-z_]*)", path)
    if match is None:
        return None
    group, index, sub = match.group(1), int(match.group(2)), match.group(3)
    group_slots = slots.get(group)
    slot = group_slots[index] if group_slots and index < len(group_slots) else index
    if sub in GROUPS[group]:
        return f"{group}-{slot}-{sub}"
    return None


def _clean(value: object) -> str:
    return str(value or "").strip()


def _entries(form: Form, group: str) -> list[tuple[int, dict[str, str]]]:
    """The non-blank entries of a list, in form order, each as (index, {input: text})."""
    found = []
    for entry in form[group]:
        values = {name: _clean(value) for name, value in entry.data.items()}
        if any(values.values()):
            found.append((int(entry.index), values))
    return found


def _criteria(formdata: Mapping[str, str], rule_set: RuleSet | None) -> dict[str, bool]:
    if rule_set is not None:
        # Only the chosen plan's boxes count: the form shows one checklist at a time, and a
        # box left over from another plan would be refused as an unknown criterion.
        return {c.key: bool(formdata.get(f"criteria-{c.key}")) for c in rule_set.criteria}
    return {
        key.removeprefix("criteria-"): True
        for key in formdata
        if key.startswith("criteria-") and formdata.get(key)
    }


def _area(values: dict[str, str], index: int, errors: dict[str, str]) -> dict[str, Any]:
    area: dict[str, Any] = {"description": values.get("description", "")}
    area["geocodes"], problem = geocodes(values.get("geocodes", ""))
    if problem:
        errors[f"areas-{index}-geocodes"] = problem
    if values.get("polygon"):
        area["polygon"] = closed_ring(values["polygon"])
    if values.get("circle"):
        area["circle"] = circle(values["circle"])
    return area


def parse_form(formdata: MultiDict[str, str], rule_sets: Mapping[str, RuleSet]) -> ParsedForm:
    form = AlertForm(formdata)
    errors: dict[str, str] = {}
    body: dict[str, Any] = {
        "status": _clean(form["status"].data) or "Actual",
        "jurisdiction": _clean(form["jurisdiction"].data),
    }
    body["criteria"] = _criteria(formdata, rule_sets.get(body["jurisdiction"]))
    for name in (*TOP_TEXT_FIELDS, *LONG_TEXT_FIELDS):
        body[name] = form[name].data or ""
    for name in DATETIME_FIELDS:
        joined, readable = joined_datetime(
            _clean(form[name].data), form[f"{name}_offset"].data or ""
        )
        if not readable:
            errors[f"{name}_offset"] = "must be a UTC offset like -05:00"
        body[name] = joined
    parsed = ParsedForm(body, errors)

    for group in ("children", "suspects", "vehicles", "areas"):
        entries = _entries(form, group)
        parsed.slots[group] = [index for index, _ in entries]
        if group == "areas":
            body[group] = [_area(values, index, errors) for index, values in entries]
        else:
            body[group] = [values for _, values in entries]

    languages = [x for x in re.split(r"[\s,;]+", form["languages"].data or "") if x]
    if languages:
        body["languages"] = languages
    translations: dict[str, dict[str, str]] = {}
    for index, values in _entries(form, "translations"):
        lang = values.get("lang", "")
        if not lang:
            errors[f"translations-{index}-lang"] = "say which language this text is in"
            continue
        if lang in translations:
            errors[f"translations-{index}-lang"] = f"{lang} is given twice"
            continue
        translations[lang] = {f: values.get(f, "") for f in LONG_TEXT_FIELDS}
        parsed.translation_slots[lang] = index
    body["translations"] = translations
    return parsed


def _area_values(area: Mapping[str, Any]) -> dict[str, str]:
    return {
        "description": str(area.get("description") or ""),
        "geocodes": geocodes_text(area.get("geocodes") or {}),
        "polygon": ring_text(area.get("polygon") or []),
        "circle": circle_text(area["circle"]) if area.get("circle") else "",
    }


def form_values(content: Mapping[str, Any]) -> dict[str, str]:
    """A stored body as the form's initial values, keyed by input name."""
    values: dict[str, str] = {
        "status": str(content.get("status") or "Actual"),
        "jurisdiction": str(content.get("jurisdiction") or ""),
        "languages": ", ".join(content.get("languages") or []),
    }
    for key, checked in (content.get("criteria") or {}).items():
        if checked:
            values[f"criteria-{key}"] = "y"
    for name in (*TOP_TEXT_FIELDS, *LONG_TEXT_FIELDS):
        values[name] = str(content.get(name) or "")
    for name in DATETIME_FIELDS:
        local, offset = split_datetime(str(content.get(name) or ""))
        values[name], values[f"{name}_offset"] = local, offset or "+00:00"
    entries: dict[str, list[dict[str, str]]] = {
        group: [
            {name: number_text(item.get(name)) for name in GROUPS[group]}
            for item in content.get(group) or []
        ]
        for group in ("children", "suspects", "vehicles")
    }
    entries["areas"] = [_area_values(area) for area in content.get("areas") or []]
    entries["translations"] = [
        {"lang": lang, **{name: str(texts.get(name) or "") for name in LONG_TEXT_FIELDS}}
        for lang, texts in (content.get("translations") or {}).items()
    ]
    for group, items in entries.items():
        for i, item in enumerate(items):
            values.update({f"{group}-{i}-{name}": text for name, text in item.items()})
    return values


def blank_values(default_jurisdiction: str, offset: str = "+00:00") -> dict[str, str]:
    """A new form: times start in ``offset``, the configured zone's offset now."""
    return {
        "status": "Actual",
        "jurisdiction": default_jurisdiction,
        "languages": "en-US",
        "last_seen_at_offset": offset,
        "expires_at_offset": offset,
    }


def values_from_request(form: MultiDict[str, str]) -> dict[str, str]:
    """What the officer sent, to show again after a refusal."""
    return {key: form.get(key, "") for key in form}


def redrawn(values: Mapping[str, str]) -> dict[str, str]:
    """What was typed, for a form redrawn without saving: the plan's checklist was asked for,
    or an entry added or removed. WTForms numbers the remaining entries afresh."""
    kept = {k: v for k, v in values.items() if k not in (*REDRAW_BUTTONS, "csrf_token")}
    removed = _ENTRY.match(values.get("remove", ""))
    if removed is not None:
        prefix = f"{removed.group(0)}-"
        kept = {k: v for k, v in kept.items() if not k.startswith(prefix)}
    group = values.get("add", "")
    if group in GROUPS:
        # Every entry the page showed (blank ones too, which a browser sends but another client
        # may not), then the new one.
        count = len(alert_form(kept)[group].entries)
        if count < ENTRY_LIMITS[group]:
            for index in range(count + 1):
                if not any(key.startswith(f"{group}-{index}-") for key in kept):
                    kept[f"{group}-{index}-{GROUPS[group][0]}"] = ""
    return kept


def alert_form(values: Mapping[str, str]) -> Form:
    """The form to draw from input values: what was sent or stored, plus one blank entry after
    the last filled one in each list, so another entry can be typed without a button."""
    form = AlertForm(MultiDict(values))
    for group in GROUPS:
        entries = form[group]
        last = entries.entries[-1] if entries.entries else None
        filled = last is not None and any(_clean(v) for v in last.data.values())
        if filled and len(entries) < min(ENTRY_LIMITS[group], MAX_ENTRIES):
            entries.append_entry()
    return form


__all__ = [
    "STATUSES",
    "ParsedForm",
    "alert_form",
    "blank_values",
    "form_values",
    "input_name_for",
    "offset_choices",
    "parse_form",
    "redrawn",
    "values_from_request",
    "zone_offset",
]
