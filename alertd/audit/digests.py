"""Digests of the rows the audit trail vouches for: what a version published, who a user is and
what role they hold, what a token is and whose. The entry that writes such a row carries its
digest, so verify can tell a row edited or inserted outside alertd (alertd.audit.crosscheck).

Only fields that no audited action changes afterwards are digested: a token's last use and
revocation, a user's password, session epoch and active flag change without a new digest.
"""

from __future__ import annotations

import hashlib
from typing import Any

from alertd.accounts.models import ApiToken, User
from alertd.alerts.models import Version
from alertd.audit.services import canonical_json

# The audit actions that publish a version; each names it in detail["version"].
PUBLISHING_ACTIONS = frozenset(
    {
        "alert.approve",
        "alert.approve_update",
        "alert.cancel",
        "alert.resolve",
        "alert.extend",
        "alert.expire",
    }
)


def _digest(fields: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(fields).encode()).hexdigest()


def version_digest(version: Version) -> str:
    return _digest(
        {
            "id": version.id,
            "alert_id": version.alert_id,
            "seq": version.seq,
            "identifier": version.identifier,
            "sender": version.sender,
            "msg_type": version.msg_type,
            "kind": version.kind,
            "status": version.status,
            "sent_at": version.sent_at.isoformat(),
            "approved_at": version.approved_at.isoformat() if version.approved_at else None,
            "expires_at": version.expires_at.isoformat(),
            "content": version.content,
            "photo_id": version.photo_id,
            "references": version.references,
            "created_by_id": version.created_by_id,
            "approved_by_id": version.approved_by_id,
        }
    )


def user_digest(user: User) -> str:
    return _digest({"id": user.id, "username": user.username, "role": user.role})


def token_digest(token: ApiToken) -> str:
    return _digest(
        {
            "id": token.id,
            "user_id": token.user_id,
            "created_by_id": token.created_by_id,
            "name": token.name,
            "prefix": token.prefix,
            "token_hash": token.token_hash,
        }
    )


def version_detail(version: Version) -> dict[str, str]:
    """What a publishing action's audit entry says about the version it published."""
    return {"version": version.identifier, "version_digest": version_digest(version)}


def user_detail(user: User) -> dict[str, Any]:
    """What an entry that creates a user or changes their role says about the result."""
    return {"user_id": user.id, "user_digest": user_digest(user)}


def token_detail(token: ApiToken) -> dict[str, Any]:
    return {"token_id": token.id, "token_digest": token_digest(token)}
