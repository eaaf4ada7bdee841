"""Subscribers' numbers in E.164 (checked in ``alertd.phones``) and their keyed digest for the
audit trail (which is kept forever and must never hold a member of the public's number in
clear)."""

from __future__ import annotations

from alertd.audit.recipients import recipient_hash, recipient_key
from alertd.phones import BadNumber, to_e164
from alertd.settings import Settings

__all__ = ["BadNumber", "phone_digest", "to_e164"]


def phone_digest(settings: Settings, phone: str) -> str:
    """An HMAC of the number: the same number always gives the same digest (entries can be
    correlated by someone holding the key), but the trail alone does not reveal it. The same
    keyed hash as a delivery's recipient (one helper), so a subscriber's entries and the
    deliveries to them can be matched by whoever holds the instance secret."""
    return recipient_hash(recipient_key(settings), phone)
