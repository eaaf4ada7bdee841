"""The facts of an alert as the public page shows them: each once, labelled, in the reader's
language (`t`, a catalogue from alertd/i18n.py), known values (sex, hair, eyes, colours)
translated too (alertd/vocabulary.py); free text stays as typed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from alertd.vocabulary import Catalogue, known_words, translate_value, vehicle_words


@dataclass(frozen=True)
class Fact:
    label: str
    value: str


@dataclass(frozen=True)
class Person:
    name: str
    age: int | None
    facts: list[Fact] = field(default_factory=list)


@dataclass(frozen=True)
class Vehicle:
    description: str
    plate: str


def children(t: Catalogue, content: Mapping[str, Any]) -> list[Person]:
    words = known_words(t)
    out = []
    for child in content.get("children") or []:
        height, weight = child.get("height_cm"), child.get("weight_kg")
        facts = [
            (t.gettext("Sex"), translate_value(words, "sex", child.get("sex"))),
            (t.gettext("Height"), t.gettext("%(cm)s cm") % {"cm": height} if height else ""),
            (t.gettext("Weight"), t.gettext("%(kg)s kg") % {"kg": weight} if weight else ""),
            (t.gettext("Hair"), translate_value(words, "hair", child.get("hair"))),
            (t.gettext("Eyes"), translate_value(words, "eyes", child.get("eyes"))),
            (t.gettext("Clothing"), str(child.get("clothing") or "")),
            (t.gettext("Marks"), str(child.get("marks") or "")),
        ]
        out.append(
            Person(
                name=str(child.get("name") or "") or t.gettext("Child"),
                age=child.get("age"),
                facts=[Fact(label, value) for label, value in facts if value],
            )
        )
    return out


def suspects(t: Catalogue, content: Mapping[str, Any]) -> list[Person]:
    return [
        Person(
            name=str(s.get("name") or "") or t.gettext("Suspect"),
            age=None,
            facts=[Fact(t.gettext("Description"), str(s["description"]))]
            if s.get("description")
            else [],
        )
        for s in content.get("suspects") or []
    ]


def vehicles(t: Catalogue, content: Mapping[str, Any]) -> list[Vehicle]:
    out = []
    for v in content.get("vehicles") or []:
        plate = str(v.get("plate") or "")
        if plate and v.get("plate_region"):
            region = v["plate_region"]
            plate = t.gettext("%(plate)s (%(region)s)") % {"plate": plate, "region": region}
        description = vehicle_words(t, v)
        if description or plate:
            out.append(Vehicle(description=description, plate=plate))
    return out
