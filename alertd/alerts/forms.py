"""The console's alert form: flat HTML fields in, the API-shaped body out, and back again.

The console has no JavaScript, so lists (children, vehicles, areas, ...) are fixed numbered
slots such as ``children-0-name``; blank slots are dropped. Values are passed to the service as
the officer typed them, so ``alertd.alerts.content`` reports malformed numbers with the same
field paths the API uses; this module only complains about what it must split itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from werkzeug.datastructures import MultiDict

from alertd.alerts.content import (
    CHILD_FIELDS,
    LONG_TEXT_FIELDS,
    MAX_ITEMS,
    STATUSES,
    SUSPECT_FIELDS,
    TOP_TEXT_FIELDS,
    VEHICLE_FIELDS,
)
from alertd.alerts.criteria import RuleSet

CHILD_INPUTS = (*CHILD_FIELDS[:2], "age", "height_cm", "weight_kg", *CHILD_FIELDS[2:])
SUSPECT_INPUTS = SUSPECT_FIELDS
VEHICLE_INPUTS = (*VEHICLE_FIELDS[:3], "year", *VEHICLE_FIELDS[3:])
AREA_INPUTS = ("description", "geocodes", "polygon", "circle")
TRANSLATION_INPUTS = ("lang", *LONG_TEXT_FIELDS)
GROUPS: dict[str, tuple[str, ...]] = {
    "children": CHILD_INPUTS,
    "suspects": SUSPECT_INPUTS,
    "vehicles": VEHICLE_INPUTS,
    "areas": AREA_INPUTS,
    "translations": TRANSLATION_INPUTS,
}
# Empty slots shown on a fresh form; an alert with more entries gets a slot for each.
DEFAULT_SLOTS = {"children": 2, "suspects": 1, "vehicles": 1, "areas": 2, "translations": 3}
# Beyond the content limit, so an over-long list is reported by content.py rather than
# silently cut; bounded so a forged form cannot make us loop over huge indices.
_MAX_SLOT_INDEX = MAX_ITEMS + 5
DATETIME_FIELDS = ("last_seen_at", "expires_at")
_SLOT_KEY = re.compile(r"^(children|suspects|vehicles|areas|translations)-(\d{1,3})-(\w+)$")
_OFFSET = re.compile(r"^([+-])(\d{1,2}):?(\d{2})?$")

# Whole hours plus the half- and quarter-hour zones in use.
_EXTRA_OFFSETS = (
    "-09:30",
    "-03:30",
    "+03:30",
    "+04:30",
    "+05:30",
    "+05:45",
    "+06:30",
    "+09:30",
    "+10:30",
    "+12:45",
)


def _hours_offset(hours: int) -> str:
    return f"{'-' if hours < 0 else '+'}{abs(hours):02d}:00"


OFFSETS: tuple[str, ...] = tuple(
    sorted(
        {_hours_offset(h) for h in range(-12, 15)} | set(_EXTRA_OFFSETS),
        key=lambda o: (1 if o[0] == "+" else -1) * (int(o[1:3]) * 60 + int(o[4:6])),
    )
)


def offset_choices(current: str = "") -> list[str]:
    """The offsets to offer; a stored offset that is not in the list is still offered, so
    editing an alert never silently changes its times."""
    if current and current not in OFFSETS:
        return [current, *OFFSETS]
    return list(OFFSETS)


@dataclass
class ParsedForm:
    body: dict[str, Any]
    # Problems found while splitting the fields, keyed by input name.
    errors: dict[str, str] = field(default_factory=dict)
    # For each list, the form slot each body entry came from, so that content.py's
    # ``children[0].age`` can be shown next to the slot the officer actually filled.
    slots: dict[str, list[int]] = field(default_factory=dict)
    # Translation slots by language, for ``translations.es-US.description`` paths.
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
    if (
        path in TOP_TEXT_FIELDS
        or path in LONG_TEXT_FIELDS
        or path
        in (
            "status",
            "jurisdiction",
            "languages",
            "photo",
            "reason",
            "minutes",
            *DATETIME_FIELDS,
            *GROUPS,
        )
    ):
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


def _clean(value: str | None) -> str:
    return (value or "").strip()


def _slot_values(form: MultiDict[str, str], group: str) -> list[tuple[int, dict[str, str]]]:
    """The non-blank slots of a group, in slot order, each as {input: text}."""
    found: dict[int, dict[str, str]] = {}
    for key in form:
        match = _SLOT_KEY.match(key)
        if match is None or match.group(1) != group or match.group(3) not in GROUPS[group]:
            continue
        index = int(match.group(2))
        if index > _MAX_SLOT_INDEX:
            continue
        found.setdefault(index, {})[match.group(3)] = _clean(form.get(key))
    return [(i, values) for i, values in sorted(found.items()) if any(values.values())]


def _offset(raw: str) -> str | None:
    """Normalise a UTC offset typed or chosen as "+05:30", "-5", "UTC" or "Z"."""
    text = raw.strip().upper().replace("UTC", "").replace("GMT", "")
    if text in ("", "Z", "+0", "-0"):
        return "+00:00"
    match = _OFFSET.match(text)
    if match is None:
        return None
    sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    if hours > 14 or minutes > 59:
        return None
    return f"{sign}{hours:02d}:{minutes:02d}"


def _datetime(form: MultiDict[str, str], name: str, errors: dict[str, str]) -> str:
    """A ``datetime-local`` value plus its offset input, as ISO 8601 with the offset."""
    value = _clean(form.get(name))
    if not value:
        return ""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value  # content.py names the field and shows the expected format.
    if parsed.tzinfo is not None:
        return parsed.isoformat()
    offset = _offset(form.get(f"{name}_offset", ""))
    if offset is None:
        errors[f"{name}_offset"] = "must be a UTC offset like -05:00"
        return value
    return parsed.isoformat() + offset


def _points(text: str) -> list[list[str]]:
    # Points are separated by spaces (or semicolons); a point is "lat,lon". Whatever does not
    # split cleanly is passed on so content.py reports which point is wrong.
    return [
        [part.strip() for part in point.split(",")]
        for point in re.split(r"[\s;]+", text.strip())
        if point
    ]


def _same_point(a: list[str], b: list[str]) -> bool:
    try:
        return [float(x) for x in a] == [float(x) for x in b]
    except ValueError:
        return a == b  # content.py reports the unreadable point


def _circle(text: str) -> dict[str, str | None]:
    centre, _, radius = text.strip().partition(" ")
    lat, _, lon = centre.partition(",")
    return {
        "lat": lat.strip() or None,
        "lon": lon.strip() or None,
        "radius_km": radius.strip() or None,
    }


def _geocodes(text: str, name: str, errors: dict[str, str]) -> dict[str, str]:
    codes: dict[str, str] = {}
    for piece in re.split(r"[,;\n]+", text):
        if not piece.strip():
            continue
        key, sep, value = piece.partition("=")
        if not sep or not key.strip():
            errors[name] = f"write each geocode as NAME=value, not {piece.strip()[:40]!r}"
            continue
        codes[key.strip()] = value.strip()
    return codes


def parse_form(form: MultiDict[str, str], rule_sets: Mapping[str, RuleSet]) -> ParsedForm:
    errors: dict[str, str] = {}
    body: dict[str, Any] = {
        "status": _clean(form.get("status")) or "Actual",
        "jurisdiction": _clean(form.get("jurisdiction")),
    }
    rule_set = rule_sets.get(body["jurisdiction"])
    if rule_set is not None:
        # Only the chosen plan's boxes count: the form shows one checklist at a time, and a
        # box left over from another plan would be refused as an unknown criterion.
        body["criteria"] = {c.key: bool(form.get(f"criteria-{c.key}")) for c in rule_set.criteria}
    else:
        body["criteria"] = {
            key.removeprefix("criteria-"): True
            for key in form
            if key.startswith("criteria-") and form.get(key)
        }
    for name in (*TOP_TEXT_FIELDS, *LONG_TEXT_FIELDS):
        body[name] = form.get(name, "")
    for name in DATETIME_FIELDS:
        body[name] = _datetime(form, name, errors)
    parsed = ParsedForm(body, errors)

    for group in ("children", "suspects", "vehicles"):
        entries = _slot_values(form, group)
        body[group] = [values for _, values in entries]
        parsed.slots[group] = [i for i, _ in entries]

    areas: list[dict[str, Any]] = []
    for slot, values in _slot_values(form, "areas"):
        area: dict[str, Any] = {"description": values.get("description", "")}
        area["geocodes"] = _geocodes(values.get("geocodes", ""), f"areas-{slot}-geocodes", errors)
        if values.get("polygon"):
            area["polygon"] = _points(values["polygon"])
            ring = area["polygon"]
            if len(ring) > 2 and not _same_point(ring[0], ring[-1]):
                ring.append(ring[0])  # Officers type the corners; the form closes the ring.
        if values.get("circle"):
            area["circle"] = _circle(values["circle"])
        areas.append(area)
        parsed.slots.setdefault("areas", []).append(slot)
    body["areas"] = areas

    languages = [x for x in re.split(r"[\s,;]+", form.get("languages", "")) if x]
    if languages:
        body["languages"] = languages
    translations: dict[str, dict[str, str]] = {}
    for slot, values in _slot_values(form, "translations"):
        lang = values.get("lang", "")
        if not lang:
            errors[f"translations-{slot}-lang"] = "say which language this text is in"
            continue
        if lang in translations:
            errors[f"translations-{slot}-lang"] = f"{lang} is given twice"
            continue
        translations[lang] = {f: values.get(f, "") for f in LONG_TEXT_FIELDS}
        parsed.translation_slots[lang] = slot
    body["translations"] = translations
    return parsed


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _split_datetime(value: str) -> tuple[str, str]:
    """ISO 8601 with offset -> (``datetime-local`` value, offset), in the offset it was given."""
    if not value:
        return "", ""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value, ""
    offset = parsed.strftime("%z")
    offset = f"{offset[:3]}:{offset[3:]}" if offset else ""
    # Seconds only when there are some, so an edit never moves a time the officer did not touch.
    timespec = "seconds" if parsed.second else "minutes"
    return parsed.replace(tzinfo=None).isoformat(timespec=timespec), offset


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
        local, offset = _split_datetime(str(content.get(name) or ""))
        values[name], values[f"{name}_offset"] = local, offset or "+00:00"
    for group in ("children", "suspects", "vehicles"):
        for i, item in enumerate(content.get(group) or []):
            for name in GROUPS[group]:
                values[f"{group}-{i}-{name}"] = _number(item.get(name))
    for i, area in enumerate(content.get("areas") or []):
        values[f"areas-{i}-description"] = str(area.get("description") or "")
        values[f"areas-{i}-geocodes"] = ", ".join(
            f"{k}={v}" for k, v in (area.get("geocodes") or {}).items()
        )
        polygon = list(area.get("polygon") or [])
        if len(polygon) > 3 and polygon[0] == polygon[-1]:
            polygon = polygon[:-1]  # The closing point is added back on save.
        values[f"areas-{i}-polygon"] = " ".join(
            f"{_number(lat)},{_number(lon)}" for lat, lon in polygon
        )
        circle = area.get("circle")
        if circle:
            values[f"areas-{i}-circle"] = (
                f"{_number(circle['lat'])},{_number(circle['lon'])} {_number(circle['radius_km'])}"
            )
    for i, (lang, texts) in enumerate((content.get("translations") or {}).items()):
        values[f"translations-{i}-lang"] = lang
        for name in LONG_TEXT_FIELDS:
            values[f"translations-{i}-{name}"] = str(texts.get(name) or "")
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


def zone_offset(moment: datetime) -> str:
    """``+05:30`` for an aware time; the form's way of writing an offset."""
    raw = moment.strftime("%z")
    return f"{raw[:3]}:{raw[3:]}" if raw else "+00:00"


def slot_counts(values: Mapping[str, str]) -> dict[str, int]:
    """How many slots of each list to show: the defaults, or enough for what is filled, plus
    one spare so another entry can be added without JavaScript."""
    counts = dict(DEFAULT_SLOTS)
    for key in values:
        match = _SLOT_KEY.match(key)
        if match is not None and values[key]:
            group, index = match.group(1), int(match.group(2))
            limit = 3 if group == "translations" else MAX_ITEMS
            counts[group] = min(
                max(counts[group], index + 2), max(limit, index + 1), _MAX_SLOT_INDEX + 1
            )
    return counts


def values_from_request(form: MultiDict[str, str]) -> dict[str, str]:
    """What the officer sent, to show again after a refusal."""
    return {key: form.get(key, "") for key in form}


__all__ = [
    "OFFSETS",
    "STATUSES",
    "ParsedForm",
    "blank_values",
    "form_values",
    "input_name_for",
    "offset_choices",
    "parse_form",
    "slot_counts",
    "values_from_request",
    "zone_offset",
]
