"""The CAP feed channel: each approved version becomes one CAP document at a permanent URL.

Delivering means building (and, when configured, signing) the message, storing its bytes in
``cap_documents`` and, with ``FEED_DIR`` set, writing the document and the rebuilt feeds there.
A message that fails validation is not stored: the delivery is recorded as failed with the
validator's error list, which the dispatch machinery audits and the alert page shows.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from alertd.alerts.criteria import load_rule_sets
from alertd.alerts.models import Alert, Version
from alertd.channels.base import (
    OUT_FAILED,
    OUT_RETRY,
    OUT_SENT,
    Channel,
    Outcome,
    PreviewText,
    PublicLink,
    Routes,
    VersionNote,
)
from alertd.channels.cap import views
from alertd.channels.cap.builder import build_cap
from alertd.channels.cap.feed_summary import summarize
from alertd.channels.cap.feed_urls import document_path, document_url
from alertd.channels.cap.message import CapPhoto, CapReference, CapVersion
from alertd.channels.cap.models import CapDocument
from alertd.channels.cap.preview import cap_preview_texts
from alertd.channels.cap.signing import CapSignatureError, sign_cap
from alertd.channels.cap.validate import CapValidationError, validate_cap
from alertd.channels.models import Delivery
from alertd.context import Context
from alertd.db import dialect_insert, utcnow
from alertd.i18n import N_
from alertd.localtime import to_local
from alertd.public.links import base_url, public_page_url
from alertd.settings import Settings

log = logging.getLogger(__name__)

RECIPIENT = "feed"


class CapBuildError(Exception):
    """The version cannot become a valid CAP message; `errors` says why, one problem each."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


def web_url(settings: Settings, public_id: str) -> str:
    return public_page_url(settings, public_id)


def cap_version_for(settings: Settings, version: Version, alert: Alert) -> CapVersion:
    """The builder's input for one stored version (its relationships must be loaded)."""
    photo = None
    if version.photo is not None:
        stored = version.photo
        photo = CapPhoto(
            uri=f"{base_url(settings)}/photos/{stored.sha256}.{stored.extension}",
            mime_type=stored.mime_type,
            size=stored.size,
            sha1=stored.sha1,
            data=stored.data if stored.size <= settings.CAP_DEREF_MAX_BYTES else None,
        )
    # Times carry the configured zone's offset (ALERTD_TIMEZONE); references are written in the
    # same zone so that they read exactly as the earlier messages wrote their <sent>.
    references = tuple(
        CapReference(
            str(sender), str(identifier), to_local(datetime.fromisoformat(str(sent)), settings)
        )
        for sender, identifier, sent in version.references
    )
    return CapVersion(
        identifier=version.identifier,
        sender=version.sender,
        sender_name=settings.CAP_SENDER_NAME,
        sent=to_local(version.sent_at, settings),
        status=version.status,
        msg_type=version.msg_type,
        kind=version.kind,
        references=references,
        # The sweeper's expiry Cancel goes out just after the alert's expiry; CAP allows a
        # message that ends at once (expires == sent) but not one that expired before it was sent.
        expires=to_local(max(version.expires_at, version.sent_at), settings),
        content=version.content,
        web_url=web_url(settings, alert.public_id),
        photo=photo,
        jurisdiction_name=_public_name(settings, alert.jurisdiction),
        source=settings.CAP_SOURCE,
        ipaws=settings.CAP_IPAWS,
    )


def _public_name(settings: Settings, jurisdiction: str) -> str:
    rule_set = load_rule_sets(settings.criteria_dir).get(jurisdiction)
    return rule_set.public_name if rule_set is not None else ""


def _signing_identity(settings: Settings) -> tuple[bytes, bytes] | None:
    if not (settings.CAP_SIGNING_KEY or settings.CAP_SIGNING_CERT):
        return None
    if not (settings.CAP_SIGNING_KEY and settings.CAP_SIGNING_CERT):
        raise CapBuildError(
            ["signing needs both ALERTD_CAP_SIGNING_KEY and ALERTD_CAP_SIGNING_CERT"]
        )
    try:
        key = Path(settings.CAP_SIGNING_KEY).read_bytes()
        cert = Path(settings.CAP_SIGNING_CERT).read_bytes()
    except OSError as exc:
        raise CapBuildError([f"cannot read the signing key or certificate: {exc}"]) from exc
    return key, cert


def build_document(settings: Settings, cap_version: CapVersion) -> bytes:
    """Build, sign when configured, and check again after signing. Raises CapBuildError."""
    try:
        xml = build_cap(cap_version)
    except CapValidationError as exc:
        raise CapBuildError(exc.errors) from exc
    except ValueError as exc:  # bad input, e.g. a character XML cannot carry
        raise CapBuildError([str(exc)]) from exc
    identity = _signing_identity(settings)
    if identity is None:
        return xml
    try:
        signed = sign_cap(xml, *identity)
    except CapSignatureError as exc:
        raise CapBuildError([str(exc)]) from exc
    errors = validate_cap(signed, strict=True)
    if errors:
        raise CapBuildError(["the signed message is not valid CAP: " + e for e in errors])
    return signed


def publish_version(ctx: Context, version_id: int) -> CapDocument:
    """Store the CAP document of one version and return it; the first stored copy wins.

    The build runs outside any transaction, since the SQLite engine takes the write lock at
    BEGIN. Running twice (a retried delivery) stores nothing new: the row is insert-or-ignore on
    the version and identifier, and the original bytes stay at the permanent URL.
    """
    with ctx.db.session() as session:
        existing = session.execute(
            select(CapDocument).where(CapDocument.version_id == version_id)
        ).scalar_one_or_none()
        if existing is not None:
            return existing
        version = session.get(Version, version_id)
        if version is None:
            raise CapBuildError([f"version {version_id} does not exist"])
        cap_version = cap_version_for(ctx.settings, version, version.alert)
    xml = build_document(ctx.settings, cap_version)
    with ctx.db.transaction() as session:
        session.execute(
            dialect_insert(session)(CapDocument)
            .values(
                identifier=version.identifier,
                version_id=version.id,
                alert_id=version.alert_id,
                status=version.status,
                msg_type=version.msg_type,
                kind=version.kind,
                sent_at=version.sent_at,
                expires_at=cap_version.expires,
                xml=xml,
                sha256=hashlib.sha256(xml).hexdigest(),
                size=len(xml),
                summary=summarize(xml),
                created_at=utcnow(),
            )
            .on_conflict_do_nothing()
        )
        stored = session.execute(
            select(CapDocument).where(CapDocument.version_id == version_id)
        ).scalar_one()
    return stored


class CapFeedChannel(Channel):
    name = "cap"
    idempotent = True
    # Every version's document must exist at its permanent URL, even one superseded a second
    # after approval: later messages reference it and aggregators may already have its URL.
    sends_superseded = True

    def preview(self, ctx: Context, version: Version) -> dict[str, str]:
        """The whole CAP message (every language's info block), under the primary language."""
        primary = (version.content.get("languages") or ["en-US"])[0]
        return {primary: self._document_text(ctx, version)}

    def preview_texts(self, ctx: Context, version: Version) -> list[PreviewText]:
        """The headline and WEA texts per language, from content not yet published."""
        public_id = ""
        if version.alert_id is not None:
            with ctx.db.session() as session:
                public_id = session.execute(
                    select(Alert.public_id).where(Alert.id == version.alert_id)
                ).scalar_one()
        return cap_preview_texts(
            ctx.settings,
            version.content,
            kind=version.kind,
            status=version.status,
            web_url=web_url(ctx.settings, public_id),
            jurisdiction_name=_public_name(ctx.settings, str(version.content.get("jurisdiction"))),
        )

    def _document_text(self, ctx: Context, version: Version) -> str:
        with ctx.db.session() as session:
            loaded = session.get(Version, version.id)
            assert loaded is not None
            cap_version = cap_version_for(ctx.settings, loaded, loaded.alert)
        try:
            return build_document(ctx.settings, cap_version).decode("utf-8")
        except CapBuildError as exc:
            return "CAP message cannot be built: " + "; ".join(exc.errors)

    def plan(self, ctx: Context, version: Version) -> Iterable[str]:
        return [RECIPIENT]

    def deliver(
        self, ctx: Context, version: Version, deliveries: Sequence[Delivery]
    ) -> list[Outcome]:
        try:
            document = publish_version(ctx, version.id)
        except CapBuildError as exc:
            # Not retried: the same version builds the same invalid message every time.
            log.error("CAP message %s not published: %s", version.identifier, exc)
            return [Outcome(d.id, OUT_FAILED, "; ".join(exc.errors)) for d in deliveries]
        if ctx.settings.FEED_DIR:
            from alertd.channels.cap.static import write_feed_dir

            try:
                write_feed_dir(ctx, [document])
            except OSError as exc:
                # The document is stored and the Flask routes serve it; the static copy is
                # retried, which rewrites the same bytes.
                log.warning("could not write %s: %s", ctx.settings.FEED_DIR, exc)
                return [Outcome(d.id, OUT_RETRY, f"FEED_DIR: {exc}") for d in deliveries]
        url = document_url(ctx.settings, document.identifier)
        return [Outcome(d.id, OUT_SENT, external_id=url[-120:]) for d in deliveries]

    def routes(self) -> Sequence[Routes]:
        # Feeds, documents and the public page are public reads: no form, no CSRF to check.
        return (Routes(views.bp),)

    def version_notes(
        self, ctx: Context, session: Session, alert_id: int
    ) -> dict[int, VersionNote]:
        return {
            s.version_id: VersionNote(s.line, s.url)
            for s in cap_status_for_alert(session, alert_id, ctx.settings)
        }

    def public_links(self, ctx: Context, session: Session, alert_id: int) -> list[PublicLink]:
        # The latest document: the one a reader of the page would want.
        identifier = session.execute(
            select(CapDocument.identifier)
            .where(CapDocument.alert_id == alert_id)
            .order_by(CapDocument.version_id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if identifier is None:
            return []
        return [PublicLink(N_("CAP message"), document_path(identifier), "application/cap+xml")]

    def periodic(self, ctx: Context) -> None:
        """Called by the sweeper: the static feeds drop entries whose time has come."""
        if ctx.settings.FEED_DIR:
            from alertd.channels.cap.static import refresh_feed_dir

            refresh_feed_dir(ctx)


# What the console shows ------------------------------------------------------------------------


@dataclass(frozen=True)
class CapStatus:
    version_id: int
    seq: int
    identifier: str
    state: str  # published | failed | pending
    errors: tuple[str, ...] = ()
    url: str | None = None

    @property
    def line(self) -> str:
        if self.state == "failed":
            return "CAP: failed: " + "; ".join(self.errors)
        return f"CAP: {self.state}"


def cap_status_for_alert(
    session: Session, alert_id: int, settings: Settings | None = None
) -> list[CapStatus]:
    """Per version of the alert, oldest first: whether its CAP message was published, failed
    (with the validator's errors), or is still on its way. With settings, published lines carry
    the document's URL."""
    versions = session.execute(
        select(Version.id, Version.seq, Version.identifier)
        .where(Version.alert_id == alert_id)
        .order_by(Version.seq)
    ).all()
    published = set(
        session.execute(
            select(CapDocument.version_id).where(CapDocument.alert_id == alert_id)
        ).scalars()
    )
    deliveries = {
        d.version_id: d
        for d in session.execute(
            select(Delivery).where(Delivery.alert_id == alert_id, Delivery.channel == "cap")
        ).scalars()
    }
    statuses = []
    for version_id, seq, identifier in versions:
        delivery = deliveries.get(version_id)
        if version_id in published:
            url = document_url(settings, identifier) if settings is not None else None
            statuses.append(CapStatus(version_id, seq, identifier, "published", url=url))
        elif delivery is not None and delivery.state == "failed":
            errors = tuple(e.strip() for e in delivery.last_error.split("; ") if e.strip())
            statuses.append(CapStatus(version_id, seq, identifier, "failed", errors))
        else:
            statuses.append(CapStatus(version_id, seq, identifier, "pending"))
    return statuses
