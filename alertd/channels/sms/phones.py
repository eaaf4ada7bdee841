"""Subscribers' numbers in E.164 (checked in ``alertd.phones``) and their keyed digest for the
audit trail (which is kept forever and must never hold a member of the public's number in
clear)."""

from __future__ import annotations

import hashlib
import hmac

from alertd.phones import BadNumber, to_e164
from alertd.settings import Settings, ensure_secret_key

__all__ = ["BadNumber", "phone_digest", "to_e164"]


def phone_digest(settings: Settings, phone: str) -> str:
    """An HMAC of the number: the same number always gives the same digest (entries can be
    correlated by someone holding the key), but the trail alone does not reveal it."""
    key = ensure_secret_key(settings).encode()
    return hmac.new(key, b"sms-phone:" + phone.encode(), hashlib.sha256).hexdigest()[:32]
