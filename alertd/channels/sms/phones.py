"""Phone numbers in E.164, checked with ``phonenumbers``, and their keyed digest for the audit
trail (which is kept forever and must never hold a member of the public's number in clear)."""

from __future__ import annotations

import hashlib
import hmac

import phonenumbers

from alertd.settings import Settings, ensure_secret_key


class BadNumber(ValueError):
    pass


def to_e164(raw: str, region: str | None = None) -> str:
    """``raw`` as E.164 (``+14155550100``), or BadNumber saying why. Without a leading ``+`` the
    number is read in ``region`` (ISO 3166 code), if one is given."""
    text = (raw or "").strip()
    if not text:
        raise BadNumber("a phone number is required")
    try:
        number = phonenumbers.parse(text, region if not text.startswith("+") else None)
    except phonenumbers.NumberParseException as exc:
        raise BadNumber(f"{text[:30]!r} is not a phone number ({exc._msg})") from exc
    if not phonenumbers.is_valid_number(number):
        raise BadNumber(f"{text[:30]!r} is not a valid number in E.164 (+country code, number)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_digest(settings: Settings, phone: str) -> str:
    """An HMAC of the number: the same number always gives the same digest (entries can be
    correlated by someone holding the key), but the trail alone does not reveal it."""
    key = ensure_secret_key(settings).encode()
    return hmac.new(key, b"sms-phone:" + phone.encode(), hashlib.sha256).hexdigest()[:32]
