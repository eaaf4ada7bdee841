"""Writing, verifying and exporting the audit trail."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from alertd.actor import Actor
from alertd.audit.keys import head_mac, macs_equal
from alertd.audit.models import GENESIS_HASH, AuditEntry, AuditHead
from alertd.db import AUDIT_MAC_KEY, Database, utcnow
from alertd.errors import ServiceError

# Entries are read back in pages so verifying a long trail needs little memory.
VERIFY_PAGE = 2000


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_payload(entry: AuditEntry) -> dict[str, Any]:
    # token_id is hashed only when set, so entries written before the field existed verify.
    token = {} if entry.token_id is None else {"token_id": entry.token_id}
    return token | {
        "seq": entry.seq,
        "at": entry.at.isoformat(),
        "actor_id": entry.actor_id,
        "actor_name": entry.actor_name,
        "role": entry.role,
        "action": entry.action,
        "outcome": entry.outcome,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "address": entry.address,
        "user_agent": entry.user_agent,
        "detail": entry.detail,
    }


def storable(text: str, limit: int | None = None) -> str:
    """Text that any database column takes: what a client sent (a refused login's name, a
    header) may hold NUL or lone surrogates, which PostgreSQL and UTF-8 refuse; they are kept
    visible as escapes rather than failing the audit entry."""
    safe = text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
    return safe[:limit] if limit is not None else safe


def _storable_json(value: Any) -> Any:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(k)): _storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable_json(v) for v in value]
    if value is None or isinstance(value, bool | int):
        return value  # As JSON gives it back (a delivery batch's entry lists every id).
    return json.loads(canonical_json(value))


def compute_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(payload)).encode()).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    actor: Actor | None
    action: str
    target_type: str | None = None
    target_id: str | int | None = None
    outcome: str = "ok"
    detail: dict[str, Any] | None = None


# Every column an appended entry is written with (the id comes from the database).
_WRITTEN = tuple(c.key for c in AuditEntry.__table__.columns if c.key not in ("id", "hash"))


def _lock_head(session: Session) -> tuple[int, str]:
    """The chain's head (seq, hash), locked until the caller's transaction ends."""
    found = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1).with_for_update()
    ).one_or_none()
    if found is None:
        session.execute(insert(AuditHead).values(id=1, seq=0, hash=GENESIS_HASH))
        return 0, GENESIS_HASH
    return int(found.seq), str(found.hash)


def record(
    session: Session,
    *,
    actor: Actor | None,
    action: str,
    target_type: str | None = None,
    target_id: str | int | None = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry in the caller's transaction."""
    record_many(session, [AuditRecord(actor, action, target_type, target_id, outcome, detail)])


def record_many(session: Session, records: Iterable[AuditRecord]) -> None:
    """Append entries in the caller's transaction, taking the chain's lock once.

    Written as plain INSERT and UPDATE statements rather than through the unit of work: every
    delivery sub-batch appends one, under the chain's lock, and the flush cost more than the
    statements (2.4 of some 20 ms a sub-batch on PostgreSQL)."""
    session.flush()  # Whatever the caller changed lands before the entry that records it.
    seq, prev = _lock_head(session)
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for rec in records:
        actor = rec.actor
        entry = AuditEntry(
            seq=seq + 1,
            at=now,
            actor_id=actor.user_id if actor else None,
            actor_name=storable(actor.username, 120) if actor else "anonymous",
            role=actor.role if actor else "none",
            action=rec.action,
            outcome=rec.outcome,
            target_type=rec.target_type,
            target_id=None if rec.target_id is None else storable(str(rec.target_id), 60),
            address=storable(actor.address, 64) if actor and actor.address else None,
            user_agent=storable(actor.user_agent, 500) if actor and actor.user_agent else None,
            token_id=actor.token_id if actor else None,
            detail=_storable_json(rec.detail or {}),
            prev_hash=prev,
        )
        seq, prev = entry.seq, compute_hash(prev, entry_payload(entry))
        rows.append({c: getattr(entry, c) for c in _WRITTEN} | {"hash": prev})
    if not rows:
        return
    mac_key = session.info.get(AUDIT_MAC_KEY)
    head = {
        "head_seq": seq,
        "head_hash": prev,
        "head_mac": head_mac(mac_key, seq, prev) if mac_key else None,
    }
    if len(rows) == 1 and session.get_bind().dialect.name == "postgresql":
        # One round trip fewer while the chain's lock is held: the entry rides on the head's
        # UPDATE as a data-modifying WITH (PostgreSQL runs it even though nothing reads it).
        session.execute(_APPEND_ONE, rows[0] | head)
        return
    session.execute(insert(_ENTRIES), rows)
    session.execute(_MOVE_HEAD, head)


# Built once from the tables (not the mapped classes, whose UPDATE takes the ORM's bulk path
# and was compiled afresh for every append: 12% of a delivery sub-batch's time).
_ENTRIES = cast(Table, AuditEntry.__table__)
_HEAD = cast(Table, AuditHead.__table__)
_MOVE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(seq=bindparam("head_seq"), hash=bindparam("head_hash"), mac=bindparam("head_mac"))
)
_APPEND_ONE = _MOVE_HEAD.add_cte(
    insert(_ENTRIES).values({c: bindparam(c) for c in (*_WRITTEN, "hash")}).cte("appended")
)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    problem: str | None = None
    bad_seq: int | None = None
    bad_id: int | None = None


def _iter_entries(session: Session) -> Iterator[AuditEntry]:
    last_id: int | None = None
    while True:
        query = select(AuditEntry).order_by(AuditEntry.id).limit(VERIFY_PAGE)
        if last_id is not None:
            query = query.where(AuditEntry.id > last_id)
        page = session.execute(query).scalars().all()
        if not page:
            return
        yield from page
        last_id = page[-1].id
        session.expunge_all()


def verify_chain(session: Session) -> VerifyResult:
    """Walk the trail in insertion order and check sequence, links and hashes.

    Altering an entry breaks its hash; deleting one leaves a gap in the sequence; inserting or
    reordering rows breaks the order of sequence numbers or the links; truncating the tail no
    longer matches the head row.

    The walk must read one snapshot. On PostgreSQL each statement of a read-committed
    transaction sees new commits, so entries appended meanwhile would look like a head that ran
    ahead of its trail: it reads in a repeatable-read session of its own. SQLite transactions
    here take the write lock at BEGIN, which is a snapshot already, so the caller's session
    serves (a second connection would wait on the caller's lock).

    When the session carries the audit MAC key (every session of the application's database
    does), the head must also carry a MAC made with it: an entry appended, or a chain recomputed,
    by someone who can write to the database but not read the key file does not verify.
    """
    mac_key: bytes | None = session.info.get(AUDIT_MAC_KEY)
    with snapshot(session) as reading:
        return verify_chain_in(reading, mac_key)


@contextmanager
def snapshot(session: Session) -> Iterator[Session]:
    """A session that reads one snapshot of the database (see :func:`verify_chain`)."""
    engine = session.get_bind()
    if engine.dialect.name != "postgresql":
        yield session
        return
    with Session(engine.execution_options(isolation_level="REPEATABLE READ")) as reading:
        yield reading


def verify_chain_in(session: Session, mac_key: bytes | None) -> VerifyResult:
    expected_seq, expected_prev, count = 1, GENESIS_HASH, 0
    for entry in _iter_entries(session):
        count += 1
        where = f"audit entry seq={entry.seq} (id={entry.id}, action={entry.action})"
        if entry.seq != expected_seq:
            return VerifyResult(
                False,
                count,
                f"{where}: expected seq={expected_seq}; an entry was deleted, "
                "inserted or moved before it",
                entry.seq,
                entry.id,
            )
        if entry.prev_hash != expected_prev:
            return VerifyResult(
                False, count, f"{where}: does not link to the entry before it", entry.seq, entry.id
            )
        if compute_hash(entry.prev_hash, entry_payload(entry)) != entry.hash:
            return VerifyResult(
                False,
                count,
                f"{where}: content does not match its hash; it was altered",
                entry.seq,
                entry.id,
            )
        expected_seq, expected_prev = entry.seq + 1, entry.hash
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if (head_seq, head_hash) != (expected_seq - 1, expected_prev):
        return VerifyResult(
            False,
            count,
            f"the trail ends at seq={expected_seq - 1} but its head records "
            f"seq={head_seq}; entries after seq={expected_seq - 1} were deleted",
            expected_seq,
            None,
        )
    if (
        mac_key is not None
        and head is not None
        and head.seq > 0
        and not macs_equal(head.mac, head_mac(mac_key, head.seq, head.hash))
    ):
        return VerifyResult(
            False,
            count,
            f"the head (seq={head.seq}) is not authenticated by the audit key: the trail was "
            "appended to or recomputed outside alertd",
            head.seq,
            None,
        )
    return VerifyResult(True, count)


def export_jsonl(session: Session, out: IO[str]) -> int:
    count = 0
    for entry in _iter_entries(session):
        row = entry_payload(entry) | {
            "id": entry.id,
            "prev_hash": entry.prev_hash,
            "hash": entry.hash,
        }
        out.write(canonical_json(row) + "\n")
        count += 1
    return count


def timeline(session: Session, target_type: str, target_id: str | int) -> list[AuditEntry]:
    return list(
        session.execute(
            select(AuditEntry)
            .where(AuditEntry.target_type == target_type, AuditEntry.target_id == str(target_id))
            .order_by(AuditEntry.seq)
        ).scalars()
    )


def seal_head(session: Session) -> bool:
    """Authenticate a head written before heads carried a MAC (after an upgrade), once the chain
    verifies. True when it sealed one; the caller commits."""
    mac_key: bytes | None = session.info.get(AUDIT_MAC_KEY)
    head = session.get(AuditHead, 1)
    if mac_key is None or head is None or head.seq == 0 or head.mac is not None:
        return False
    if not verify_chain_in(session, None).ok:
        return False
    head = session.get(AuditHead, 1)
    assert head is not None  # read just above in this transaction
    head.mac = head_mac(mac_key, head.seq, head.hash)
    return True


def record_refusal(db: Database, error: ServiceError) -> None:
    """Write a refused action's audit entry, in a transaction of its own after the rollback."""
    if error.audit is None:
        return
    with db.sessions() as session:
        record(session, **error.audit)
        session.commit()
