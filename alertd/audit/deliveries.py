"""Deliveries checked against the trail: each delivery's latest audited state, followed through
every entry that moved it, compared with its row, and each entry's digest recomputed from the
recipient hashes the rows keep (so it still holds once a purge has erased the recipients).

Entries that record where deliveries stand carry ``outcomes`` (state -> delivery ids) and a
``digest`` (alertd/audit/recipients.py): the record step's ``delivery.batch``, the sweeper's
``delivery.lease_expired`` and ``delivery.reconciled``, an operator's retry or replay. The
rule, per delivery, with S its latest audited state:

- S is an outcome (sent, failed, skipped, cancelled, unknown): the row must be in S;
- S is retry_wait or pending (it was sent back to be tried again): the row may be in any
  in-flight state (pending, sending, retry_wait), since a claim takes it to sending without an
  entry; its next outcome writes one;
- no entry names it: the row must be pending or sending (planned, not yet recorded);
- its latest entry predates ``outcomes`` (a per-delivery entry, or a batch entry listing
  ``deliveries`` only): unchecked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alertd.audit.models import AuditEntry
from alertd.audit.pages import PAGE, ok_entries
from alertd.audit.recipients import outcome_digest, recipient_hash
from alertd.channels.models import (
    ERASED_PREFIX,
    OPEN_STATES,
    PENDING,
    RETRY_WAIT,
    SENDING,
    Delivery,
)

# Ids per IN (...) when rows are read for a page of entries.
ROWS_PER_QUERY = 900
# Problems of one kind listed before the rest are only counted.
LISTED = 20
# The latest entry of a delivery predates `outcomes`.
_LEGACY = "?"
# Audited states after which any in-flight state is legitimate.
_REOPENED = (RETRY_WAIT, PENDING)


@dataclass
class DeliveryCheck:
    checked: int = 0
    unchecked: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class _Row:
    state: str
    recipient: str
    recipient_hash: str | None


def _outcomes(detail: dict[str, Any]) -> dict[str, list[int]] | None:
    outcomes = detail.get("outcomes")
    if not isinstance(outcomes, dict) or not isinstance(detail.get("digest"), str):
        return None
    return {str(state): [i for i in ids if isinstance(i, int)] for state, ids in outcomes.items()}


def _legacy_ids(entry: AuditEntry) -> list[int]:
    """Deliveries an entry from before `outcomes` names: they are counted unchecked."""
    listed = entry.detail.get("deliveries")
    if isinstance(listed, list):
        return [i for i in listed if isinstance(i, int)]
    if entry.target_type == "delivery" and (entry.target_id or "").isdigit():
        return [int(entry.target_id or 0)]
    return []


def _rows(session: Session, ids: Iterable[int]) -> dict[int, _Row]:
    wanted, found = sorted(set(ids)), {}
    for i in range(0, len(wanted), ROWS_PER_QUERY):
        for delivery_id, state, to, hashed in session.execute(
            select(Delivery.id, Delivery.state, Delivery.recipient, Delivery.recipient_hash).where(
                Delivery.id.in_(wanted[i : i + ROWS_PER_QUERY])
            )
        ):
            found[delivery_id] = _Row(state, to, hashed)
    return found


class _Problems:
    def __init__(self) -> None:
        self.by_kind: dict[str, list[str]] = {}

    def add(self, kind: str, text: str) -> None:
        self.by_kind.setdefault(kind, []).append(text)

    def listed(self) -> list[str]:
        out = []
        for found in self.by_kind.values():
            out.extend(found[:LISTED])
            if len(found) > LISTED:
                out.append(f"... and {len(found) - LISTED} more like the one above")
        return out


def _check_digests(
    session: Session, page: list[tuple[AuditEntry, dict[str, list[int]]]], problems: _Problems
) -> None:
    """Recompute each entry's digest from the rows' recipient hashes and its audited states."""
    rows = _rows(session, (i for _, outcomes in page for ids in outcomes.values() for i in ids))
    for entry, outcomes in page:
        items, missing = [], []
        for state, ids in outcomes.items():
            for delivery_id in ids:
                row = rows.get(delivery_id)
                if row is None or row.recipient_hash is None:
                    missing.append(delivery_id)
                else:
                    items.append((delivery_id, row.recipient_hash, state))
        where = f"audit entry seq={entry.seq} ({entry.action})"
        if missing:
            problems.add(
                "gone",
                f"{where} names deliveries {missing[:10]} that have no row or no recipient hash: "
                "they were deleted or altered outside alertd",
            )
        elif outcome_digest(items) != entry.detail["digest"]:
            ids = sorted(i for i, _, _ in items)
            problems.add(
                "digest",
                f"{where}: the recipient hashes of deliveries {ids[:25]} no longer match its "
                "digest: a delivery's recipient hash was altered outside alertd",
            )


def check_deliveries(session: Session, key: bytes | None = None) -> DeliveryCheck:
    """Follow every delivery through the trail and compare it with its row. ``key``: the
    recipient key; with it, a recipient not yet erased must also match its row's hash."""
    latest: dict[int, str] = {}
    problems = _Problems()
    page: list[tuple[AuditEntry, dict[str, list[int]]]] = []
    for entry in ok_entries(session, release=True):
        outcomes = _outcomes(entry.detail)
        if outcomes is None:
            for delivery_id in _legacy_ids(entry):
                latest[delivery_id] = _LEGACY
            continue
        for state, ids in outcomes.items():
            for delivery_id in ids:
                latest[delivery_id] = state
        page.append((entry, outcomes))
        if len(page) >= PAGE:
            _check_digests(session, page, problems)
            page = []
    if page:
        _check_digests(session, page, problems)
    report = DeliveryCheck()
    keyed = mismatched = 0
    last = 0
    while True:
        rows = session.execute(
            select(Delivery.id, Delivery.state, Delivery.recipient, Delivery.recipient_hash)
            .where(Delivery.id > last)
            .order_by(Delivery.id)
            .limit(PAGE)
        ).all()
        if not rows:
            break
        last = rows[-1][0]
        for delivery_id, state, to, hashed in rows:
            _compare(report, problems, delivery_id, state, latest.pop(delivery_id, None))
            if key is None or hashed is None or to.startswith(ERASED_PREFIX):
                continue
            keyed += 1
            if recipient_hash(key, to) != hashed:
                mismatched += 1
                problems.add(
                    "recipient",
                    f"delivery {delivery_id}'s recipient does not match its recipient hash: "
                    "it was changed outside alertd",
                )
    if keyed > 1 and mismatched == keyed:
        problems.by_kind["recipient"] = [
            f"none of {keyed} deliveries' recipients matches its recipient hash: verify is not "
            "using the application's ALERTD_SECRET_KEY (or every recipient was changed)"
        ]
    for delivery_id in sorted(latest):
        problems.add("gone", f"delivery {delivery_id} has audit entries but no row: it was deleted")
    report.problems = problems.listed()
    return report


def _compare(
    report: DeliveryCheck, problems: _Problems, delivery_id: int, state: str, audited: str | None
) -> None:
    if audited == _LEGACY:
        report.unchecked += 1
        return
    if audited is None:
        ok = state in (PENDING, SENDING)
        expected = "pending or sending (no audit entry records an outcome for it)"
    elif audited in _REOPENED:
        ok = state in OPEN_STATES
        expected = f"in flight (its latest audited state is {audited})"
    else:
        ok = state == audited
        expected = f"{audited}, its latest audited outcome"
    if ok:
        report.checked += 1
    else:
        problems.add(
            "state",
            f"delivery {delivery_id} is {state} but should be {expected}: its outcome was "
            "changed outside alertd",
        )
