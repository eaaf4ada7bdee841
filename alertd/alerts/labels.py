"""Field names in the words an officer uses: the one mapping from the machine paths the API
reports (``children[0].age``, ``criteria.abduction_confirmed``) and the console's input names
(``children-0-age``) to labels such as "Child 1: age". The API keeps its paths; the console's
error summary, the review diff and the approval warnings speak through this module."""

from __future__ import annotations

import re
from collections.abc import Mapping

from alertd.alerts.criteria import RuleSet

# Labels as the form shows them.
FIELD_LABELS = {
    "status": "Status",
    "jurisdiction": "Jurisdiction",
    "case_reference": "Case reference",
    "last_seen_place": "Last seen at",
    "last_seen_at": "Last seen (time)",
    "direction_of_travel": "Direction of travel",
    "tip_line": "Tip line",
    "description": "Description",
    "instruction": "Instruction",
    "expires_at": "Expires",
    "languages": "Languages",
}
# Fields and groups that appear in errors but not in the review's list of facts.
OTHER_LABELS = {
    "photo": "Photo",
    "children": "Children",
    "suspects": "Suspects",
    "vehicles": "Vehicles",
    "areas": "Target areas",
    "translations": "Translations",
    "criteria": "Criteria checklist",
    "reason": "Reason",
    "minutes": "Minutes",
}
ITEM_LABELS = {"children": "Child", "suspects": "Suspect", "vehicles": "Vehicle", "areas": "Area"}
PART_LABELS = {
    "name": "name",
    "sex": "sex",
    "age": "age",
    "height_cm": "height (cm)",
    "weight_kg": "weight (kg)",
    "hair": "hair",
    "eyes": "eyes",
    "clothing": "clothing",
    "marks": "marks",
    "description": "description",
    "make": "make",
    "model": "model",
    "colour": "colour",
    "year": "year",
    "plate": "plate",
    "plate_region": "plate state or region",
    "geocodes": "area codes",
    "polygon": "outline",
    "circle": "circle",
    "lat": "latitude",
    "lon": "longitude",
    "radius_km": "radius (km)",
    "instruction": "instruction",
    "lang": "language tag",
}
_ITEM_PATH = re.compile(r"^(children|suspects|vehicles|areas)\[(\d+)\](?:\.(\w+))?(.*)$")
_INPUT = re.compile(r"^(children|suspects|vehicles|areas|translations)-(\d+)-(\w+)$")
# Messages that read on from the label ("Child 1: age must be a whole number").
_CONTINUES = re.compile(r"^(is|are|must|contains|was|has|cannot|\d)")


def part_label(part: str) -> str:
    return PART_LABELS.get(part, part.replace("_", " "))


def _rest(rest: str) -> str:
    """The tail of a deep path (``[3]``, ``.lat``) in words: ", point 4", ", latitude"."""
    words = []
    for index, name in re.findall(r"\[(\d+)\]|\.(\w+)", rest):
        words.append(f"point {int(index) + 1}" if index else part_label(name))
    return "".join(f", {w}" for w in words)


def criterion_label(key: str, rule_set: RuleSet | None) -> str:
    names = {c.key: c.label for c in rule_set.criteria} if rule_set else {}
    return names.get(key, key)


def path_label(path: str, rule_set: RuleSet | None = None) -> str:
    """A machine path in words; never shows brackets or dotted keys."""
    if path in FIELD_LABELS:
        return FIELD_LABELS[path]
    if path in OTHER_LABELS:
        return OTHER_LABELS[path]
    if path.endswith("_offset") and path.removesuffix("_offset") in FIELD_LABELS:
        return FIELD_LABELS[path.removesuffix("_offset")] + ": UTC offset"
    if path.startswith("criteria."):
        return f"Criterion: {criterion_label(path.removeprefix('criteria.'), rule_set)}"
    if path.startswith("translations."):
        language, _, part = path.removeprefix("translations.").partition(".")
        if not part:
            return f"{language} translation"
        return f"{language} {FIELD_LABELS.get(part, part_label(part)).lower()}"
    match = _ITEM_PATH.match(path)
    if match is not None:
        group, index, part, rest = match.groups()
        label = f"{ITEM_LABELS[group]} {int(index) + 1}"
        return f"{label}: {part_label(part)}{_rest(rest)}" if part else label + _rest(rest)
    words = re.sub(r"\[(\d+)\]", lambda m: f" {int(m.group(1)) + 1}", path)
    return words.replace(".", " ").replace("_", " ").strip().capitalize()


def input_label(name: str, rule_set: RuleSet | None = None) -> str:
    """A console input name in words, numbered as the form shows its slots."""
    match = _INPUT.match(name)
    if match is not None:
        group, slot, part = match.groups()
        noun = "Translation" if group == "translations" else ITEM_LABELS[group]
        return f"{noun} {int(slot) + 1}: {part_label(part)}"
    if name.startswith("criteria-"):
        return path_label("criteria." + name.removeprefix("criteria-"), rule_set)
    return path_label(name, rule_set)


def sentence(label: str, message: str) -> str:
    """One error as an officer reads it: "Child 1: age 25 is above 17, ..."."""
    return f"{label} {message}" if _CONTINUES.match(message) else f"{label}: {message}"


def path_sentence(path: str, message: str, rule_set: RuleSet | None = None) -> str:
    if path.startswith("criteria.") and message.startswith("not met"):
        label = criterion_label(path.removeprefix("criteria."), rule_set)
        return f"Criteria checklist: “{label}” is not ticked, and the plan requires it"
    return sentence(path_label(path, rule_set), message)


def input_sentence(name: str, message: str, rule_set: RuleSet | None = None) -> str:
    if name.startswith("criteria-"):
        return path_sentence("criteria." + name.removeprefix("criteria-"), message, rule_set)
    return sentence(input_label(name, rule_set), message)


def worded(errors: Mapping[str, str], rule_set: RuleSet | None = None) -> list[str]:
    """Errors keyed by machine path, as sentences in the order given."""
    return [path_sentence(path, message, rule_set) for path, message in errors.items()]
