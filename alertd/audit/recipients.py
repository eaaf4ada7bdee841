"""Delivery outcomes in the audit chain without the people they went to.

A delivery sub-batch is audited as one chained entry: the count per outcome and a digest of
the (delivery id, recipient hash, outcome) list. The recipient hash is a keyed hash (HMAC-SHA256
under a key derived from the instance secret), so the chain never holds a phone number or an
address, and a guessed number cannot be checked against it without the secret. The digest lets
a verifier holding the delivery rows prove which outcomes were recorded at that moment.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from typing import Any

from alertd.settings import Settings, ensure_secret_key

# Domain separation: the same instance secret signs sessions; this key is for nothing else.
_LABEL = b"alertd recipient hash v1"


def recipient_key(settings: Settings) -> bytes:
    return hmac.new(ensure_secret_key(settings).encode(), _LABEL, hashlib.sha256).digest()


def recipient_hash(key: bytes, recipient: str) -> str:
    return hmac.new(key, recipient.encode(), hashlib.sha256).hexdigest()


def outcome_digest(items: Iterable[tuple[int, str, str]]) -> str:
    """SHA-256 over a canonical encoding (sorted by delivery id, compact JSON) of the
    (delivery id, recipient hash, outcome) list, so the order outcomes arrived in is irrelevant."""
    canonical = json.dumps(sorted(items), separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


def batch_detail(rows: Sequence[tuple[int, str, str]], **context: Any) -> dict[str, Any]:
    """The detail of an entry that records where deliveries now stand; rows are (delivery id,
    recipient hash, state). ``outcomes`` (state -> delivery ids) lets `alertd audit verify`
    follow each delivery to its latest audited state (alertd/audit/deliveries.py); the digest
    ties those states to the recipient hashes kept on the rows."""
    outcomes: dict[str, list[int]] = {}
    for delivery_id, _, state in rows:
        outcomes.setdefault(state, []).append(delivery_id)
    return {
        **context,
        "counts": {state: len(ids) for state, ids in sorted(outcomes.items())},
        "outcomes": {state: sorted(ids) for state, ids in sorted(outcomes.items())},
        "digest": outcome_digest(rows),
    }
