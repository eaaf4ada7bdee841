"""The CAP feed channel: from a stored version to a stored, valid CAP document."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from alertd.actor import SYSTEM, Actor
from alertd.alerts import services
from alertd.alerts.models import Alert, Version
from alertd.audit.models import AuditEntry
from alertd.broker import RecordingPublisher
from alertd.channels.cap.channel import (
    CapFeedChannel,
    cap_status_for_alert,
    cap_version_for,
    publish_version,
)
from alertd.channels.cap.models import CapDocument
from alertd.channels.cap.validate import validate_cap
from alertd.channels.models import Delivery
from alertd.channels.registry import Channel, load_channel
from alertd.context import Context
from tests.support.factories import alert_body, png_bytes
from tests.support.tasks import run_pending_tasks


@pytest.fixture(autouse=True)
def cap_channels(ctx: Context) -> Iterator[None]:
    ctx.settings = ctx.settings.with_overrides(CHANNELS="cap,log")
    yield


def _approved(ctx: Context, officer: Actor, supervisor: Actor, **body: object) -> Alert:
    alert = services.create_alert(ctx, alert_body(**body), by=officer, photo=png_bytes())
    services.submit_alert(ctx, alert.id, by=officer)
    return services.approve_alert(ctx, alert.id, by=supervisor)


def test_the_builtin_cap_channel_loads_and_keeps_every_version() -> None:
    channel = load_channel("cap")
    assert isinstance(channel, Channel) and isinstance(channel, CapFeedChannel)
    assert channel.name == "cap" and channel.idempotent and channel.sends_superseded


def test_a_version_maps_onto_the_builder_input(
    ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    settings = ctx.settings.with_overrides(CAP_IPAWS=True, CAP_SENDER_NAME="Springfield PD")
    alert = _approved(ctx, officer, supervisor)
    proposal = services.propose_update(
        ctx, alert.id, alert_body(description="Seen at the mall."), by=officer
    )
    services.approve_update(ctx, alert.id, by=supervisor, proposal_id=proposal.id)
    with ctx.db.session() as session:
        first, second = session.execute(
            select(Version).where(Version.alert_id == alert.id).order_by(Version.seq)
        ).scalars()
        assert first.photo is not None
        cap = cap_version_for(settings, second, second.alert)
        photo = first.photo
    assert cap.web_url == f"http://alertd.test/a/{alert.public_id}"
    assert cap.sender_name == "Springfield PD" and cap.ipaws
    assert cap.photo is not None
    assert cap.photo.uri == f"http://alertd.test/photos/{photo.sha256}.png"
    assert (cap.photo.size, cap.photo.sha1) == (photo.size, photo.sha1)
    assert [(r.sender, r.identifier, r.sent) for r in cap.references] == [
        (first.sender, first.identifier, first.sent_at)
    ]


def test_delivering_stores_one_valid_document_and_a_second_run_is_harmless(
    ctx: Context, officer: Actor, supervisor: Actor, publisher: RecordingPublisher
) -> None:
    alert = _approved(ctx, officer, supervisor)
    run_pending_tasks(ctx, publisher)
    with ctx.db.session() as session:
        version = session.execute(select(Version).where(Version.alert_id == alert.id)).scalar_one()
        [document] = session.execute(select(CapDocument)).scalars()
        [delivery] = session.execute(select(Delivery).where(Delivery.channel == "cap")).scalars()
    assert delivery.state == "sent" and delivery.recipient == "feed"
    assert document.identifier == version.identifier and document.kind == "alert"
    assert validate_cap(document.xml, strict=True) == []
    assert document.summary["event"] == "Child Abduction Emergency"
    assert document.summary["area_desc"] == "Springfield County"

    again = publish_version(ctx, version.id)
    outcomes = CapFeedChannel().deliver(ctx, version, [delivery])
    assert again.id == document.id and outcomes[0].state == "sent"
    with ctx.db.session() as session:
        count = session.execute(select(func.count()).select_from(CapDocument)).scalar_one()
        stored = session.execute(select(CapDocument.xml)).scalar_one()
    assert count == 1 and stored == document.xml


def test_an_expiry_cancel_is_dated_to_end_at_once(
    ctx: Context, officer: Actor, supervisor: Actor, publisher: RecordingPublisher
) -> None:
    alert = _approved(ctx, officer, supervisor)
    with ctx.db.transaction() as session:
        stored = session.get(Alert, alert.id)
        assert stored is not None
        stored.expires_at = stored.expires_at - timedelta(hours=4)
    services.expire_alert(ctx, alert.id, by=SYSTEM)
    run_pending_tasks(ctx, publisher)
    with ctx.db.session() as session:
        expiry = session.execute(
            select(CapDocument).where(CapDocument.kind == "expire")
        ).scalar_one()
    assert expiry.expires_at == expiry.sent_at
    assert validate_cap(expiry.xml, strict=True) == []


def test_a_message_that_fails_validation_is_not_published_and_says_why(
    ctx: Context, officer: Actor, supervisor: Actor, publisher: RecordingPublisher
) -> None:
    # A sender with a space breaks CAP 1.2 section 3.2.1; the builder refuses to emit it.
    ctx.settings = ctx.settings.with_overrides(CAP_SENDER="police alerts@example.org")
    alert = _approved(ctx, officer, supervisor)
    run_pending_tasks(ctx, publisher)
    with ctx.db.session() as session:
        assert session.execute(select(func.count()).select_from(CapDocument)).scalar_one() == 0
        [delivery] = session.execute(select(Delivery).where(Delivery.channel == "cap")).scalars()
        [status] = cap_status_for_alert(session, alert.id)
        [audited] = [
            entry
            for entry in session.execute(
                select(AuditEntry).where(AuditEntry.action == "delivery.batch")
            ).scalars()
            if entry.detail["channel"] == "cap"
        ]
    assert delivery.state == "failed" and "contains ' '" in delivery.last_error
    assert status.state == "failed" and status.line.startswith("CAP: failed: sender ")
    assert audited.detail["channel"] == "cap" and audited.detail["counts"] == {"failed": 1}
    assert audited.detail["outcomes"] == {delivery.state: [delivery.id]}


def test_status_lines_per_version(
    ctx: Context, officer: Actor, supervisor: Actor, publisher: RecordingPublisher
) -> None:
    alert = _approved(ctx, officer, supervisor)
    with ctx.db.session() as session:
        assert [s.line for s in cap_status_for_alert(session, alert.id)] == ["CAP: pending"]
    run_pending_tasks(ctx, publisher)
    with ctx.db.session() as session:
        [status] = cap_status_for_alert(session, alert.id, ctx.settings)
    assert status.line == "CAP: published"
    assert status.url == f"http://alertd.test/cap/{status.identifier}.xml"
