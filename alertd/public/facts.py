"""The facts of an alert as the public page shows them: each once, labelled, in the reader's
language, words the officer picked from the usual vocabulary (sex, hair, eyes, colours)
translated too. Call these inside ``flask_babel.force_locale``; free text stays as typed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from flask_babel import pgettext


def _vocabulary() -> dict[str, dict[str, str]]:
    """Known values per kind, English key to the reader's word. Built at call time, inside the
    page's locale; each literal is extracted into the catalogues by pybabel."""
    return {
        "sex": {
            "female": pgettext("sex", "female"),
            "male": pgettext("sex", "male"),
            "f": pgettext("sex", "female"),
            "m": pgettext("sex", "male"),
            "girl": pgettext("sex", "female"),
            "boy": pgettext("sex", "male"),
        },
        "hair": {
            "black": pgettext("hair", "black"),
            "brown": pgettext("hair", "brown"),
            "blond": pgettext("hair", "blond"),
            "blonde": pgettext("hair", "blond"),
            "red": pgettext("hair", "red"),
            "grey": pgettext("hair", "grey"),
            "gray": pgettext("hair", "grey"),
            "white": pgettext("hair", "white"),
            "bald": pgettext("hair", "bald"),
        },
        "eyes": {
            "brown": pgettext("eyes", "brown"),
            "blue": pgettext("eyes", "blue"),
            "green": pgettext("eyes", "green"),
            "hazel": pgettext("eyes", "hazel"),
            "grey": pgettext("eyes", "grey"),
            "gray": pgettext("eyes", "grey"),
            "black": pgettext("eyes", "black"),
        },
        "colour": {
            "black": pgettext("colour", "black"),
            "white": pgettext("colour", "white"),
            "grey": pgettext("colour", "grey"),
            "gray": pgettext("colour", "grey"),
            "silver": pgettext("colour", "silver"),
            "blue": pgettext("colour", "blue"),
            "red": pgettext("colour", "red"),
            "green": pgettext("colour", "green"),
            "yellow": pgettext("colour", "yellow"),
            "orange": pgettext("colour", "orange"),
            "brown": pgettext("colour", "brown"),
            "beige": pgettext("colour", "beige"),
            "gold": pgettext("colour", "gold"),
            "purple": pgettext("colour", "purple"),
            "maroon": pgettext("colour", "maroon"),
            "tan": pgettext("colour", "tan"),
        },
    }


def translate_value(words: Mapping[str, Mapping[str, str]], kind: str, value: Any) -> str:
    """The reader's word for a known value of `kind`, else the value as typed."""
    text = "" if value is None else str(value).strip()
    return words.get(kind, {}).get(text.casefold(), text)


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


def children(content: Mapping[str, Any]) -> list[Person]:
    words = _vocabulary()
    out = []
    for child in content.get("children") or []:
        facts = [
            (_("Sex"), translate_value(words, "sex", child.get("sex"))),
            (_("Height"), _("%(cm)s cm", cm=child["height_cm"]) if child.get("height_cm") else ""),
            (_("Weight"), _("%(kg)s kg", kg=child["weight_kg"]) if child.get("weight_kg") else ""),
            (_("Hair"), translate_value(words, "hair", child.get("hair"))),
            (_("Eyes"), translate_value(words, "eyes", child.get("eyes"))),
            (_("Clothing"), str(child.get("clothing") or "")),
            (_("Marks"), str(child.get("marks") or "")),
        ]
        out.append(
            Person(
                name=str(child.get("name") or "") or _("Child"),
                age=child.get("age"),
                facts=[Fact(label, value) for label, value in facts if value],
            )
        )
    return out


def suspects(content: Mapping[str, Any]) -> list[Person]:
    return [
        Person(
            name=str(s.get("name") or "") or _("Suspect"),
            age=None,
            facts=[Fact(_("Description"), str(s["description"]))] if s.get("description") else [],
        )
        for s in content.get("suspects") or []
    ]


def vehicles(content: Mapping[str, Any]) -> list[Vehicle]:
    words = _vocabulary()
    out = []
    for v in content.get("vehicles") or []:
        # Word order is the language's: "blue 2014 Nissan Versa", "Nissan Versa 2014 azul".
        described = _(
            "%(colour)s %(year)s %(make)s %(model)s",
            colour=translate_value(words, "colour", v.get("colour")),
            year=v.get("year") or "",
            make=v.get("make") or "",
            model=v.get("model") or "",
        )
        plate = str(v.get("plate") or "")
        if plate and v.get("plate_region"):
            plate = _("%(plate)s (%(region)s)", plate=plate, region=v["plate_region"])
        description = " ".join(described.split())
        if description or plate:
            out.append(Vehicle(description=description, plate=plate))
    return out
