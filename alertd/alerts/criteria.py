"""Jurisdictions' criteria checklists. Plans differ, so each is a JSON rule set in
``config/criteria/`` (DOMAIN.md section 1), not code."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class Criterion:
    key: str
    label: str
    required: bool


@dataclass(frozen=True)
class RuleSet:
    name: str
    title: str
    public_name: str  # what public texts call it; never the internal key such as "us-doj"
    short_name: str  # what officers call the plan in a sentence: "US DOJ"
    source: str
    max_age: int
    criteria: tuple[Criterion, ...]
    requires_case_reference: bool

    def unmet(self, answers: dict[str, bool]) -> list[Criterion]:
        return [c for c in self.criteria if c.required and not answers.get(c.key, False)]


@cache
def load_rule_sets(directory: Path) -> dict[str, RuleSet]:
    rule_sets = {}
    for path in sorted(directory.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        rule_set = RuleSet(
            name=raw["name"],
            title=raw["title"],
            public_name=raw.get("public_name") or raw["title"],
            short_name=raw.get("short_name") or raw["name"],
            source=raw.get("source", ""),
            max_age=int(raw["max_age"]),
            criteria=tuple(
                Criterion(c["key"], c["label"], bool(c.get("required", True)))
                for c in raw["criteria"]
            ),
            requires_case_reference=bool(raw.get("requires_case_reference", False)),
        )
        rule_sets[rule_set.name] = rule_set
    if not rule_sets:
        raise RuntimeError(f"no criteria rule sets found in {directory}")
    return rule_sets
