"""Plain-text summaries of an alert for previews, logs and the simplest channels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alertd.alerts.models import Version

KIND_PREFIX = {
    "alert": "CHILD ABDUCTION ALERT",
    "update": "UPDATE - CHILD ABDUCTION ALERT",
    "extend": "UPDATE - CHILD ABDUCTION ALERT",
    "resolve": "CHILD FOUND - alert ended",
    "cancel": "CANCELLED - alert withdrawn",
    "expire": "EXPIRED - alert ended",
}


# The first word of a tip line that is already an instruction ("Text TIPS to 55555"), so that
# templates do not write "Call Call 911". English, Spanish and French, as the templates are.
_TIP_VERBS = frozenset(
    [
        "call",
        "phone",
        "dial",
        "ring",
        "text",
        "message",
        "contact",
        "email",
        "e-mail",
        "report",
        "visit",
        "go",
        "tell",
        "notify",
        "llame",
        "llama",
        "llamar",
        "marque",
        "marca",
        "comuníquese",
        "comunicate",
        "contacte",
        "envíe",
        "envie",
        "escriba",
        "visite",
        "appelez",
        "appeler",
        "composez",
        "contactez",
        "téléphonez",
        "telephonez",
        "signalez",
        "envoyez",
        "écrivez",
        "ecrivez",
        "rendez-vous",
    ]
)


def tip_is_instruction(tip_line: str) -> bool:
    words = tip_line.split(maxsplit=1)
    return bool(words) and words[0].strip(":,").casefold() in _TIP_VERBS


def call_phrase(tip_line: str, verb: str) -> str:
    """`verb tip_line` ("Call 911"), or the officer's own words when they already start with a
    verb, with the first letter's case following `verb` so the phrase can start a sentence or
    sit inside one. Trailing full stops are dropped; templates add their own punctuation."""
    tip_line = tip_line.strip().rstrip(".!")
    if not tip_is_instruction(tip_line):
        return f"{verb} {tip_line}"
    first = tip_line[:1].upper() if verb[:1].isupper() else tip_line[:1].lower()
    return first + tip_line[1:]


def child_phrase(content: Mapping[str, Any]) -> str:
    parts = []
    for child in content.get("children") or []:
        age = f", {child['age']}" if child.get("age") is not None else ""
        parts.append(f"{child.get('name') or 'unnamed child'}{age}")
    return "; ".join(parts)


def vehicle_phrase(content: Mapping[str, Any]) -> str:
    phrases = []
    for v in content.get("vehicles") or []:
        words = [str(v.get(k)) for k in ("colour", "year", "make", "model") if v.get(k)]
        plate = v.get("plate")
        if plate:
            region = f" ({v['plate_region']})" if v.get("plate_region") else ""
            words.append(f"plate {plate}{region}")
        phrases.append(" ".join(words))
    return "; ".join(p for p in phrases if p)


def summary_text(version: Version) -> str:
    content = version.content
    prefix = KIND_PREFIX.get(version.kind, "ALERT")
    if version.status != "Actual":
        prefix = f"{version.status.upper()} - {prefix}"
    parts = [prefix, child_phrase(content)]
    if version.kind in ("alert", "update", "extend"):
        parts += [vehicle_phrase(content), content.get("last_seen_place", "")]
        if content.get("tip_line"):
            parts.append(call_phrase(content["tip_line"], "Call"))
    return ". ".join(p for p in parts if p)
