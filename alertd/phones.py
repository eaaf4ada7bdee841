"""Phone numbers, checked with ``phonenumbers``: E.164 for the SMS channel's subscribers, and
the tip line the public calls, written the way people read it and dialled from a tel: link."""

from __future__ import annotations

import phonenumbers
from phonenumbers import shortnumberinfo


class BadNumber(ValueError):
    pass


def _parse(raw: str, region: str | None) -> phonenumbers.PhoneNumber:
    text = (raw or "").strip()
    if not text:
        raise BadNumber("a phone number is required")
    try:
        return phonenumbers.parse(text, region if not text.startswith("+") else None)
    except phonenumbers.NumberParseException as exc:
        raise BadNumber(f"{text[:30]!r} is not a phone number ({exc._msg})") from exc


def to_e164(raw: str, region: str | None = None) -> str:
    """``raw`` as E.164 (``+14155550100``), or BadNumber saying why. Without a leading ``+`` the
    number is read in ``region`` (ISO 3166 code), if one is given."""
    number = _parse(raw, region)
    if not phonenumbers.is_valid_number(number):
        text = raw.strip()
        raise BadNumber(f"{text[:30]!r} is not a valid number in E.164 (+country code, number)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def tip_line(raw: str, region: str | None = None) -> str:
    """A tip line as stored and shown: a valid number in international format
    (``+1 800-555-0199``), or, with a region, that region's emergency number (``911``).
    Free text ("call the sheriff") is refused: the public page dials it."""
    text = (raw or "").strip()
    if region and text.isdigit() and shortnumberinfo.is_emergency_number(text, region):
        return text
    try:
        number = _parse(text, region)
    except BadNumber:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        where = f"a number of region {region}, " if region else ""
        raise BadNumber(
            f"{text[:30]!r} is not a phone number; give {where}the country code and number, "
            "such as +1 800 555 0199"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def dial_target(shown: str) -> str | None:
    """What a tel: link dials for a stored tip line: E.164, or the bare short number; None
    for text saved before tip lines were checked, which is then shown without a link."""
    text = (shown or "").strip()
    if text.isdigit() and len(text) <= 6:
        return text
    try:
        return to_e164(text)
    except BadNumber:
        return None
