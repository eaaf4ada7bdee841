"""The texts: one Jinja2 template per language and kind under ``templates/sms/<lang>/``, written
so the first text fits one GSM-7 segment (no character outside GSM-7, which would halve the room).
Rendered once per language for a version, never per subscriber."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from alertd.channels.sms.segments import SegmentCount, count_segments
from alertd.channels.sms.services import LANGUAGES
from alertd.i18n import translations
from alertd.public.links import public_page_url
from alertd.settings import REPO_ROOT, Settings
from alertd.vocabulary import vehicle_words

# What each kind of version tells a subscriber; kinds not here (an extension, an expiry) send
# nothing by SMS: the public was told nothing new.
TEMPLATE_OF_KIND = {
    "alert": "alert",
    "update": "update",
    "resolve": "resolved",
    "cancel": "cancelled",
}
MAX_SEGMENTS = 3
_SPACES = re.compile(r"\s+")


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(REPO_ROOT / "templates" / "sms")),
        autoescape=False,  # noqa: S701 - plain text for a phone, never HTML
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )


def _values(content: Mapping[str, Any], link: str, language: str) -> dict[str, str]:
    child = (content.get("children") or [{}])[0]
    vehicle = (content.get("vehicles") or [{}])[0]
    # Colour, make and model in the language's order and words (no year: room is short).
    catalogue = translations(language)
    words = vehicle_words(catalogue, vehicle, year=False)
    return {
        "child": str(child.get("name") or "a child"),
        "plate": str(vehicle.get("plate") or ""),
        "vehicle": (words[:1].upper() + words[1:]) or catalogue.gettext("Vehicle"),
        "tip": str(content.get("tip_line") or ""),
        "link": link,
    }


def render_text(
    settings: Settings, kind: str, language: str, content: Mapping[str, Any], public_id: str
) -> str:
    """The text for one version kind in one language (English when the language has none)."""
    name = TEMPLATE_OF_KIND[kind]
    lang = language if language in LANGUAGES else "en"
    link = public_page_url(settings, public_id)
    text = _environment().get_template(f"{lang}/{name}.txt").render(**_values(content, link, lang))
    return _SPACES.sub(" ", text).strip()


def texts_for(
    settings: Settings, kind: str, content: Mapping[str, Any], public_id: str
) -> dict[str, str]:
    """Every language's text for a version of this kind; empty when the kind sends nothing."""
    if kind not in TEMPLATE_OF_KIND:
        return {}
    return {lang: render_text(settings, kind, lang, content, public_id) for lang in LANGUAGES}


def too_long(texts: Mapping[str, str]) -> dict[str, SegmentCount]:
    """The languages whose text would take more than MAX_SEGMENTS, with their count."""
    counts = {lang: count_segments(text) for lang, text in texts.items()}
    return {lang: c for lang, c in counts.items() if c.segments > MAX_SEGMENTS}
