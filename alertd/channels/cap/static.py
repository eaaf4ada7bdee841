"""``ALERTD_FEED_DIR``: the feeds and CAP documents as static files for nginx or a CDN.

The layout mirrors the URLs (``cap/<identifier>.xml``, ``feeds/cap.atom``,
``feeds/test/cap.atom``...), so a web server whose root is the folder answers the same paths as
the Flask routes, with the same bytes. Every file is written to a temporary file in the same
folder and renamed over the old one, so a reader sees the old file or the new one, never half.

nginx derives Last-Modified and its ETag ("mtime-size") from the file's whole-second mtime, so a
file whose bytes change always gets a later whole-second mtime than before (write_atomically).
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select

from alertd.channels.cap.feed_urls import document_path
from alertd.channels.cap.feeds import (
    FEED_NAMES,
    PUBLIC,
    TEST,
    BuiltFeeds,
    build_feeds,
    document_fingerprint,
)
from alertd.channels.cap.models import CapDocument
from alertd.context import Context
from alertd.db import utcnow

log = logging.getLogger(__name__)

# The folder's state as last written: the document fingerprint (count, newest id) and the next
# boundary of both scopes, to skip a rewrite when nothing changed (the periodic refresh calls
# this every sweep).
_STATE_FILE = ".state"


def write_atomically(path: Path, data: bytes) -> bool:
    """Replace `path` with `data` unless it already holds exactly that; True if written.

    The new file's mtime is a whole second later than the old one's: see next_mtime.
    """
    old_mtime: int | None = None
    try:
        old_mtime = path.stat().st_mtime_ns // 1_000_000_000
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        # mkstemp creates the file 0600; the web server reading the folder is another user.
        Path(temporary).chmod(0o644)
        # Stamped before the rename, so no reader ever sees the new bytes with an old mtime.
        stamp = next_mtime(old_mtime)
        os.utime(temporary, (stamp, stamp))
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def next_mtime(old_seconds: int | None) -> int:
    """The mtime for new bytes: the current whole second, but always after the old mtime's.

    nginx answers If-Modified-Since by comparing it with the mtime to the second, and its ETag
    is mtime-size: two writes within one second, same size, would leave both validators
    unchanged and pollers would keep a cancelled alert. During a burst of writes the mtime
    therefore runs a second or two ahead of the clock; it falls back to the clock once writes
    are more than a second apart.
    """
    now = math.floor(utcnow().timestamp())
    return now if old_seconds is None else max(now, old_seconds + 1)


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    # Two workers publishing at once must not interleave "build" and "write": the one that read
    # the older state could rename its feed over the newer one. Each build happens under the
    # lock, after the previous writer finished, so the last file written is the newest state.
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def document_file(folder: Path, identifier: str) -> Path:
    relative = document_path(identifier).lstrip("/")
    if "/" in relative.removeprefix("cap/") or relative.startswith("."):
        raise ValueError(f"identifier {identifier!r} cannot be a file name")
    return folder / relative


def feed_files(folder: Path, built: BuiltFeeds) -> dict[Path, bytes]:
    base = folder / "feeds" if built.scope == PUBLIC else folder / "feeds" / "test"
    return {base / name: built.bodies[name] for name in FEED_NAMES}


def write_feed_dir(
    ctx: Context, documents: Iterable[CapDocument] = (), *, all_documents: bool = False
) -> list[Path]:
    """Write the given documents (or every stored one) and rebuild both scopes' feeds.

    Returns the files that changed. Documents are immutable, so one already on disk with the
    same bytes is left alone.
    """
    folder = Path(ctx.settings.FEED_DIR)
    written: list[Path] = []
    with _folder_lock(folder):
        for document in _documents(ctx, documents, all_documents):
            path = document_file(folder, document.identifier)
            if write_atomically(path, document.xml):
                written.append(path)
        written += _write_feeds(ctx, folder)
    return written


def refresh_feed_dir(ctx: Context) -> list[Path]:
    """Rewrite the feeds if an entry has left by expiry or retention since the last write.

    Nothing but the clock moves a retention window's end, so something periodic (the sweeper)
    must call this; it costs one ``count(*), max(id)`` and a file read when nothing is due. The
    count also catches a document that committed after one with a higher id (PostgreSQL
    assigns ids at insert), which the newest id alone would leave out of the files.
    """
    if not ctx.settings.FEED_DIR:
        return []
    folder = Path(ctx.settings.FEED_DIR)
    try:
        recorded = (folder / _STATE_FILE).read_text().split()
    except FileNotFoundError:
        recorded = []
    count, max_id = document_fingerprint(ctx.db)
    if (
        len(recorded) == 3
        and recorded[:2] == [str(count), str(max_id)]
        and (recorded[2] == "-" or utcnow().timestamp() < float(recorded[2]))
    ):
        return []
    with _folder_lock(folder):
        return _write_feeds(ctx, folder)


def _documents(
    ctx: Context, given: Iterable[CapDocument], all_documents: bool
) -> Iterable[CapDocument]:
    if not all_documents:
        yield from given
        return
    last_id = 0
    while True:  # in pages, so a long history is never held in memory at once
        with ctx.db.session() as session:
            page = list(
                session.execute(
                    select(CapDocument)
                    .where(CapDocument.id > last_id)
                    .order_by(CapDocument.id)
                    .limit(200)
                ).scalars()
            )
        if not page:
            return
        yield from page
        last_id = page[-1].id


def _write_feeds(ctx: Context, folder: Path) -> list[Path]:
    written: list[Path] = []
    # Read before the build, so the build sees at least what the state file will record.
    fingerprint = document_fingerprint(ctx.db)
    now = utcnow()
    boundaries = []
    with ctx.db.session() as session:
        built = [
            build_feeds(session, ctx.settings, scope, fingerprint=fingerprint, now=now)
            for scope in (PUBLIC, TEST)
        ]
    for feeds in built:
        for path, body in feed_files(folder, feeds).items():
            if write_atomically(path, body):
                written.append(path)
        if feeds.valid_until is not None:
            boundaries.append(feeds.valid_until)
    until = f"{min(boundaries).timestamp():.3f}" if boundaries else "-"
    count, max_id = fingerprint
    write_atomically(folder / _STATE_FILE, f"{count} {max_id} {until}\n".encode())
    if written:
        log.info("FEED_DIR: wrote %d file(s) in %s", len(written), folder)
    return written
