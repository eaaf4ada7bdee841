"""Parsing and checking an alert's body. Every form and API field passes through here, so an
error names the field and says what is wrong, and nothing unchecked reaches a feed."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from flask_babel import ngettext

from alertd import phones
from alertd.alerts.criteria import RuleSet
from alertd.alerts.geometry import polygon_problem
from alertd.db import utcnow

STATUSES = ("Actual", "Exercise", "Test")
# Used with fullmatch: "$" would also accept a trailing newline, which then breaks a header.
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
# XML 1.0 allows tab, newline, carriage return and these ranges; anything else breaks a feed.
_XML_FORBIDDEN = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_GEOCODE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,40}")

TEXT_LIMITS = {"short": 200, "long": 4000}
CHILD_FIELDS = ("name", "sex", "hair", "eyes", "clothing", "marks")
SUSPECT_FIELDS = ("name", "description")
VEHICLE_FIELDS = ("make", "model", "colour", "plate", "plate_region")
TOP_TEXT_FIELDS = ("case_reference", "last_seen_place", "direction_of_travel", "tip_line")
LONG_TEXT_FIELDS = ("description", "instruction")
MAX_ITEMS = 10
# Enough for a county outline; a feed entry must stay small (DOMAIN.md section 4).
MAX_POINTS = 500
# Last seen: a little clock skew into the future, and no further back than a month.
LAST_SEEN_FUTURE = timedelta(minutes=10)
LAST_SEEN_PAST = timedelta(days=31)


class ContentErrors(Exception):
    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


class _Checker:
    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def fail(self, path: str, message: str) -> None:
        # Paths carry keys the client chose; they are echoed back and audited, so they must be
        # short and encodable (a lone surrogate cannot be hashed or stored).
        safe = path.encode("utf-8", "backslashreplace").decode("utf-8")[:200]
        self.errors.setdefault(safe, message)

    def text(self, path: str, value: Any, limit: int) -> str:
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail(path, "must be text")
            return ""
        text = str(value).strip()
        if len(text) > limit:
            self.fail(path, f"is {len(text)} characters long; the limit is {limit}")
        bad = _XML_FORBIDDEN.search(text)
        if bad:
            self.fail(
                path,
                f"contains the control character U+{ord(bad.group()):04X}, "
                "which cannot be published",
            )
        return text[:limit]

    def number(
        self, path: str, value: Any, low: float, high: float, *, integer: bool = False
    ) -> float | int | None:
        if value is None or value == "":
            return None
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if not math.isfinite(number) or (integer and not number.is_integer()):
                raise ValueError
            if integer:
                number = int(number)
        except (TypeError, ValueError, OverflowError):
            self.fail(path, "must be a whole number" if integer else "must be a number")
            return None
        if not low <= number <= high:
            self.fail(path, f"must be between {low:g} and {high:g}")
            return None
        if isinstance(number, float) and number.is_integer() and path.endswith(("_cm", "_kg")):
            return int(number)  # "120 cm" reads better than "120.0 cm" everywhere it goes.
        return number

    def items(self, path: str, value: Any) -> list[Mapping[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            self.fail(path, "must be a list of objects")
            return []
        if len(value) > MAX_ITEMS:
            self.fail(path, f"at most {MAX_ITEMS} entries")
        return value[:MAX_ITEMS]

    def datetime(self, path: str, value: Any) -> datetime | None:
        if value in (None, ""):
            return None
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                self.fail(path, "must be a date and time like 2026-11-28T14:05:00-05:00")
                return None
        else:
            self.fail(path, "must be a date-time string")
            return None
        if parsed.tzinfo is None:
            self.fail(path, "must include a UTC offset, like 2026-11-28T14:05:00-05:00")
            return None
        try:
            parsed.astimezone(UTC)
        except OverflowError:
            self.fail(path, "is out of range")
            return None
        return parsed.replace(microsecond=0)


def _objects(
    c: _Checker,
    raw: Mapping[str, Any],
    key: str,
    build: Callable[[str, Mapping[str, Any]], dict[str, Any]],
) -> list[dict[str, Any]]:
    return [build(f"{key}[{i}]", item) for i, item in enumerate(c.items(key, raw.get(key)))]


def _child(c: _Checker, path: str, item: Mapping[str, Any]) -> dict[str, Any]:
    child: dict[str, Any] = {f: c.text(f"{path}.{f}", item.get(f), 200) for f in CHILD_FIELDS}
    child["age"] = c.number(f"{path}.age", item.get("age"), 0, 25, integer=True)
    child["height_cm"] = c.number(f"{path}.height_cm", item.get("height_cm"), 20, 230)
    child["weight_kg"] = c.number(f"{path}.weight_kg", item.get("weight_kg"), 1, 250)
    return child


def _suspect(c: _Checker, path: str, item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": c.text(f"{path}.name", item.get("name"), 200),
        "description": c.text(f"{path}.description", item.get("description"), 1000),
    }


def _vehicle(c: _Checker, path: str, item: Mapping[str, Any]) -> dict[str, Any]:
    vehicle: dict[str, Any] = {f: c.text(f"{path}.{f}", item.get(f), 80) for f in VEHICLE_FIELDS}
    vehicle["year"] = c.number(f"{path}.year", item.get("year"), 1900, 2100, integer=True)
    return vehicle


def _point(c: _Checker, path: str, value: Any) -> tuple[float, float] | None:
    if not isinstance(value, list | tuple) or len(value) != 2:
        c.fail(path, "must be a [lat, lon] pair")
        return None
    lat = c.number(f"{path}[0]", value[0], -90, 90)
    lon = c.number(f"{path}[1]", value[1], -180, 180)
    return None if lat is None or lon is None else (float(lat), float(lon))


def _area(c: _Checker, path: str, item: Mapping[str, Any]) -> dict[str, Any]:
    area: dict[str, Any] = {
        "description": c.text(f"{path}.description", item.get("description"), 500)
    }
    if not area["description"]:
        c.fail(f"{path}.description", "is required")
    geocodes = item.get("geocodes") or {}
    if not isinstance(geocodes, Mapping):
        c.fail(f"{path}.geocodes", "must be an object of name to value")
        geocodes = {}
    area["geocodes"] = {}
    for name, value in geocodes.items():
        if not _GEOCODE_NAME.fullmatch(str(name)):
            c.fail(f"{path}.geocodes", f"{str(name)[:40]!r} is not a valid geocode name")
            continue
        area["geocodes"][str(name)] = c.text(f"{path}.geocodes.{name}", value, 100)
    polygon = item.get("polygon")
    if polygon:
        if not isinstance(polygon, list):
            c.fail(f"{path}.polygon", "must be a list of [lat, lon] points")
        else:
            points = [
                _point(c, f"{path}.polygon[{i}]", p) for i, p in enumerate(polygon[:MAX_POINTS])
            ]
            clean = [p for p in points if p is not None]
            if len(polygon) > MAX_POINTS:
                c.fail(f"{path}.polygon", f"at most {MAX_POINTS} points")
            elif len(clean) == len(points):
                # The console's form closes the ring for the officer; a client of the API sends
                # the ring CAP will carry, so an open one is refused rather than guessed at.
                problem = polygon_problem(clean)
                if problem:
                    c.fail(f"{path}.polygon", problem)
                area["polygon"] = [list(p) for p in clean]
    circle = item.get("circle")
    if circle:
        if not isinstance(circle, Mapping):
            c.fail(f"{path}.circle", "must be an object with lat, lon and radius_km")
        else:
            lat = c.number(f"{path}.circle.lat", circle.get("lat"), -90, 90)
            lon = c.number(f"{path}.circle.lon", circle.get("lon"), -180, 180)
            radius = c.number(f"{path}.circle.radius_km", circle.get("radius_km"), 0, 5000)
            if None in (lat, lon, radius):
                c.fail(f"{path}.circle", "needs lat, lon and radius_km")
            else:
                area["circle"] = {"lat": lat, "lon": lon, "radius_km": radius}
    return area


def parse_content(
    raw: Any,
    *,
    rule_sets: Mapping[str, RuleSet],
    default_jurisdiction: str,
    default_expires: datetime,
    max_hours: int,
    phone_region: str | None = None,
) -> dict[str, Any]:
    """Check an alert body and return it normalised; raise ContentErrors naming every bad field.

    A draft may be incomplete; :func:`submission_problems` says what approval still needs.
    """
    if not isinstance(raw, Mapping):
        raise ContentErrors({"body": "must be a JSON object"})
    c = _Checker()
    out: dict[str, Any] = {}
    status = raw.get("status") or "Actual"
    if not isinstance(status, str) or status not in STATUSES:
        c.fail("status", f"must be one of {', '.join(STATUSES)}")
    out["status"] = status if status in STATUSES else "Actual"
    jurisdiction = raw.get("jurisdiction") or default_jurisdiction
    if not isinstance(jurisdiction, str) or jurisdiction not in rule_sets:
        c.fail("jurisdiction", f"must be one of {', '.join(sorted(rule_sets))}")
        jurisdiction = default_jurisdiction
    out["jurisdiction"] = jurisdiction
    criteria = raw.get("criteria") or {}
    known = {k.key for k in rule_sets[jurisdiction].criteria}
    if not isinstance(criteria, Mapping):
        c.fail("criteria", "must be an object of criterion to true/false")
        criteria = {}
    for key, value in criteria.items():
        if key not in known:
            c.fail(f"criteria.{key}", f"is not a criterion of {jurisdiction}")
        elif not isinstance(value, bool):
            c.fail(f"criteria.{key}", "must be true or false")
    out["criteria"] = {k: criteria.get(k) is True for k in sorted(known)}
    for field in TOP_TEXT_FIELDS:
        out[field] = c.text(field, raw.get(field), TEXT_LIMITS["short"])
    if out["tip_line"]:
        # The public page dials it from a tel: link, so it must be a number, not prose.
        try:
            out["tip_line"] = phones.tip_line(out["tip_line"], phone_region or None)
        except phones.BadNumber as exc:
            c.fail("tip_line", str(exc))
    for field in LONG_TEXT_FIELDS:
        out[field] = c.text(field, raw.get(field), TEXT_LIMITS["long"])
    out["children"] = _objects(c, raw, "children", lambda p, i: _child(c, p, i))
    out["suspects"] = _objects(c, raw, "suspects", lambda p, i: _suspect(c, p, i))
    out["vehicles"] = _objects(c, raw, "vehicles", lambda p, i: _vehicle(c, p, i))
    out["areas"] = _objects(c, raw, "areas", lambda p, i: _area(c, p, i))
    last_seen = c.datetime("last_seen_at", raw.get("last_seen_at"))
    if last_seen is not None and last_seen > utcnow() + LAST_SEEN_FUTURE:
        c.fail("last_seen_at", "is in the future")
    elif last_seen is not None and last_seen < utcnow() - LAST_SEEN_PAST:
        c.fail("last_seen_at", "is more than a month ago")
    out["last_seen_at"] = last_seen.isoformat() if last_seen else ""
    languages = raw.get("languages") or ["en-US"]
    if not isinstance(languages, list) or not all(
        isinstance(x, str) and _LANGUAGE.fullmatch(x) for x in languages
    ):
        c.fail("languages", "must be a list of language tags like en-US or fr-FR")
        languages = ["en-US"]
    out["languages"] = list(dict.fromkeys(languages))[:MAX_ITEMS]
    translations = raw.get("translations") or {}
    if not isinstance(translations, Mapping):
        c.fail("translations", "must be an object of language to description and instruction")
        translations = {}
    out["translations"] = {}
    for lang, texts in translations.items():
        if lang not in out["languages"]:
            c.fail(f"translations.{lang}", "is not one of the alert's languages")
            continue
        if not isinstance(texts, Mapping):
            c.fail(f"translations.{lang}", "must be an object with description and instruction")
            continue
        out["translations"][lang] = {
            f: c.text(f"translations.{lang}.{f}", texts.get(f), TEXT_LIMITS["long"])
            for f in LONG_TEXT_FIELDS
        }
    expires = c.datetime("expires_at", raw.get("expires_at")) or default_expires
    now = utcnow()
    if expires <= now:
        c.fail("expires_at", "must be in the future")
    elif expires > now + timedelta(hours=max_hours):
        within = ngettext("%(num)d hour", "%(num)d hours", max_hours)
        c.fail("expires_at", f"must be within {within}; extend the alert later instead")
    out["expires_at"] = expires.isoformat()
    if c.errors:
        raise ContentErrors(c.errors)
    return out


def submission_problems(content: Mapping[str, Any], rule_set: RuleSet) -> dict[str, str]:
    """What an alert still lacks before it may be approved: the jurisdiction's criteria and
    enough for the public to help (DOMAIN.md section 1)."""
    problems: dict[str, str] = {}
    for criterion in rule_set.unmet(content.get("criteria", {})):
        problems[f"criteria.{criterion.key}"] = f"not met: {criterion.label}"
    if rule_set.requires_case_reference and not content.get("case_reference"):
        problems["case_reference"] = (
            f"is required by the {rule_set.short_name} criteria (e.g. the NCIC number)"
        )
    children = content.get("children") or []
    if not children:
        problems["children"] = "at least one child is required"
    for i, child in enumerate(children):
        if not child.get("name"):
            problems[f"children[{i}].name"] = "is required"
        age = child.get("age")
        if age is None:
            problems[f"children[{i}].age"] = "is required"
        elif age > rule_set.max_age:
            problems[f"children[{i}].age"] = (
                f"{age} is above {rule_set.max_age}, the limit for {rule_set.short_name} alerts"
            )
    if not content.get("areas"):
        problems["areas"] = "at least one target area is required"
    if not content.get("tip_line"):
        problems["tip_line"] = "a tip line is required so the public can report sightings"
    if not content.get("description"):
        problems["description"] = "is required"
    return problems


# Something that reads as markup: many CAP readers show it raw, others strip or render it
# (google/cap-library's validator warns about it too).
_LOOKS_LIKE_HTML = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(\s[^<>]*)?/?>|&[A-Za-z]+;|&#\d+;")


def content_warnings(content: Mapping[str, Any], *, ipaws: bool) -> dict[str, str]:
    """What a reviewer should look at before approving, though it does not block approval:
    text that looks like HTML, and in IPAWS mode an area without its SAME county code."""
    warnings: dict[str, str] = {}

    def look(path: str, value: Any) -> None:
        if isinstance(value, str) and _LOOKS_LIKE_HTML.search(value):
            warnings[path] = (
                "looks like HTML tags or entities; alert readers show it as typed, so write "
                "plain text"
            )

    for field in (*TOP_TEXT_FIELDS, *LONG_TEXT_FIELDS):
        look(field, content.get(field))
    for key, fields in (
        ("children", CHILD_FIELDS),
        ("suspects", SUSPECT_FIELDS),
        ("vehicles", VEHICLE_FIELDS),
    ):
        for i, item in enumerate(content.get(key) or []):
            for field in fields:
                look(f"{key}[{i}].{field}", item.get(field))
    for lang, texts in (content.get("translations") or {}).items():
        for field in LONG_TEXT_FIELDS:
            look(f"translations.{lang}.{field}", (texts or {}).get(field))
    for i, area in enumerate(content.get("areas") or []):
        look(f"areas[{i}].description", area.get("description"))
        same = str((area.get("geocodes") or {}).get("SAME") or "")
        if ipaws and (area.get("polygon") or area.get("circle")) and len(same) != 6:
            warnings[f"areas[{i}].geocodes.SAME"] = (
                "add the area's SAME county code (6 digits): IPAWS recommends one even when a "
                "polygon or circle is drawn, and some receivers route by it alone"
            )
    return warnings


def expires_of(content: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(content["expires_at"])
