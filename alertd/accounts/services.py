"""Account actions: every write to users and tokens goes through here, and is audited."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from alertd.accounts.models import ApiToken, User
from alertd.actor import ROLES, Actor
from alertd.audit.models import AuditEntry
from alertd.audit.services import record
from alertd.db import utcnow
from alertd.errors import Forbidden, Invalid, TooManyRequests, Unauthenticated

_hasher = PasswordHasher()
# A hash of a random password, checked when the user does not exist, so that a login for an
# unknown name takes as long as one for a known name.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
TOKEN_PREFIX = "alertd_"
MIN_PASSWORD_LENGTH = 12


def actor_for(user: User, address: str | None = None, user_agent: str | None = None) -> Actor:
    return Actor(user.id, user.username, user.role, address, user_agent)


def _check_admin(actor: Actor | None, action: str) -> None:
    # The command line (actor None) runs with the machine owner's authority.
    if actor is not None and not actor.can("users.manage"):
        raise Forbidden(
            "Only an admin manages users and tokens.",
            audit={"actor": actor, "action": action, "outcome": "refused",
                   "detail": {"reason": "role"}},
        )


def create_user(
    session: Session, username: str, role: str, password: str, *, by: Actor | None = None,
    display_name: str = "",
) -> User:
    _check_admin(by, "user.create")
    username = username.strip()
    errors: dict[str, str] = {}
    if not username or len(username) > 80 or not username.replace("-", "").replace(".", "") \
            .replace("_", "").isalnum():
        errors["username"] = "Use 1-80 letters, digits, dots, dashes or underscores."
    if role not in ROLES:
        errors["role"] = f"Role must be one of: {', '.join(ROLES)}."
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = f"Passwords have at least {MIN_PASSWORD_LENGTH} characters."
    if session.execute(select(User.id).where(User.username == username)).first():
        errors["username"] = f"A user named {username!r} exists already."
    if errors:
        raise Invalid("The user was not created.", fields=errors)
    user = User(username=username, role=role, password_hash=_hasher.hash(password),
                display_name=display_name or username)
    session.add(user)
    session.flush()
    record(session, actor=by, action="user.create", target_type="user", target_id=user.id,
           detail={"after": {"username": username, "role": role}})
    return user


def _recent_failures(session: Session, username: str, address: str | None, window: int) -> int:
    since = utcnow() - timedelta(seconds=window)
    conditions = [AuditEntry.target_id == username]
    if address:
        conditions.append(AuditEntry.address == address)
    query = select(func.count()).where(
        AuditEntry.action == "login.failed", AuditEntry.at >= since, or_(*conditions)
    )
    return int(session.execute(query).scalar_one())


def authenticate(
    session: Session, username: str, password: str, *, address: str | None,
    user_agent: str | None, max_failures: int, window_seconds: int,
) -> User:
    """Check a password login. Failures are audited in the caller's transaction, and count
    towards the rate limit per account and per address."""
    anonymous = Actor(None, username[:120] or "anonymous", "none", address, user_agent)
    if _recent_failures(session, username, address, window_seconds) >= max_failures:
        record(session, actor=anonymous, action="login.throttled", outcome="refused",
               target_type="user", target_id=username[:60])
        raise TooManyRequests("Too many failed logins. Wait a few minutes and try again.")
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    valid = False
    try:
        valid = _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        valid = False
    if not (user and valid and user.active):
        record(session, actor=anonymous, action="login.failed", outcome="refused",
               target_type="user", target_id=username[:60])
        raise Unauthenticated("Wrong username or password.")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    record(session, actor=actor_for(user, address, user_agent), action="login",
           target_type="user", target_id=user.username)
    return user


def record_logout(session: Session, actor: Actor) -> None:
    record(session, actor=actor, action="logout", target_type="user", target_id=actor.username)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: str
    record: ApiToken


def create_token(
    session: Session, username: str, name: str, *, by: Actor | None = None
) -> NewToken:
    """Create an API token for ``username``. The returned token is the only copy."""
    _check_admin(by, "token.create")
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise Invalid(f"No user named {username!r}.", fields={"username": "unknown user"})
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name or "api", prefix=token[:12],
                   token_hash=_hash_token(token))
    session.add(row)
    session.flush()
    record(session, actor=by, action="token.create", target_type="user", target_id=user.username,
           detail={"token_id": row.id, "prefix": row.prefix, "name": row.name})
    return NewToken(token, row)


def user_for_token(session: Session, token: str) -> User | None:
    row = session.execute(
        select(ApiToken).where(ApiToken.token_hash == _hash_token(token))
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    return row.user


def list_users(session: Session) -> list[User]:
    return list(session.execute(select(User).order_by(User.username)).scalars())
