"""The whole verification `alertd audit verify` runs: the hash chain and its authenticated head,
the signed checkpoints, and the rows the trail vouches for. Everything found is reported, not
only the first problem, since one tamper usually shows in several places."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from alertd.audit.checkpoints import Folder
from alertd.audit.crosscheck import cross_check
from alertd.audit.deliveries import check_deliveries
from alertd.audit.models import AuditEntry
from alertd.audit.services import snapshot, verify_chain_in
from alertd.db import AUDIT_MAC_KEY

# Checkpoint lengths looked up per query.
CHUNK = 500


@dataclass
class TrailReport:
    entries: int = 0
    checkpoints: int = 0
    # Entries after the last checkpoint: only the head's MAC vouches for them so far.
    beyond_last_checkpoint: int = 0
    rows_checked: int = 0
    rows_unchecked: int = 0
    deliveries_checked: int = 0
    deliveries_unchecked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _hashes_at(session: Session, lengths: list[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for i in range(0, len(lengths), CHUNK):
        rows = session.execute(
            select(AuditEntry.seq, AuditEntry.hash).where(
                AuditEntry.seq.in_(lengths[i : i + CHUNK])
            )
        )
        found.update({seq: digest for seq, digest in rows})
    return found


def verify_trail(
    session: Session, folder: Folder | None, recipient_key: bytes | None = None
) -> TrailReport:
    """``folder``: the checkpoints read (and their signatures checked) before the walk, so a
    checkpoint written during it cannot look like a truncation. ``recipient_key``: with it,
    each delivery's recipient (until purged) must also match its recipient hash."""
    report = TrailReport()
    mac_key: bytes | None = session.info.get(AUDIT_MAC_KEY)
    with snapshot(session) as reading:
        chain = verify_chain_in(reading, mac_key)
        report.entries = chain.entries
        if not chain.ok and chain.problem:
            report.problems.append(chain.problem)
        if folder is not None:
            report.problems.extend(folder.problems)
            _compare_checkpoints(reading, folder, report)
        rows = cross_check(reading)
        deliveries = check_deliveries(reading, recipient_key)
    report.deliveries_checked = deliveries.checked
    report.deliveries_unchecked = deliveries.unchecked
    report.rows_checked, report.rows_unchecked = rows.checked, rows.unchecked
    report.problems.extend(rows.problems)
    report.problems.extend(deliveries.problems)
    return report


def _compare_checkpoints(session: Session, folder: Folder, report: TrailReport) -> None:
    checkpoints = sorted(folder.checkpoints, key=lambda c: c.length)
    report.checkpoints = len(checkpoints)
    hashes = _hashes_at(session, [c.length for c in checkpoints])
    for checkpoint in checkpoints:
        actual = hashes.get(checkpoint.length)
        if actual is None:
            report.problems.append(
                f"checkpoint {checkpoint.path} vouches for {checkpoint.length} entries, but the "
                f"trail has no entry seq={checkpoint.length}: it was truncated"
            )
        elif actual != checkpoint.head_hash:
            report.problems.append(
                f"entry seq={checkpoint.length} is not the one checkpoint {checkpoint.path} "
                "signed: the trail was rewritten up to there"
            )
    if checkpoints:
        report.beyond_last_checkpoint = max(0, report.entries - checkpoints[-1].length)
