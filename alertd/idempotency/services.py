"""Claim a key before acting, keep the answer after. A second request with the key waits for
the first to finish and gets its answer; nothing is done twice.

The claim is committed on its own before the action runs, so a double-click's second request
sees it at once. A refused action forgets its key (a refusal changes nothing, so trying again
is harmless); a claim whose process died is never taken over, because the action may have
committed: the caller is told to look at the alert instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update

from alertd.context import Context
from alertd.db import dialect_insert, rowcount, utcnow
from alertd.errors import Conflict, Invalid
from alertd.idempotency.models import DONE, RUNNING, IdempotencyKey

MAX_KEY_LENGTH = 100
# How long a repeated request waits for the first one to finish before answering "in
# progress". Actions take milliseconds; a double-click arrives within one.
WAIT_SECONDS = 10.0
POLL_SECONDS = 0.05
# Keys are kept this long, then purged: a retry a day later is a new request.
KEEP_HOURS = 24


@dataclass(frozen=True)
class Stored:
    status: int
    response: dict[str, Any]


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise Invalid(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.",
            fields={"Idempotency-Key": "invalid"},
        )
    return key


def begin(ctx: Context, user_id: int, key: str, fingerprint: str) -> Stored | None:
    """None when this request holds the key and must act, then call ``finish`` or ``forget``;
    otherwise the answer the first request with this key gave (waiting for it if needed)."""
    key = check_key(key)
    with ctx.db.transaction() as session:
        # RETURNING says whether this request inserted the row (rowcount does not, reliably,
        # for INSERT ... ON CONFLICT through psycopg).
        claimed = session.execute(
            dialect_insert(session)(IdempotencyKey)
            .values(
                user_id=user_id,
                key=key,
                fingerprint=fingerprint[:300],
                state=RUNNING,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["user_id", "key"])
            .returning(IdempotencyKey.id)
        ).first()
    if claimed is not None:
        return None
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        with ctx.db.session() as session:
            row = session.execute(
                select(IdempotencyKey).where(
                    IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
                )
            ).scalar_one_or_none()
            if row is None:
                # The first request was refused and forgot the key: this one may act.
                return begin(ctx, user_id, key, fingerprint)
            if row.fingerprint != fingerprint[:300]:
                raise Invalid(
                    "This idempotency key was used for a different request.",
                    fields={"Idempotency-Key": "reused for another request"},
                )
            if row.state == DONE and row.status is not None:
                return Stored(row.status, dict(row.response or {}))
        if time.monotonic() > deadline:
            raise Conflict(
                "The same request is still in progress (or was interrupted); look at the "
                "alert before trying again."
            )
        time.sleep(POLL_SECONDS)


def finish(ctx: Context, user_id: int, key: str, status: int, response: dict[str, Any]) -> None:
    with ctx.db.transaction() as session:
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key.strip())
            .values(state=DONE, status=status, response=response, finished_at=utcnow())
        )


def forget(ctx: Context, user_id: int, key: str) -> None:
    with ctx.db.transaction() as session:
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id,
                IdempotencyKey.key == key.strip(),
                IdempotencyKey.state == RUNNING,
            )
        )


def stored_response(ctx: Context, user_id: int, key: str) -> dict[str, Any] | None:
    with ctx.db.session() as session:
        row = session.execute(
            select(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id,
                IdempotencyKey.key == key.strip()[:MAX_KEY_LENGTH],
                IdempotencyKey.state == DONE,
            )
        ).scalar_one_or_none()
        return dict(row.response or {}) if row is not None else None


def purge_old_keys(ctx: Context) -> int:
    """Delete keys older than KEEP_HOURS; the sweeper calls this."""
    with ctx.db.transaction() as session:
        return rowcount(
            session.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.created_at < utcnow() - timedelta(hours=KEEP_HOURS)
                )
            )
        )
