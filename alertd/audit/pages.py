"""The trail's successful entries in order, a page at a time, for the checks that walk it all."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from alertd.audit.models import AuditEntry

# Entries read per query: a page is a few MB at most, and a million entries take 500 queries.
PAGE = 2000


def ok_entries(
    session: Session, where: ColumnElement[bool] | None = None, *, release: bool = False
) -> Iterator[AuditEntry]:
    """Every entry whose outcome is ``ok`` (and that matches ``where``), oldest first, by keyset
    pages. ``release`` drops each page from the session once it is consumed, so a walk over
    millions of entries keeps one page in memory; the caller then keeps nothing from them."""
    last = 0
    while True:
        query = select(AuditEntry).where(AuditEntry.seq > last, AuditEntry.outcome == "ok")
        if where is not None:
            query = query.where(where)
        page = session.execute(query.order_by(AuditEntry.seq).limit(PAGE)).scalars().all()
        if not page:
            return
        yield from page
        last = page[-1].seq
        if release:
            session.expunge_all()
