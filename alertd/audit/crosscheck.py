"""Cross-checks of rows against the digests their audit entries carry: a version whose content
was edited in place, a user whose role was changed in the table, a token row inserted directly
each disagree with the (hash-chained, so unforgeable) trail.

Rows written before entries carried digests have an entry without one: they are counted as
unchecked rather than reported, since nothing says what they held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alertd.accounts.models import ApiToken, User
from alertd.alerts.models import Version
from alertd.audit.digests import PUBLISHING_ACTIONS, token_digest, user_digest, version_digest
from alertd.audit.models import AuditEntry
from alertd.audit.pages import ok_entries


@dataclass
class CrossCheck:
    checked: int = 0
    unchecked: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class _Vouched:
    """Per row id (or version identifier): the digest of its latest entry that carries one, or
    None when its entries predate digests."""

    versions: dict[str, str | None] = field(default_factory=dict)
    users: dict[int, str | None] = field(default_factory=dict)
    tokens: dict[int, str | None] = field(default_factory=dict)


def _remember(table: dict[Any, str | None], key: Any, digest: Any, creates: bool) -> None:
    """A digest vouches for the row; an entry without one vouches only if it created the row
    (a trail from before digests): other entries merely mention it."""
    if isinstance(digest, str):
        table[key] = digest
    elif creates:
        table.setdefault(key, None)


def _vouched(session: Session) -> _Vouched:
    found = _Vouched()
    relevant = (AuditEntry.target_type == "user") | AuditEntry.action.in_(PUBLISHING_ACTIONS)
    for entry in ok_entries(session, relevant):
        detail, action = entry.detail, entry.action
        if action in PUBLISHING_ACTIONS and isinstance(detail.get("version"), str):
            _remember(found.versions, detail["version"], detail.get("version_digest"), True)
        user_id = detail.get("user_id")
        if action == "user.create" and user_id is None and (entry.target_id or "").isdigit():
            user_id = int(entry.target_id or 0)
        if isinstance(user_id, int):
            _remember(found.users, user_id, detail.get("user_digest"), action == "user.create")
        if isinstance(detail.get("token_id"), int):
            creates = action == "token.create"
            _remember(found.tokens, detail["token_id"], detail.get("token_digest"), creates)
    return found


def _compare(
    report: CrossCheck, what: str, vouched: dict[Any, str | None], key: Any, actual: str
) -> None:
    if key not in vouched:
        report.problems.append(f"{what} has no audit entry: it was written outside alertd")
    elif vouched[key] is None:
        report.unchecked += 1
    elif vouched[key] != actual:
        report.problems.append(
            f"{what} differs from what its audit entry recorded: it was edited outside alertd"
        )
    else:
        report.checked += 1


def cross_check(session: Session) -> CrossCheck:
    """Compare every version, user and token with the digest its latest audit entry carries."""
    vouched = _vouched(session)
    report = CrossCheck()
    for version in session.execute(select(Version).order_by(Version.id)).scalars():
        what = f"version {version.identifier} (id={version.id})"
        _compare(report, what, vouched.versions, version.identifier, version_digest(version))
    for user in session.execute(select(User).order_by(User.id)).scalars():
        what = f"user {user.username!r} (id={user.id}, role={user.role})"
        _compare(report, what, vouched.users, user.id, user_digest(user))
    for token in session.execute(select(ApiToken).order_by(ApiToken.id)).scalars():
        what = f"API token id={token.id} ({token.prefix}…, user id={token.user_id})"
        _compare(report, what, vouched.tokens, token.id, token_digest(token))
    return report
