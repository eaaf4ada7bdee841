"""Account actions: every write to users and tokens goes through here, and is audited."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from alertd.accounts.models import ApiToken, User
from alertd.actor import ROLES, Actor
from alertd.audit.digests import token_detail, user_detail
from alertd.audit.models import AuditEntry
from alertd.audit.services import record, storable
from alertd.db import MAX_ROW_ID, Database, utcnow
from alertd.errors import Forbidden, Invalid, NotFound, TooManyRequests, Unauthenticated

_hasher = PasswordHasher()
# A hash of a random password, checked when the user does not exist, so that a login for an
# unknown name takes as long as one for a known name.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
TOKEN_PREFIX = "alertd_"  # noqa: S105 - a visible prefix, so leaked tokens are recognisable
MIN_PASSWORD_LENGTH = 12
# ASCII only: look-alike letters from other scripts would let one name pose as another.
_USERNAME = re.compile(r"^[A-Za-z0-9._-]{1,80}$")
# One address may fail this many times more than one account from one address: a police
# station shares one outside address, and a spray across accounts still stops.
ADDRESS_FACTOR = 4


def actor_for(user: User, address: str | None = None, user_agent: str | None = None) -> Actor:
    return Actor(user.id, user.username, user.role, address, user_agent)


def _check_admin(actor: Actor | None, action: str) -> None:
    # The command line (actor None) runs with the machine owner's authority.
    if actor is not None and not actor.can("users.manage"):
        raise Forbidden(
            "Only an admin manages users and tokens.",
            audit={
                "actor": actor,
                "action": action,
                "outcome": "refused",
                "detail": {"reason": "role"},
            },
        )


def create_user(
    session: Session,
    username: str,
    role: str,
    password: str,
    *,
    by: Actor | None = None,
    display_name: str = "",
) -> User:
    _check_admin(by, "user.create")
    username = username.strip()
    errors: dict[str, str] = {}
    if not _USERNAME.match(username):
        errors["username"] = "Use 1-80 ASCII letters, digits, dots, dashes or underscores."
    if len(display_name) > 120:
        errors["display_name"] = "At most 120 characters."
    if role not in ROLES:
        errors["role"] = f"Role must be one of: {', '.join(ROLES)}."
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = f"Passwords have at least {MIN_PASSWORD_LENGTH} characters."
    if session.execute(select(User.id).where(User.username == username)).first():
        errors["username"] = f"A user named {username!r} exists already."
    if errors:
        raise Invalid("The user was not created.", fields=errors)
    user = User(
        username=username,
        role=role,
        password_hash=_hasher.hash(password),
        display_name=display_name or username,
    )
    session.add(user)
    session.flush()
    record(
        session,
        actor=by,
        action="user.create",
        target_type="user",
        target_id=user.id,
        detail={"after": {"username": username, "role": role}, **user_detail(user)},
    )
    return user


def _throttled(
    session: Session, username: str, address: str | None, window: int, max_failures: int
) -> bool:
    """Too many recent failures for this account from this address; or, once the address as a
    whole passes a higher ceiling, any failure for this account from it. A flood aimed at one
    account therefore never locks another account's correct password out of a shared address
    (a police station has one), while a spray across accounts gets one guess per account."""
    since = utcnow() - timedelta(seconds=window)
    recent = select(func.count()).where(
        AuditEntry.action == "login.failed", AuditEntry.at >= since, AuditEntry.address == address
    )
    pair = int(session.execute(recent.where(AuditEntry.target_id == username[:60])).scalar_one())
    if pair >= max_failures:
        return True
    if pair == 0:
        return False
    return int(session.execute(recent).scalar_one()) >= max_failures * ADDRESS_FACTOR


# Throttled attempts counted since start, per (account, address): the trail gets one entry per
# window for each, not one per attempt, so a flood does not queue on the audit chain's lock.
throttled_counts: Counter[tuple[str, str | None]] = Counter()


# (account, address) pairs found throttled, until when (monotonic): further attempts within it
# are refused from memory, without a database transaction, which on SQLite would take the one
# write lock that approvals need. The database stays the truth; this only saves asking it.
# Each web application keeps its own (in app.extensions).
ThrottleMemo = dict[tuple[str, str | None], float]
THROTTLE_MEMO_SECONDS = 30.0


def known_throttled(memo: ThrottleMemo, username: str, address: str | None) -> bool:
    """True when this account and address were found throttled moments ago (and counts it)."""
    key = (storable(username, 120)[:60], address)
    until = memo.get(key)
    if until is None or until <= time.monotonic():
        return False
    throttled_counts[key] += 1
    return True


def _remember_throttled(memo: ThrottleMemo, key: tuple[str, str | None], window: int) -> None:
    now = time.monotonic()
    if len(memo) > 10_000:
        for old in [k for k, until in memo.items() if until <= now]:
            memo.pop(old, None)
    memo[key] = now + min(window, THROTTLE_MEMO_SECONDS)


def _throttle_recorded(session: Session, key: tuple[str, str | None], window: int) -> bool:
    since = utcnow() - timedelta(seconds=window)
    found = session.execute(
        select(AuditEntry.id)
        .where(
            AuditEntry.action == "login.throttled",
            AuditEntry.at >= since,
            AuditEntry.target_id == key[0],
            AuditEntry.address == key[1],
        )
        .limit(1)
    ).first()
    return found is not None


def _record_throttled(
    db: Database, anonymous: Actor, key: tuple[str, str | None], window: int
) -> None:
    """The window's one entry for this account and address, if it has none yet. Asked first
    without the write lock: every attempt after the window's first one ends there."""
    with db.session() as session:
        if _throttle_recorded(session, key, window):
            return
    with db.transaction() as session:
        if not _throttle_recorded(session, key, window):
            record(
                session,
                actor=anonymous,
                action="login.throttled",
                outcome="refused",
                target_type="user",
                target_id=key[0],
                detail={"window_seconds": window, "throttled_so_far": throttled_counts[key]},
            )


# One address's password checks take turns (in this process), so that its failures are counted
# one after another, as when the check ran inside one write transaction: a burst of parallel
# guesses gets no more tries than the same guesses in a row. Striped: a bounded set of locks.
_ADDRESS_TURNS = [threading.Lock() for _ in range(64)]


def authenticate(
    db: Database,
    username: str,
    password: str,
    *,
    address: str | None,
    user_agent: str | None,
    max_failures: int,
    window_seconds: int,
    memo: ThrottleMemo | None = None,
) -> User:
    """Check a password login. Failures are audited, and count towards the rate limit per
    account and per address.

    A refusal by the rate limit costs two reads and no password hash; it writes only the
    window's one ``login.throttled`` entry. The password hash (argon2: tens of milliseconds of
    CPU) is checked with no transaction open: on SQLite an open write transaction holds the one
    write lock that approvals need. Only the outcome's audit entry is a write."""
    # What was typed is compared, counted and audited as storable text (no NUL bytes).
    username = storable(username, 120)
    key = (username[:60], address)
    anonymous = Actor(None, username[:120] or "anonymous", "none", address, user_agent)
    with _ADDRESS_TURNS[hash(address) % len(_ADDRESS_TURNS)]:
        with db.session() as session:
            throttled = _throttled(session, username, address, window_seconds, max_failures)
            user = (
                None
                if throttled
                else session.execute(
                    select(User).where(User.username == username)
                ).scalar_one_or_none()
            )
        if throttled:
            throttled_counts[key] += 1
            if memo is not None:
                _remember_throttled(memo, key, window_seconds)
            _record_throttled(db, anonymous, key, window_seconds)
            raise TooManyRequests("Too many failed logins. Wait a few minutes and try again.")
        valid = False
        try:
            valid = _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            valid = False
        with db.transaction() as session:
            # The row as it is now: deactivated, or given a new password, since it was read.
            current = session.get(User, user.id) if user is not None else None
            if not (
                current is not None
                and user is not None
                and valid
                and current.active
                and current.password_hash == user.password_hash
            ):
                record(
                    session,
                    actor=anonymous,
                    action="login.failed",
                    outcome="refused",
                    target_type="user",
                    target_id=key[0],
                )
                failed = True
            else:
                failed = False
                if _hasher.check_needs_rehash(current.password_hash):
                    current.password_hash = _hasher.hash(password)
                record(
                    session,
                    actor=actor_for(current, address, user_agent),
                    action="login",
                    target_type="user",
                    target_id=current.username,
                )
        if failed or current is None:
            raise Unauthenticated("Wrong username or password.")
        return current


def record_logout(session: Session, actor: Actor) -> None:
    """Sign out on the server: bumping the epoch makes every cookie issued before it, including
    a copy of this one, worthless. (Cookies are signed, not stored, so the epoch is how the
    server takes one back; it signs the user out of their other browsers too.)"""
    user = session.get(User, actor.user_id) if actor.user_id is not None else None
    if user is not None:
        user.session_epoch += 1
    record(session, actor=actor, action="logout", target_type="user", target_id=actor.username)


def _user(session: Session, username: str) -> User:
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise NotFound(f"No user named {username!r}.")
    return user


def set_active(session: Session, username: str, active: bool, *, by: Actor | None) -> User:
    """Deactivate (or reactivate) a user. A deactivated user's sessions and tokens stop working
    on their next request: both are checked against ``active`` every time."""
    action = "user.activate" if active else "user.deactivate"
    _check_admin(by, action)
    user = _user(session, username)
    if not active and by is not None and by.user_id == user.id:
        raise Invalid("You cannot deactivate yourself.", fields={"username": "is you"})
    if user.active != active:
        user.active = active
        user.session_epoch += 1
        record(
            session,
            actor=by,
            action=action,
            target_type="user",
            target_id=user.username,
            detail={"before": {"active": not active}, "after": {"active": active}},
        )
    return user


def change_password(session: Session, actor: Actor, current: str, new: str) -> int:
    """A user changes their own password. Every session of theirs ends; the returned epoch is
    the new one, for the session that made the change to carry on with."""
    user = session.get(User, actor.user_id) if actor.user_id is not None else None
    if user is None or not user.active:
        raise Unauthenticated("Please sign in.")
    valid: bool = False
    try:
        valid = _hasher.verify(user.password_hash, current)
    except (VerificationError, InvalidHashError):
        valid = False
    if not valid:
        raise Invalid(
            "The current password is wrong.",
            fields={"current_password": "does not match"},
            audit={
                "actor": actor,
                "action": "password.change",
                "outcome": "refused",
                "target_type": "user",
                "target_id": user.username,
                "detail": {"reason": "wrong current password"},
            },
        )
    if len(new) < MIN_PASSWORD_LENGTH:
        raise Invalid(
            "The password was not changed.",
            fields={"new_password": f"at least {MIN_PASSWORD_LENGTH} characters"},
        )
    user.password_hash = _hasher.hash(new)
    user.session_epoch += 1
    record(
        session, actor=actor, action="password.change", target_type="user", target_id=user.username
    )
    return user.session_epoch


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: str
    record: ApiToken


def create_token(
    session: Session, username: str, name: str, *, by: Actor | None = None
) -> NewToken:
    """Create an API token for ``username``. The returned token is the only copy.

    Users mint their own tokens only: an admin who could mint one for an officer and one for a
    supervisor could raise and approve alone. The command line (``by`` None) runs with the
    server operator's authority and is audited as such."""
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if by is not None and (user is None or by.user_id != user.id):
        raise Forbidden(
            "Users create their own API tokens; nobody mints one for someone else.",
            audit={
                "actor": by,
                "action": "token.create",
                "outcome": "refused",
                "target_type": "user",
                "target_id": username[:60],
                "detail": {"reason": "not the token's owner"},
            },
        )
    if user is None:
        raise Invalid(f"No user named {username!r}.", fields={"username": "unknown user"})
    if not user.active:
        raise Invalid(f"{username} is deactivated.", fields={"username": "deactivated"})
    name = (name or "api").strip()
    if len(name) > 120:
        raise Invalid("The token's name is too long.", fields={"name": "at most 120 characters"})
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        created_by_id=by.user_id if by is not None else None,
        name=name,
        prefix=token[:12],
        token_hash=_hash_token(token),
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor=by,
        action="token.create",
        target_type="user",
        target_id=user.username,
        detail={
            "prefix": row.prefix,
            "name": row.name,
            "via": "console or API" if by is not None else "command line",
            **token_detail(row),
        },
    )
    return NewToken(token, row)


def token_for(session: Session, token: str) -> ApiToken | None:
    """The live token row (with its user) for a presented token, or None."""
    row = session.execute(
        select(ApiToken).where(ApiToken.token_hash == _hash_token(token))
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    return row


def token_actor(row: ApiToken, address: str | None, user_agent: str | None) -> Actor:
    return Actor(
        row.user.id,
        row.user.username,
        row.user.role,
        address,
        user_agent,
        token_id=row.id,
        token_creator_id=row.created_by_id,
    )


# last_used_at is written at most this often per token, so a busy integration does not turn
# every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def touch_token(session: Session, token_id: int) -> None:
    now = utcnow()
    session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            (ApiToken.last_used_at.is_(None))
            | (ApiToken.last_used_at < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
    )


def list_tokens(session: Session, *, by: Actor | None, own_only: bool = False) -> list[ApiToken]:
    """Every token for an admin or the command line; one's own for anybody else (and for an
    admin who asks for only their own)."""
    query = select(ApiToken).order_by(ApiToken.id)
    if by is not None and (own_only or not by.can("tokens.manage")):
        query = query.where(ApiToken.user_id == by.user_id)
    return list(session.execute(query).scalars())


def revoke_token(session: Session, token_id: int, *, by: Actor | None) -> ApiToken:
    """Revoke a token: its owner or an admin may. Revoking twice changes nothing."""
    row = session.get(ApiToken, token_id) if 0 < token_id <= MAX_ROW_ID else None
    if row is None or (
        by is not None and not by.can("tokens.manage") and row.user_id != by.user_id
    ):
        # Someone else's token is "not found" to a non-admin, so ids reveal nothing.
        raise NotFound(f"No token {token_id}.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        record(
            session,
            actor=by,
            action="token.revoke",
            target_type="user",
            target_id=row.user.username,
            detail={"token_id": row.id, "prefix": row.prefix, "name": row.name},
        )
    return row


def list_users(session: Session) -> list[User]:
    return list(session.execute(select(User).order_by(User.username)).scalars())


def ensure_first_admin(db: Database) -> str | None:
    """On a database with no users, create ``admin`` with a random password and return it."""
    with db.transaction() as session:
        if session.execute(select(func.count()).select_from(User)).scalar_one():
            return None
        password = secrets.token_urlsafe(12)
        create_user(session, "admin", "admin", password)
        return password
