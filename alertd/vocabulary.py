"""What officers type from a short, common vocabulary (sex, hair, eyes, a vehicle's colour), in
the reader's language, from the gettext catalogues (alertd/i18n.py). The public page, the CAP
texts and the SMS texts all translate values through here; anything else stays as typed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from alertd.i18n import translations


class Catalogue(Protocol):
    """A gettext catalogue: babel's Translations, or the NullTranslations English gets."""

    def gettext(self, message: str) -> str: ...

    def pgettext(self, context: str, message: str) -> object: ...


def known_words(t: Catalogue) -> dict[str, dict[str, str]]:
    """Known values per kind, English key to `t`'s word. Each literal is extracted into the
    catalogues by pybabel; the context keeps "brown" hair apart from a
    brown car, which many languages say differently."""

    def pgettext(context: str, message: str) -> str:
        return str(t.pgettext(context, message))

    return {
        # The alert programmes' public names (config/criteria/*.json), which some languages say
        # in their own order: "Alerta AMBER".
        "programme": {
            "amber alert": pgettext("programme", "AMBER Alert"),
            "child alert europe": pgettext("programme", "Child Alert Europe"),
        },
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


def vehicle_words(t: Catalogue, vehicle: Mapping[str, Any], *, year: bool = True) -> str:
    """Colour, year, make and model in the language's order ("blue 2014 Nissan Versa",
    "Nissan Versa 2014 azul"), the colour translated; empty parts leave no gap."""
    described = t.gettext("%(colour)s %(year)s %(make)s %(model)s") % {
        "colour": translate_value(known_words(t), "colour", vehicle.get("colour")),
        "year": (vehicle.get("year") or "") if year else "",
        "make": vehicle.get("make") or "",
        "model": vehicle.get("model") or "",
    }
    return " ".join(described.split())


# Fields officers fill from the vocabulary, and the kind of word each is.
VALUE_KINDS = {"sex": "sex", "hair": "hair", "eyes": "eyes", "colour": "colour"}
Record = TypeVar("Record", bound=Mapping[str, Any])


def records_in_language(records: list[Record], language: str) -> list[dict[str, Any]]:
    """Children or vehicles with their known values in a language (for CAP and webhook texts,
    built by workers); other fields, and values outside the vocabulary, as they were."""
    words = known_words(translations(language))
    return [
        {
            key: translate_value(words, VALUE_KINDS[key], value)
            if value and key in VALUE_KINDS
            else value
            for key, value in record.items()
        }
        for record in records
    ]
