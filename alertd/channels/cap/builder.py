"""Build one CAP 1.2 document from one CapVersion.

The XML is built with lxml, never with string templates, so every value is escaped by the
serializer. Jinja renders only the human text (headline, description, phone texts) from
`templates/cap/<language>/`.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from lxml import etree  # type: ignore[import-untyped]  # lxml ships no type information

from alertd.alerts.text import call_phrase
from alertd.channels.cap.message import (
    CAP_NS,
    CMAM_LONG_TEXT_LIMIT,
    CMAM_TEXT_LIMIT,
    KINDS,
    MSG_TYPES,
    STATUSES,
    CapVersion,
    check_xml_text,
    format_cap_datetime,
    format_reference,
    parse_cap_datetime,
)
from alertd.channels.cap.validate import IPAWS_CODE, ensure_valid_cap
from alertd.channels.cap.wea import fit_wea, wea_length
from alertd.i18n import primary_subtag
from alertd.vocabulary import records_in_language

__all__ = ["TEMPLATES_DIR", "build_cap", "format_cap_datetime", "parse_cap_datetime", "shorten"]

TEMPLATES_DIR = Path(__file__).resolve().parents[3] / "templates"
FALLBACK_LANGUAGE = "en"
# CAP 1.2 advises headlines under 160 characters because some channels show nothing else.
HEADLINE_LIMIT = 160
ELLIPSIS = "…"
_TRAILING_PUNCTUATION = re.compile(r"[\s,;:.\-–—]+$")

# Broadcasters read `event` aloud or show it as a title, so it follows the info's language.
EVENT_NAMES = {
    "en": "Child Abduction Emergency",
    "fr": "Alerte enlèvement d'enfant",
    "es": "Emergencia por secuestro de menor",
}

# (responseType, urgency, severity, certainty). Ended alerts are "Past" so that receivers stop
# waking phones, and "Observed" because the ending is a fact.
_LIVE_VALUES = ("Monitor", "Immediate", "Severe", "Likely")
_ENDED_VALUES = {
    "resolve": ("AllClear", "Past", "Minor", "Observed"),
    "cancel": ("None", "Past", "Minor", "Observed"),
    "expire": ("None", "Past", "Minor", "Observed"),
}

_CHILD_FIELDS = (
    "name",
    "age",
    "sex",
    "height_cm",
    "weight_kg",
    "hair",
    "eyes",
    "clothing",
    "marks",
)
_SUSPECT_FIELDS = ("name", "description")
_VEHICLE_FIELDS = ("make", "model", "colour", "year", "plate", "plate_region")
# Phone texts are rendered at decreasing detail until they fit, so a long name costs the model
# of the car before it costs the tip line.
_DETAIL_LEVELS = (2, 1, 0)


def build_cap(v: CapVersion, *, templates_dir: Path | None = None) -> bytes:
    """Return the UTF-8 CAP document for `v`, checked against the schema and the CAP rules.

    A Cancel keeps one info per language that says the alert is cancelled, expired or resolved:
    IPAWS accepts a Cancel without info, but broadcasters then have nothing to read out. Ended
    alerts leave out the photo, which should stop circulating once the search is over.

    Raises ValueError for bad input (including XML-forbidden characters) and CapValidationError
    (a ValueError) if the result would not be valid CAP, so nothing invalid ever leaves here.
    """
    _check_version(v)
    env = _environment((templates_dir or TEMPLATES_DIR).resolve())
    content = v.content
    languages = [str(lang) for lang in content.get("languages") or []]

    alert = etree.Element(_tag("alert"), nsmap={None: CAP_NS})
    _sub(alert, "identifier", v.identifier)
    _sub(alert, "sender", v.sender)
    _sub(alert, "sent", format_cap_datetime(v.sent))
    _sub(alert, "status", v.status)
    _sub(alert, "msgType", v.msg_type)
    if v.source.strip():
        _sub(alert, "source", v.source.strip())
    _sub(alert, "scope", "Public")
    if v.ipaws:
        _sub(alert, "code", IPAWS_CODE)
    if v.references:
        _sub(alert, "references", " ".join(format_reference(ref) for ref in v.references))
    incident = _incident(content.get("case_reference"))
    if incident:
        _sub(alert, "incidents", incident)

    for index, language in enumerate(languages):
        context = _context(v, language, first=index == 0)
        _add_info(alert, v, language, env, context)

    xml: bytes = etree.tostring(alert, xml_declaration=True, encoding="UTF-8")
    ensure_valid_cap(xml, strict=True)
    return xml


def shorten(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` characters at a word boundary, ending with "…".

    Falls back to a mid-word cut only when the first word alone is too long; never separates a
    base character from its combining accents.
    """
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return ELLIPSIS[:limit]
    cut = text[: limit - len(ELLIPSIS)]
    at_boundary = cut[-1:].isspace() or text[len(cut)].isspace()
    last_space = max(cut.rfind(" "), cut.rfind("\n"), cut.rfind("\t"))
    if not at_boundary and last_space > 0:
        cut = cut[:last_space]
    while cut and unicodedata.combining(text[len(cut)]):
        cut = cut[:-1]
    return _TRAILING_PUNCTUATION.sub("", cut) + ELLIPSIS


def _check_version(v: CapVersion) -> None:
    problems: list[str] = []
    if v.status not in STATUSES:
        problems.append(f"status {v.status!r} is not one of {sorted(STATUSES)}")
    if v.msg_type not in MSG_TYPES:
        problems.append(f"msg_type {v.msg_type!r} is not one of {sorted(MSG_TYPES)}")
    if v.kind not in KINDS:
        problems.append(f"kind {v.kind!r} is not one of {sorted(KINDS)}")
    if (v.kind == "alert") != (v.msg_type == "Alert"):
        problems.append(f"kind {v.kind!r} does not go with msgType {v.msg_type!r}")
    if not v.content.get("languages"):
        problems.append("content has no languages")
    if problems:
        raise ValueError("cannot build CAP: " + "; ".join(problems))


@cache
def _environment(templates_dir: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        # Plain-text output: HTML escaping would put "&amp;" in phone texts; lxml escapes for XML.
        autoescape=False,  # noqa: S701
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["shorten"] = _shorten_filter
    env.filters["words"] = _words
    env.filters["period"] = _period
    env.filters["capfirst"] = _capfirst
    env.filters["call"] = call_phrase
    return env


def _shorten_filter(value: str | None, limit: int) -> str:
    # Templates pass optional fields straight through; a missing one shortens to nothing.
    return shorten(value, limit) if value else ""


def _words(values: Iterable[Any]) -> str:
    return " ".join(str(value) for value in values if value)


def _capfirst(value: str) -> str:
    # Only the first letter: str.capitalize would also lower-case a plate or a make like "BMW".
    return value[:1].upper() + value[1:]


def _period(value: str) -> str:
    # Operators often end their own text with a full stop; do not add a second one.
    return value if not value or value[-1] in ".!?…。" else value + "."


def _render(env: jinja2.Environment, language: str, name: str, context: Mapping[str, Any]) -> str:
    primary = primary_subtag(language)
    try:
        template = env.get_template(f"cap/{primary}/{name}.txt.j2")
    except jinja2.TemplateNotFound:
        template = env.get_template(f"cap/{FALLBACK_LANGUAGE}/{name}.txt.j2")
    return template.render(context)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _paragraphs(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def _fitted(
    env: jinja2.Environment, language: str, name: str, context: Mapping[str, Any], limit: int
) -> str:
    text = ""
    for detail in _DETAIL_LEVELS:
        text = _one_line(_render(env, language, name, {**context, "detail": detail}))
        if wea_length(text) <= limit:
            return text
    return fit_wea(text, limit, shorten)


def _add_info(
    alert: Any, v: CapVersion, language: str, env: jinja2.Environment, context: Mapping[str, Any]
) -> None:
    response, urgency, severity, certainty = _ENDED_VALUES.get(v.kind, _LIVE_VALUES)
    info = _sub(alert, "info")
    _sub(info, "language", language)
    _sub(info, "category", "Rescue")
    event = EVENT_NAMES.get(primary_subtag(language), EVENT_NAMES[FALLBACK_LANGUAGE])
    _sub(info, "event", event)
    _sub(info, "responseType", response)
    _sub(info, "urgency", urgency)
    _sub(info, "severity", severity)
    _sub(info, "certainty", certainty)
    _pair(info, "eventCode", "SAME", "CAE")
    # In force from the moment it is sent; the abduction's onset is when the child was last seen.
    _sub(info, "effective", format_cap_datetime(v.sent))
    onset = _onset(v)
    if onset:
        _sub(info, "onset", onset)
    _sub(info, "expires", format_cap_datetime(v.expires))
    _sub(info, "senderName", v.sender_name)
    headline = _one_line(_render(env, language, "headline", context))
    _sub(info, "headline", shorten(headline, HEADLINE_LIMIT))
    description = _paragraphs(_render(env, language, "description", context))
    if description:  # An empty <description/> reads as a broken message to broadcasters.
        _sub(info, "description", description)
    instruction = context["instruction"] or _render(env, language, "instruction", context)
    _sub(info, "instruction", _paragraphs(instruction))
    _sub(info, "web", v.web_url)
    if context["tip_line"] and not v.ended:
        _sub(info, "contact", context["tip_line"])
    if v.ipaws:
        _pair(info, "parameter", "EAS-ORG", "CIV")
    cmam = _fitted(env, language, "cmam", context, CMAM_TEXT_LIMIT)
    _pair(info, "parameter", "CMAMtext", cmam)
    cmam_long = _fitted(env, language, "cmam_long", context, CMAM_LONG_TEXT_LIMIT)
    _pair(info, "parameter", "CMAMlongtext", cmam_long)
    if v.photo is not None and not v.ended:
        resource = _sub(info, "resource")
        _sub(resource, "resourceDesc", v.photo.description)
        _sub(resource, "mimeType", v.photo.mime_type)
        _sub(resource, "size", str(v.photo.size))
        _sub(resource, "uri", v.photo.uri)
        if v.photo.data is not None:
            # Inline as IPAWS police alerts carry it; <digest> is of these same bytes.
            _sub(resource, "derefUri", base64.b64encode(v.photo.data).decode("ascii"))
        _sub(resource, "digest", v.photo.sha1.lower())
    for area in v.content.get("areas") or []:
        _add_area(info, area)


def _add_area(info: Any, area: Mapping[str, Any]) -> None:
    element = _sub(info, "area")
    _sub(element, "areaDesc", str(area.get("description") or ""))
    polygon = [(float(lat), float(lon)) for lat, lon in area.get("polygon") or []]
    if polygon:
        # Operators draw shapes by clicking; closing the ring for them is safer than rejecting.
        if polygon[0] != polygon[-1]:
            polygon.append(polygon[0])
        _sub(element, "polygon", " ".join(f"{_coord(lat)},{_coord(lon)}" for lat, lon in polygon))
    circle = area.get("circle")
    if circle:
        centre = f"{_coord(circle['lat'])},{_coord(circle['lon'])}"
        _sub(element, "circle", f"{centre} {_coord(circle['radius_km'])}")
    for name, values in (area.get("geocodes") or {}).items():
        for value in [values] if isinstance(values, str) else values:
            _pair(element, "geocode", str(name), str(value))


def _incident(case_reference: Any) -> str:
    """The case reference as one CAP incident: <incidents> is space-delimited, so a reference
    with spaces is quoted (CAP 1.2 section 3.2.1), and a double quote inside cannot be kept."""
    text = " ".join(str(case_reference or "").replace('"', "").split())
    return f'"{text}"' if " " in text else text


def _onset(v: CapVersion) -> str | None:
    if v.ended:
        return None
    text = str(v.content.get("last_seen_at") or "").strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.utcoffset() is None or v.sent.tzinfo is None:
        return None
    # Written in the same zone as <sent> (ALERTD_TIMEZONE), not the offset the officer typed.
    return format_cap_datetime(moment.astimezone(v.sent.tzinfo).replace(microsecond=0))


def _coord(value: Any) -> str:
    # Fixed notation: str(1e-05) would write an exponent, which CAP readers do not parse.
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _context(v: CapVersion, language: str, *, first: bool) -> dict[str, Any]:
    content = v.content
    translations = content.get("translations") or {}
    translated = translations.get(language) or translations.get(primary_subtag(language)) or {}
    # The top-level free text is written in the first language; other languages get only their
    # translation, so a French reader never gets an untranslated English paragraph mid-text.
    description = translated.get("description") or (content.get("description") if first else None)
    instruction = translated.get("instruction") or (content.get("instruction") if first else None)
    if v.ended:
        # An ending speaks with one voice in every language: the ended templates' text, never
        # the officer's live text or its translation ("call the tip line") beside AllClear.
        description = instruction = None
    return {
        "language": language,
        "kind": v.kind,
        "ended": v.ended,
        "status": v.status,
        "msg_type": v.msg_type,
        "sender_name": v.sender_name,
        "web_url": v.web_url,
        # Known values (hair, eyes, sex, a car's colour) in the info's own language.
        "children": records_in_language(_records(content.get("children"), _CHILD_FIELDS), language),
        "suspects": _records(content.get("suspects"), _SUSPECT_FIELDS),
        "vehicles": records_in_language(
            _records(content.get("vehicles"), _VEHICLE_FIELDS), language
        ),
        "last_seen_at": _when(content.get("last_seen_at")),
        "last_seen_place": _clean(content.get("last_seen_place")),
        "direction_of_travel": _clean(content.get("direction_of_travel")),
        "tip_line": _clean(content.get("tip_line")),
        # The rule set's public name: content["jurisdiction"] is an internal key like "us-doj".
        "jurisdiction": _clean(v.jurisdiction_name),
        "case_reference": _clean(content.get("case_reference")),
        "areas": _area_names(content.get("areas")),
        "description": _clean(description),
        "instruction": _clean(instruction),
        "detail": _DETAIL_LEVELS[0],
    }


def _area_names(areas: Any) -> list[str]:
    names = (_clean(area.get("description")) for area in areas or [])
    return [name for name in names if name]


def _records(items: Any, fields: tuple[str, ...]) -> list[dict[str, str | None]]:
    # Every field is present (None when unknown) so templates can test it without tripping
    # StrictUndefined, which is kept on to catch misspelt names in templates.
    records = [{field: _clean(item.get(field)) for field in fields} for item in items or []]
    return [record for record in records if any(record.values())]


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    check_xml_text(text)
    return text


def _when(value: Any) -> str | None:
    text = _clean(value)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text  # Show the operator's words rather than drop the time.
    if moment.utcoffset() is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    offset = format_cap_datetime(moment)[-6:]
    zone = "UTC" if offset in ("-00:00", "+00:00") else f"UTC{offset}"
    return f"{moment:%Y-%m-%d %H:%M} {zone}"


def _tag(name: str) -> str:
    return f"{{{CAP_NS}}}{name}"


def _sub(parent: Any, name: str, text: str | None = None) -> Any:
    element = etree.SubElement(parent, _tag(name))
    if text is not None:
        check_xml_text(text)
        element.text = text
    return element


def _pair(parent: Any, name: str, value_name: str, value: str) -> None:
    element = _sub(parent, name)
    _sub(element, "valueName", value_name)
    _sub(element, "value", value)
