"""Signed checkpoints: the audit trail anchored outside the database.

A checkpoint names the chain's length and head hash, signed with the audit key, in the C2SP
checkpoint layout (https://c2sp.org/tlog-checkpoint: origin, size, base64 hash, then a signed
note's signature line). The hash is the head of alertd's hash chain rather than a Merkle root,
so C2SP tools can check the signature but not ask for inclusion proofs.

One file per length, created once and never overwritten, in ``ALERTD_AUDIT_CHECKPOINT_DIR``:
on every publication, and by the sweeper when the trail has grown and the last checkpoint is
older than ``ALERTD_AUDIT_CHECKPOINT_SECONDS``. The writer signs a head only after checking that
the chain since the last checkpoint extends it entry by entry and that the head's MAC holds, so
a rewritten trail is never blessed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from alertd.audit.keys import (
    SignatureError,
    Verifier,
    head_mac,
    load_signing_key,
    macs_equal,
    open_note,
    sign_note,
)
from alertd.audit.models import GENESIS_HASH, AuditEntry, AuditHead
from alertd.audit.services import compute_hash, entry_payload
from alertd.context import Context
from alertd.db import AUDIT_MAC_KEY
from alertd.settings import Settings

log = logging.getLogger(__name__)

PREFIX = "checkpoint-"
PAGE = 2000


class CheckpointRefused(RuntimeError):
    """The trail does not extend the last checkpoint: it will not be signed."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    length: int
    head_hash: str
    note: str
    path: Path | None = None


def origin(public_key: Ed25519PublicKey) -> str:
    """The log's name, from its key: stable whatever the instance's address is set to, and
    never the same for two instances' trails."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"alertd.audit/{hashlib.sha256(raw).hexdigest()[:16]}"


def verifier_for(settings: Settings) -> Verifier:
    public_key = load_signing_key(settings).public_key()
    return Verifier(origin(public_key), public_key)


def _text(name: str, length: int, head_hash: str) -> str:
    return f"{name}\n{length}\n{base64.b64encode(bytes.fromhex(head_hash)).decode()}\n"


def parse(note: str, verifier: Verifier, path: Path | None = None) -> Checkpoint:
    """A checkpoint signed by ``verifier``; :class:`SignatureError` for anything else."""
    lines = open_note(note, verifier).splitlines()
    if len(lines) < 3 or lines[0] != verifier.name:
        raise SignatureError(f"not a checkpoint of {verifier.name}")
    try:
        length = int(lines[1])
        head_hash = base64.b64decode(lines[2], validate=True).hex()
    except (ValueError, binascii.Error):
        raise SignatureError("a checkpoint's size or hash is malformed") from None
    if length < 1 or len(head_hash) != 64:
        raise SignatureError("a checkpoint's size or hash is out of range")
    return Checkpoint(lines[0], length, head_hash, note, path)


@dataclass(frozen=True)
class Folder:
    checkpoints: list[Checkpoint]
    # Files that are not checkpoints signed by the key, or that lie about their own name.
    problems: list[str]


def read_folder(folder: Path, verifier: Verifier) -> Folder:
    checkpoints, problems = [], []
    paths = sorted(folder.iterdir()) if folder.is_dir() else []
    for path in paths:
        name = path.name
        if not name.startswith(PREFIX) or name.endswith(".tmp"):
            continue
        try:
            checkpoint = parse(path.read_text(encoding="utf-8"), verifier, path)
        except (OSError, UnicodeDecodeError, SignatureError) as exc:
            problems.append(f"checkpoint {path} is not a valid signed checkpoint: {exc}")
            continue
        if name != _file_name(checkpoint.length):
            problems.append(f"checkpoint {path} signs length {checkpoint.length}: it was renamed")
            continue
        checkpoints.append(checkpoint)
    return Folder(checkpoints, problems)


def _file_name(length: int) -> str:
    return f"{PREFIX}{length:012d}"


def _latest(folder: Path, verifier: Verifier) -> Checkpoint | None:
    """The longest valid checkpoint. Only the newest files are read (names sort by length), so
    a publication does not pay for the whole folder; verify reads them all."""
    names = sorted(
        (p for p in folder.iterdir() if p.name.startswith(PREFIX) and not p.name.endswith(".tmp")),
        reverse=True,
    )
    for path in names:
        try:
            checkpoint = parse(path.read_text(encoding="utf-8"), verifier, path)
        except (OSError, UnicodeDecodeError, SignatureError) as exc:
            log.error("audit: checkpoint %s is not a valid signed checkpoint: %s", path, exc)
            continue
        if path.name == _file_name(checkpoint.length):
            return checkpoint
        log.error("audit: checkpoint %s signs length %s: it was renamed", path, checkpoint.length)
    return None


def _entries_from(session: Session, first_seq: int) -> Iterator[AuditEntry]:
    last = first_seq - 1
    while True:
        page = (
            session.execute(
                select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(PAGE)
            )
            .scalars()
            .all()
        )
        if not page:
            return
        yield from page
        last = page[-1].seq


def _check_extends(session: Session, latest: Checkpoint | None, head: AuditHead) -> None:
    """Raise :class:`CheckpointRefused` unless the chain from ``latest`` to ``head`` is whole."""
    mac_key: bytes | None = session.info.get(AUDIT_MAC_KEY)
    if mac_key is None or not macs_equal(head.mac, head_mac(mac_key, head.seq, head.hash)):
        raise CheckpointRefused(f"the head (seq={head.seq}) is not authenticated by the audit key")
    if latest is not None and latest.length > head.seq:
        raise CheckpointRefused(
            f"the trail has {head.seq} entries but was checkpointed at {latest.length}"
        )
    head_seq, head_hash = head.seq, head.hash
    start = latest.length if latest else 1
    expected_seq, expected_prev = start, GENESIS_HASH
    for entry in _entries_from(session, start):
        if entry.seq > head_seq:
            break
        if latest is not None and entry.seq == latest.length:
            if entry.hash != latest.head_hash:
                raise CheckpointRefused(f"entry seq={entry.seq} differs from its checkpoint")
        elif entry.seq != expected_seq or entry.prev_hash != expected_prev:
            raise CheckpointRefused(f"the chain is broken at seq={entry.seq}")
        elif compute_hash(entry.prev_hash, entry_payload(entry)) != entry.hash:
            raise CheckpointRefused(f"entry seq={entry.seq} does not match its hash")
        expected_seq, expected_prev = entry.seq + 1, entry.hash
    if (expected_seq - 1, expected_prev) != (head_seq, head_hash):
        raise CheckpointRefused(f"the chain ends at seq={expected_seq - 1}, not at the head")


def _write_once(path: Path, text: str) -> bool:
    """Create ``path`` with ``text`` whole or not at all; never replace an existing file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


# This process's checkpoint writers take turns, and the last checkpoint each folder got from
# this process is kept: publications committed together are covered by the first checkpoint
# signed after them, and the others, in their turn, find their head already signed without
# reading the folder or the chain again.
_turn = threading.Lock()
_last_signed: dict[Path, Checkpoint] = {}


def write_checkpoint(ctx: Context, *, min_age_seconds: float = 0.0) -> Checkpoint | None:
    """Sign the current head into the checkpoint folder and return the checkpoint. None when
    the trail is empty, or when ``min_age_seconds`` is given and the last checkpoint is younger.
    :class:`CheckpointRefused` when the trail does not extend the last checkpoint."""
    with _turn:
        folder = ctx.settings.audit_checkpoint_dir
        known = _last_signed.get(folder)
        if known is not None and known.path is not None and known.path.exists():
            with ctx.db.session() as session:
                head = session.get(AuditHead, 1)
                unchanged = head is not None and (head.seq, head.hash) == (
                    known.length,
                    known.head_hash,
                )
            if unchanged:
                young = time.time() - known.path.stat().st_mtime < min_age_seconds
                return None if min_age_seconds and young else known
        checkpoint = _sign_head(ctx, min_age_seconds)
        if checkpoint is not None:
            _last_signed[folder] = checkpoint
        return checkpoint


def _sign_head(ctx: Context, min_age_seconds: float) -> Checkpoint | None:
    settings = ctx.settings
    key = load_signing_key(settings)
    verifier = Verifier(origin(key.public_key()), key.public_key())
    folder = settings.audit_checkpoint_dir
    folder.mkdir(parents=True, exist_ok=True)
    latest = _latest(folder, verifier)
    if (
        min_age_seconds
        and latest is not None
        and latest.path is not None
        and time.time() - latest.path.stat().st_mtime < min_age_seconds
    ):
        return None
    with ctx.db.session() as session:
        head = session.get(AuditHead, 1)
        if head is None or head.seq == 0:
            return None
        if latest is not None and (latest.length, latest.head_hash) == (head.seq, head.hash):
            return latest
        _check_extends(session, latest, head)
        length, head_hash = head.seq, head.hash
    note = sign_note(_text(verifier.name, length, head_hash), verifier.name, key)
    path = folder / _file_name(length)
    if not _write_once(path, note):
        # Another process signed this length first; it is what verify will compare.
        return parse(path.read_text(encoding="utf-8"), verifier, path)
    return Checkpoint(verifier.name, length, head_hash, note, path)


def write_checkpoint_quietly(ctx: Context, *, min_age_seconds: float = 0.0) -> None:
    """For after-commit hooks and the sweeper: a checkpoint that cannot be written is logged,
    never raised into the action that triggered it (verify reports what is wrong)."""
    try:
        write_checkpoint(ctx, min_age_seconds=min_age_seconds)
    except CheckpointRefused as exc:
        log.error("audit checkpoint refused: %s; run `alertd audit verify`", exc)
    except Exception:
        log.exception("audit checkpoint could not be written")
