"""The keyed recipient hash on each delivery row: written when the row is planned, read by the
record step's audit digest, kept when a purge erases the recipient (alertd/audit/recipients.py
says what the hash is)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ARRAY, Select, String, Subquery, bindparam, func, select
from sqlalchemy.orm import Session

from alertd.audit.recipients import recipient_hash, recipient_key
from alertd.channels.models import Delivery
from alertd.settings import Settings


def hashed_chunk(session: Session, key: bytes, chunk: Select[Any]) -> Subquery | None:
    """A chunk of a plan's recipients (a one-column query) with their hashes, as a subquery of
    two columns, ``r`` and ``h``, for planning's INSERT ... SELECT; None when the chunk is
    empty. Neither database computes an HMAC in SQL (PostgreSQL only with pgcrypto), so the
    chunk is read, hashed here and handed back as a set (:func:`hashed_rows`). Hashing after
    the INSERT instead, by an UPDATE of the fresh rows, rewrote every row and halved
    PostgreSQL's planning rate."""
    recipients = [str(r) for r in session.execute(chunk).scalars()]
    return hashed_rows(session, key, recipients) if recipients else None


def hashed_rows(session: Session, key: bytes, recipients: Sequence[str]) -> Subquery:
    """Recipients and their hashes as a two-column subquery (``r``, ``h``) whose statement text
    is the same for any number of rows: PostgreSQL unnests two array parameters, SQLite walks
    one JSON array (json_each). A multi-row VALUES list instead made a new statement for each
    chunk, which psycopg split and converted afresh: 20,000 rows a second at most."""
    hashes = [recipient_hash(key, r) for r in recipients]
    if session.get_bind().dialect.name == "postgresql":
        given = (
            func.unnest(
                bindparam("plan_r", list(recipients), type_=ARRAY(String)),
                bindparam("plan_h", hashes, type_=ARRAY(String)),
            )
            .table_valued("r", "h")
            .render_derived()
        )
        return select(given.c.r, given.c.h).subquery()
    each = func.json_each(
        bindparam("plan_rh", json.dumps(list(zip(recipients, hashes, strict=True))))
    ).table_valued("value")
    return select(
        func.json_extract(each.c.value, "$[0]").label("r"),
        func.json_extract(each.c.value, "$[1]").label("h"),
    ).subquery()


def hashes_of(settings: Settings, deliveries: Sequence[Delivery]) -> dict[int, str]:
    """Each delivery's stored hash; computed for a row planned before rows carried one (the
    caller writes it back with the outcome)."""
    found = {d.id: d.recipient_hash for d in deliveries if d.recipient_hash is not None}
    missing = [d for d in deliveries if d.recipient_hash is None]
    if missing:
        key = recipient_key(settings)
        found.update({d.id: recipient_hash(key, d.recipient) for d in missing})
    return found
