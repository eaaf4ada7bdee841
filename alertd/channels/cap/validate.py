"""CAP 1.2 validation: the OASIS schema plus the rules the schema cannot express.

Every rule here answers a failure seen in real CAP traffic (docs/DOMAIN.md section 3): `Z` or
fractional times, references that do not parse, Updates that reference nothing, open polygons,
info blocks that disagree on category or event code, wireless texts too long for a phone.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from lxml import etree  # type: ignore[import-untyped]  # lxml ships no type information

from alertd.channels.cap.message import (
    CAP_NS,
    CMAM_LONG_TEXT_LIMIT,
    CMAM_TEXT_LIMIT,
    parse_cap_datetime,
)
from alertd.channels.cap.wea import wea_length

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "CAP-v1.2.xsd"
IPAWS_CODE = "IPAWSv1.0"

_NS = {"cap": CAP_NS}
# CAP 1.2 section 3.2.1: identifier and sender must not include spaces, commas or restricted
# characters (< and &); a comma or space would also break the references triples.
_FORBIDDEN_ID_CHARS = re.compile(r"[\s,<&]")


class CapValidationError(ValueError):
    """A CAP document broke the schema or a rule; `.errors` lists every problem found."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("invalid CAP message: " + "; ".join(self.errors))


def secure_parser() -> Any:
    # Entities and network access off: CAP documents arrive from peers we do not control.
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def parse_untrusted(xml: bytes) -> Any:
    """Parse a document from outside; ValueError when malformed or when it has a DOCTYPE.

    CAP has no DTD, and an unresolved entity reference left in the tree crashes libxml2's schema
    validator, so any DOCTYPE is refused outright rather than half-processed.
    """
    try:
        root = etree.fromstring(xml, secure_parser())
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None
    if root.getroottree().docinfo.doctype:
        raise ValueError("a DOCTYPE is not allowed in a CAP message")
    return root


# One compiled schema per thread: lxml keeps the last validation's error log on the schema object,
# so sharing one between web threads would mix their errors.
_per_thread = threading.local()


def _schema() -> Any:
    schema = getattr(_per_thread, "schema", None)
    if schema is None:
        schema = _per_thread.schema = etree.XMLSchema(
            etree.parse(str(SCHEMA_PATH), secure_parser())
        )
    return schema


def validate_cap(xml: bytes, *, strict: bool = False) -> list[str]:
    """Return human-readable problems with `xml`; an empty list means it is valid CAP 1.2.

    Signatures are not checked here (see `signing.verify_cap`). `strict=True` adds the rules
    alertd holds its own output to but real peers do not always follow: with `code` IPAWSv1.0,
    each info must carry exactly one SAME event code (example 05, a real NTWC message sent through
    IPAWS, carries none, so by default only "more than one" is an error).
    """
    try:
        root = parse_untrusted(xml)
    except ValueError as exc:
        return [str(exc)]
    levels = check_levels(root, exactly_one_same=strict, zero_offset=False)
    return [error for errors in levels.values() for error in errors]


def check_levels(
    root: Any, *, exactly_one_same: bool = True, zero_offset: bool = True
) -> dict[str, list[str]]:
    """The problems of a parsed document by level, in the order a reader should meet them:
    `schema` (the OASIS XSD), `cap` (CAP 1.2 rules the schema cannot express) and `ipaws` (the
    IPAWS v1.0 profile, checked only when the document's `<code>` says IPAWSv1.0).

    The defaults are google/cap-library's Ipaws1Profile: exactly one SAME event code, and no zero
    offset in `<sent>` and `<expires>` (a US sender writes its local offset).
    """
    if root.tag != f"{{{CAP_NS}}}alert":
        return {"schema": [f"root element is {root.tag!r}, expected {{{CAP_NS}}}alert"]}
    levels = {"schema": _schema_errors(_schema(), root), "cap": _rule_errors(root)}
    if is_ipaws(root):
        levels["ipaws"] = _ipaws_errors(
            root, exactly_one_same=exactly_one_same, zero_offset=zero_offset
        )
    return levels


def is_ipaws(root: Any) -> bool:
    return IPAWS_CODE in _texts(root, "cap:code")


def ipaws_recommendations(root: Any) -> list[str]:
    """What the IPAWS profile recommends but does not require (cap-library's recommendations)."""
    found: list[str] = []
    for where, info in _numbered_infos(root):
        for area_number, area in enumerate(info.findall("cap:area", _NS), start=1):
            same = [v for k, v in _pairs(area, "cap:geocode") if k == "SAME" and len(v) == 6]
            if not same:
                found.append(
                    f"{where} area {area_number}: add a SAME geocode (6-digit county code); "
                    "IPAWS recommends one even when a polygon or circle is given"
                )
    return found


def ensure_valid_cap(xml: bytes, *, strict: bool = False) -> None:
    """Raise CapValidationError unless `xml` passes `validate_cap`."""
    errors = validate_cap(xml, strict=strict)
    if errors:
        raise CapValidationError(errors)


def check_references_complete(xml: bytes, expected: Iterable[tuple[str, str, str]]) -> list[str]:
    """Name each expected `(sender, identifier, sent)` the message's references leave out.

    An Update or Cancel must reference every earlier live message of the incident, not only the
    last one. Times are compared as instants so `+00:00` and `-00:00` match.
    """
    root = parse_untrusted(xml)
    present: set[tuple[str, str, datetime | str]] = set()
    for triple in _text(root, "cap:references").split():
        parts = triple.split(",")
        if len(parts) == 3:
            present.add((parts[0], parts[1], _instant(parts[2])))
    return [
        f"references is missing {sender},{identifier},{sent}"
        for sender, identifier, sent in expected
        if (sender, identifier, _instant(sent)) not in present
    ]


def _instant(value: str) -> datetime | str:
    try:
        return parse_cap_datetime(value)
    except ValueError:
        return value


def _schema_errors(schema: Any, root: Any) -> list[str]:
    try:
        if schema.validate(root):
            return []
    except etree.Error as exc:
        return [f"schema: cannot validate: {exc}"]
    return [f"schema: line {e.line}: {e.message}" for e in schema.error_log]


def _text(node: Any, path: str) -> str:
    found = node.find(path, _NS)
    if found is None or found.text is None:
        return ""
    return str(found.text).strip()


def _numbered_infos(root: Any) -> list[tuple[str, Any]]:
    numbered = []
    for number, info in enumerate(root.findall("cap:info", _NS), start=1):
        language = _text(info, "cap:language")
        numbered.append((f"info {number}" + (f" ({language})" if language else ""), info))
    return numbered


def _rule_errors(root: Any) -> list[str]:
    errors: list[str] = []
    identifier = _text(root, "cap:identifier")
    sender = _text(root, "cap:sender")
    for name, value in (("identifier", identifier), ("sender", sender)):
        bad = _FORBIDDEN_ID_CHARS.search(value)
        if bad:
            errors.append(f"{name} {value!r} contains {bad.group()!r} (no spaces, commas, < or &)")

    sent = _checked_time(root, "cap:sent", "sent", errors)
    msg_type = _text(root, "cap:msgType")

    errors.extend(_reference_errors(root, msg_type, sender, identifier))

    infos = root.findall("cap:info", _NS)
    if msg_type in ("Alert", "Update") and not infos:
        errors.append(f"msgType {msg_type} needs at least one <info>")

    categories = {frozenset(_texts(info, "cap:category")) for info in infos}
    if len(categories) > 1:
        errors.append("info blocks disagree on category: " + _describe(categories))
    event_codes = {frozenset(_pairs(info, "cap:eventCode")) for info in infos}
    if len(event_codes) > 1:
        errors.append("info blocks disagree on eventCode: " + _describe(event_codes))

    for where, info in _numbered_infos(root):
        errors.extend(_info_errors(info, where, sent))
    return errors


def _ipaws_errors(root: Any, *, exactly_one_same: bool, zero_offset: bool) -> list[str]:
    errors: list[str] = []
    if zero_offset and _is_zero_offset(_text(root, "cap:sent")):
        errors.append(
            "sent has a zero UTC offset; IPAWS expects the sender's local offset for US alerts"
        )
    for where, info in _numbered_infos(root):
        same_codes = [v for k, v in _pairs(info, "cap:eventCode") if k == "SAME"]
        if len(same_codes) > 1:
            errors.append(f"{where}: IPAWS allows one SAME eventCode, found {len(same_codes)}")
        elif exactly_one_same and not same_codes:
            errors.append(f"{where}: IPAWS needs exactly one SAME eventCode, found none")
        elif exactly_one_same and len(same_codes[0]) != 3:
            errors.append(f"{where}: SAME eventCode {same_codes[0]!r} is not a 3-letter code")
        expires = _text(info, "cap:expires")
        if not expires:
            errors.append(f"{where}: IPAWS needs <expires>")
        elif zero_offset and _is_zero_offset(expires):
            errors.append(
                f"{where}: expires has a zero UTC offset; IPAWS expects the sender's local offset"
            )
        if info.find("cap:area", _NS) is None:
            errors.append(f"{where}: IPAWS needs at least one <area>")
    return errors


def _is_zero_offset(value: str) -> bool:
    return value.endswith(("-00:00", "+00:00"))


def _info_errors(info: Any, where: str, sent: datetime | None) -> list[str]:
    errors: list[str] = []
    for field in ("effective", "onset"):
        _checked_time(info, f"cap:{field}", f"{where} {field}", errors)
    expires = _checked_time(info, "cap:expires", f"{where} expires", errors)
    # Equal is allowed: a cancellation that ends at once is sent with expires == sent (example 05).
    if expires is not None and sent is not None and expires < sent:
        errors.append(f"{where}: expires {_text(info, 'cap:expires')} is before sent")

    limits = {"CMAMtext": CMAM_TEXT_LIMIT, "CMAMlongtext": CMAM_LONG_TEXT_LIMIT}
    for name, value in _pairs(info, "cap:parameter"):
        limit = limits.get(name)
        if limit is not None and wea_length(value) > limit:
            errors.append(
                f"{where}: {name} is {wea_length(value)} WEA characters, at most {limit} allowed"
            )

    for area_number, area in enumerate(info.findall("cap:area", _NS), start=1):
        area_where = f"{where} area {area_number}"
        for polygon in _texts(area, "cap:polygon"):
            errors.extend(_polygon_errors(polygon, area_where))
        for circle in _texts(area, "cap:circle"):
            errors.extend(_circle_errors(circle, area_where))
    return errors


def _reference_errors(root: Any, msg_type: str, sender: str, identifier: str) -> list[str]:
    errors: list[str] = []
    triples = _text(root, "cap:references").split()
    if msg_type in ("Update", "Cancel") and not triples:
        errors.append(f"msgType {msg_type} must reference the earlier messages it replaces")
    for triple in triples:
        parts = triple.split(",")
        if len(parts) != 3 or not all(parts):
            errors.append(f"reference {triple!r} is not a sender,identifier,sent triple")
            continue
        ref_sender, ref_identifier, ref_sent = parts
        try:
            parse_cap_datetime(ref_sent)
        except ValueError as exc:
            errors.append(f"reference {triple!r}: {exc}")
        for name, value in (("sender", ref_sender), ("identifier", ref_identifier)):
            bad = _FORBIDDEN_ID_CHARS.search(value)
            if bad:
                errors.append(f"reference {triple!r}: {name} contains {bad.group()!r}")
        if (ref_sender, ref_identifier) == (sender, identifier):
            errors.append(f"reference {triple!r} points at this message itself")
    return errors


def _polygon_errors(polygon: str, where: str) -> list[str]:
    points: list[tuple[float, float]] = []
    for pair in polygon.split():
        point = _lat_lon(pair)
        if point is None:
            return [f"{where}: polygon point {pair!r} is not lat,lon"]
        points.append(point)
    errors: list[str] = []
    if len(points) < 4:
        errors.append(f"{where}: polygon has {len(points)} points, at least 4 needed")
    if points and points[0] != points[-1]:
        errors.append(f"{where}: polygon is not closed (first point must equal the last)")
    errors.extend(_range_errors(points, where))
    return errors


def _circle_errors(circle: str, where: str) -> list[str]:
    parts = circle.split()
    point = _lat_lon(parts[0]) if len(parts) == 2 else None
    radius = _number(parts[1]) if len(parts) == 2 else None
    if point is None or radius is None or radius < 0:
        return [f"{where}: circle {circle!r} is not 'lat,lon radius_km'"]
    return _range_errors([point], where)


def _range_errors(points: list[tuple[float, float]], where: str) -> list[str]:
    for lat, lon in points:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return [f"{where}: point {lat},{lon} is outside lat -90..90, lon -180..180"]
    return []


def _lat_lon(pair: str) -> tuple[float, float] | None:
    parts = pair.split(",")
    if len(parts) != 2:
        return None
    lat, lon = _number(parts[0]), _number(parts[1])
    if lat is None or lon is None:
        return None
    return lat, lon


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    # float() accepts "nan" and "inf", which are not WGS 84 coordinates.
    return value if math.isfinite(value) else None


def _checked_time(node: Any, path: str, name: str, errors: list[str]) -> datetime | None:
    element = node.find(path, _NS)
    if element is None:
        return None
    value = str(element.text or "").strip()
    try:
        return parse_cap_datetime(value)
    except ValueError as exc:
        errors.append(f"{name}: {exc}")
        return None


def _texts(node: Any, path: str) -> list[str]:
    return [str(e.text or "").strip() for e in node.findall(path, _NS)]


def _pairs(node: Any, path: str) -> list[tuple[str, str]]:
    return [
        (_text(pair, "cap:valueName"), _text(pair, "cap:value")) for pair in node.findall(path, _NS)
    ]


def _describe(groups: set[frozenset[Any]]) -> str:
    return " vs ".join(sorted(repr(sorted(group)) for group in groups))
