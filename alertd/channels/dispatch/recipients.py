"""The keyed recipient hash on each delivery row: written when the row is planned, read by the
record step's audit digest, kept when a purge erases the recipient (alertd/audit/recipients.py
says what the hash is)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, bindparam, text, update
from sqlalchemy.orm import Session

from alertd.audit.recipients import recipient_hash, recipient_key
from alertd.channels.models import Delivery
from alertd.settings import Settings


def fill_hashes(session: Session, key: bytes, rows: Sequence[tuple[int, str]]) -> None:
    """Hash the recipients of rows just copied by INSERT ... SELECT, in the chunk's own
    transaction: neither database computes an HMAC in SQL (PostgreSQL only with pgcrypto), so
    the hashes are computed here. PostgreSQL writes them in one statement from two arrays (an
    executemany of one UPDATE per row doubled a chunk's time there); SQLite, in process, runs
    the executemany."""
    if not rows:
        return
    ids = [delivery_id for delivery_id, _ in rows]
    hashes = [recipient_hash(key, to) for _, to in rows]
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_FROM_ARRAYS, {"ids": ids, "hashes": hashes})
        return
    table = cast(Table, Delivery.__table__)
    session.execute(
        update(table)
        .where(table.c.id == bindparam("h_id"))
        .values(recipient_hash=bindparam("h_hash")),
        [{"h_id": i, "h_hash": h} for i, h in zip(ids, hashes, strict=True)],
    )


_FROM_ARRAYS = text(
    "UPDATE deliveries SET recipient_hash = given.h "
    "FROM unnest(CAST(:ids AS integer[]), CAST(:hashes AS varchar[])) AS given(id, h) "
    "WHERE deliveries.id = given.id"
)


def hashes_of(settings: Settings, deliveries: Sequence[Delivery]) -> dict[int, str]:
    """Each delivery's stored hash; computed for a row planned before rows carried one (the
    caller writes it back with the outcome)."""
    found = {d.id: d.recipient_hash for d in deliveries if d.recipient_hash is not None}
    missing = [d for d in deliveries if d.recipient_hash is None]
    if missing:
        key = recipient_key(settings)
        found.update({d.id: recipient_hash(key, d.recipient) for d in missing})
    return found
