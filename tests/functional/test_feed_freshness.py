"""Feed validators never hide a change: a Cancel published within the second a poller fetched
the Alert, and a document that commits after one with a higher id (as PostgreSQL allows)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import delete, insert, select, update
from werkzeug.http import http_date
from werkzeug.test import TestResponse

from alertd.actor import Actor
from alertd.broker import RecordingPublisher
from alertd.channels.cap.models import CapDocument
from alertd.channels.cap.static import refresh_feed_dir
from alertd.context import Context
from alertd.db import utcnow
from tests.functional.test_feeds import NS, Desk

ATOM = "/feeds/cap.atom"


@pytest.fixture(autouse=True)
def cap_channels(ctx: Context, tmp_path: Path) -> Iterator[None]:
    ctx.settings = ctx.settings.with_overrides(
        CHANNELS="cap,log", FEED_DIR=str(tmp_path / "static")
    )
    yield


@pytest.fixture
def desk(ctx: Context, publisher: RecordingPublisher, officer: Actor, supervisor: Actor) -> Desk:
    return Desk(ctx, publisher, officer, supervisor)


class Clock:
    """The clock of the feed code (cache, routes, static writer), set by the test; the rest of
    the application keeps the real one, which stays within a few seconds of this."""

    def __init__(self) -> None:
        # The start of a coming whole second, so offsets within it are exact.
        self.second = utcnow().replace(microsecond=0) + timedelta(seconds=1)
        self.now = self.second

    def __call__(self) -> datetime:
        return self.now

    def at(self, offset: float) -> None:
        self.now = self.second + timedelta(seconds=offset)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    for module in ("feeds", "views", "static"):
        monkeypatch.setattr(f"alertd.channels.cap.{module}.utcnow", fake)
    return fake


def _entries(response: TestResponse) -> list[str]:
    assert response.status_code == 200
    return [str(e.text) for e in etree.fromstring(response.data).findall("atom:entry/atom:id", NS)]


def _url(desk: Desk, alert_id: int) -> str:
    with desk.ctx.db.session() as session:
        identifier = session.execute(
            select(CapDocument.identifier)
            .where(CapDocument.alert_id == alert_id)
            .order_by(CapDocument.id.desc())
            .limit(1)
        ).scalar_one()
    return f"http://alertd.test/cap/{identifier}.xml"


def test_a_cancel_in_the_second_of_the_last_poll_reaches_every_poller(
    desk: Desk, ctx: Context, client: FlaskClient, clock: Clock
) -> None:
    atom_file = Path(ctx.settings.FEED_DIR) / "feeds" / "cap.atom"
    clock.at(0.1)
    alert = desk.approve()
    alert_url = _url(desk, alert.id)
    assert _entries(client.get(ATOM)) == [alert_url]  # built at 0.1: no Last-Modified yet

    # A poll a second later gets both validators, Last-Modified being the second after the
    # build, which has begun.
    clock.at(1.2)
    held = client.get(ATOM)
    assert _entries(held) == [alert_url]
    etag, modified = held.headers["ETag"], held.headers["Last-Modified"]
    assert modified == http_date(clock.second + timedelta(seconds=1))
    assert client.get(ATOM, headers={"If-Modified-Since": modified}).status_code == 304
    mtime = atom_file.stat().st_mtime

    # The Cancel goes out within that same second.
    clock.at(1.6)
    desk.cancel(alert)
    cancel_url = _url(desk, alert.id)
    assert cancel_url != alert_url
    clock.at(1.7)
    for validators in ({"If-Modified-Since": modified}, {"If-None-Match": etag}):
        response = client.get(ATOM, headers=validators)
        assert _entries(response) == [cancel_url], validators
        # Built in this second: its time cannot be told from the held one, so none is sent
        # and If-Modified-Since is not honoured.
        assert "Last-Modified" not in response.headers
    # Once the second has closed, the validator is later than the held one.
    clock.at(2.3)
    response = client.get(ATOM, headers={"If-Modified-Since": modified})
    assert _entries(response) == [cancel_url]
    assert response.headers["Last-Modified"] == http_date(clock.second + timedelta(seconds=2))
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.1.3).
    both = {"If-None-Match": etag, "If-Modified-Since": response.headers["Last-Modified"]}
    assert client.get(ATOM, headers=both).status_code == 200
    both["If-None-Match"] = response.headers["ETag"]
    both["If-Modified-Since"] = modified
    assert client.get(ATOM, headers=both).status_code == 304

    # nginx compares If-Modified-Since with the mtime and builds its ETag from mtime and size:
    # the rewritten file is stamped a whole second later, and the same bytes as Flask's.
    assert int(atom_file.stat().st_mtime) > int(mtime)
    assert atom_file.read_bytes() == response.data


def test_static_mtime_moves_a_whole_second_on_every_rewrite_within_one(
    desk: Desk, ctx: Context, clock: Clock
) -> None:
    atom_file = Path(ctx.settings.FEED_DIR) / "feeds" / "cap.atom"
    clock.at(0.1)
    alert = desk.approve()
    first = atom_file.stat().st_mtime
    assert first == clock.second.timestamp()
    clock.at(0.4)
    desk.update(alert, description="Seen near the mall.")
    clock.at(0.7)
    desk.cancel(alert)
    # Two rewrites within the second: the mtime runs ahead of the clock by a second.
    assert atom_file.stat().st_mtime == first + 2
    clock.at(5.5)
    desk.approve()
    assert atom_file.stat().st_mtime == clock.second.timestamp() + 5


def test_a_document_committed_after_a_higher_id_enters_the_feeds(
    desk: Desk, ctx: Context, client: FlaskClient
) -> None:
    early, late, other = desk.approve(), desk.approve(), desk.approve()
    table = CapDocument.__table__
    # Stage what PostgreSQL allows: `late` took its id at insert but has not committed, while
    # `other`, inserted after it with a higher id, has.
    with ctx.db.transaction() as session:
        late_row = dict(
            session.execute(select(table).where(table.c.alert_id == late.id)).mappings().one()
        )
        session.execute(delete(CapDocument).where(CapDocument.id == late_row["id"]))
        session.execute(
            update(CapDocument)
            .where(CapDocument.alert_id == other.id)
            .values(id=late_row["id"] + 100)
        )
    refresh_feed_dir(ctx)
    cached = _entries(client.get(ATOM))
    assert _url(desk, early.id) in cached and _url(desk, other.id) in cached
    assert len(cached) == 2

    # `late` commits; the newest id is still `other`'s.
    with ctx.db.transaction() as session:
        session.execute(insert(CapDocument).values(**late_row))
    late_url = _url(desk, late.id)
    assert late_url in _entries(client.get(ATOM))
    atom_file = Path(ctx.settings.FEED_DIR) / "feeds" / "cap.atom"
    assert atom_file in refresh_feed_dir(ctx)
    assert late_url.encode() in atom_file.read_bytes()
