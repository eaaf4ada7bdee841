"""A refused form's errors, listed at the top of the form in the order of the page, each in
officer words (``alertd.alerts.labels``) and linked to the input that holds it."""

from __future__ import annotations

import re
from collections.abc import Mapping

from alertd.alerts.criteria import RuleSet
from alertd.alerts.labels import input_sentence, path_sentence

# The form's sections top to bottom, so the summary lists errors in the order of the page.
_FORM_ORDER = (
    "status",
    "jurisdiction",
    "case_reference",
    "criteria",
    "children",
    "photo",
    "suspects",
    "vehicles",
    "last_seen_at",
    "last_seen_place",
    "direction_of_travel",
    "tip_line",
    "description",
    "instruction",
    "languages",
    "translations",
    "areas",
    "expires_at",
)


def _form_position(name: str) -> tuple[int, int, str]:
    head = re.split(r"[-.\[]", name, maxsplit=1)[0].removesuffix("_offset")
    rank = _FORM_ORDER.index(head) if head in _FORM_ORDER else len(_FORM_ORDER)
    slot = re.search(r"-(\d+)-", name)
    return rank, int(slot.group(1)) if slot else -1, name


def error_summary(
    errors: Mapping[str, str], other: Mapping[str, str], rule_set: RuleSet | None
) -> list[tuple[str | None, str]]:
    """Every error of a refused form as (input id to link to, sentence in officer words), in
    the order of the page; errors no single input holds come last, unlinked."""
    linked: list[tuple[str | None, str]] = [
        (name, input_sentence(name, errors[name], rule_set))
        for name in sorted(errors, key=_form_position)
    ]
    return linked + [(None, path_sentence(p, m, rule_set)) for p, m in other.items()]
