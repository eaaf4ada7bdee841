"""What a supervisor reads before approving an update: every changed field under the label an
officer knows, old and new value in words, and the translations left behind by a change to the
main text."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from alertd.alerts.content import LONG_TEXT_FIELDS
from alertd.alerts.criteria import RuleSet
from alertd.alerts.labels import FIELD_LABELS, ITEM_LABELS, criterion_label, part_label

EMPTY = "(none)"
DATETIME_FIELDS = ("last_seen_at", "expires_at")


@dataclass(frozen=True)
class Change:
    label: str
    before: str
    after: str


def _words(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(_words(v) for v in value)
    if isinstance(value, Mapping):
        return "; ".join(f"{k} {_words(v)}" for k, v in value.items())
    return str(value)


def _area_part(name: str, value: Any) -> str:
    if name == "geocodes" and isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or EMPTY
    if name == "polygon" and isinstance(value, list):
        return f"{len(value)} points" if value else EMPTY
    if name == "circle" and isinstance(value, Mapping):
        return f"{value.get('radius_km')} km around {value.get('lat')}, {value.get('lon')}"
    return _words(value)


def labelled_fields(
    content: Mapping[str, Any], when: Callable[[str], str], rule_set: RuleSet | None
) -> dict[str, str]:
    """The alert as label -> words, in the form's order."""
    out: dict[str, str] = {}
    for name, label in FIELD_LABELS.items():
        value = content.get(name)
        out[label] = when(value) if name in DATETIME_FIELDS and value else _words(value)
    for group, noun in ITEM_LABELS.items():
        for i, item in enumerate(content.get(group) or []):
            for part, value in item.items():
                label = f"{noun} {i + 1}: {part_label(part)}"
                out[label] = _area_part(part, value) if group == "areas" else _words(value)
    for key, met in (content.get("criteria") or {}).items():
        out[f"Criterion: {criterion_label(key, rule_set)}"] = "met" if met else "not met"
    for language, texts in (content.get("translations") or {}).items():
        for part, value in texts.items():
            out[f"{language} {FIELD_LABELS.get(part, part).lower()}"] = _words(value)
    return out


def readable_diff(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    when: Callable[[str], str],
    rule_set: RuleSet | None,
) -> list[Change]:
    old, new = labelled_fields(before, when, rule_set), labelled_fields(after, when, rule_set)
    labels = list(dict.fromkeys([*old, *new]))
    return [
        Change(label, old.get(label, EMPTY), new.get(label, EMPTY))
        for label in labels
        if old.get(label, EMPTY) != new.get(label, EMPTY)
    ]


def stale_translations(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Translations whose text stayed as it was while the main language's text changed."""
    old_tr, new_tr = before.get("translations") or {}, after.get("translations") or {}
    found = []
    for field in LONG_TEXT_FIELDS:
        if before.get(field) == after.get(field):
            continue
        for language, texts in new_tr.items():
            text = texts.get(field)
            if text and text == (old_tr.get(language) or {}).get(field):
                found.append(
                    f"The {language} {FIELD_LABELS[field].lower()} was not updated although "
                    f"the main {FIELD_LABELS[field].lower()} changed: it still says the old thing."
                )
    return found
