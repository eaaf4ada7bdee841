"""Nothing private reaches the public: a cancel reason, a photo before publication, markup in a
feed reader, the database file's permissions. Each through what the public actually fetches."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import lxml.html
import pytest
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import select, text

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Alert, Version
from alertd.audit.keys import key_path
from alertd.audit.services import timeline
from alertd.broker import RecordingPublisher
from alertd.channels.cap.models import CapDocument
from alertd.context import Context, make_context
from alertd.settings import ensure_secret_key, load_settings
from tests.support.factories import PASSWORD, alert_body, jpeg_bytes, png_bytes
from tests.support.tasks import run_pending_tasks

SECRET = "SECRET-REASON the mother's boyfriend at 12 Elm St"
# How the console's HTML writes it (Jinja escapes the apostrophe).
SECRET_IN_HTML = SECRET.replace("'", "&#39;")
LANGUAGES = ["en-US", "es-US", "fr-CA"]
TRANSLATIONS = {
    "es-US": {"description": "Jane fue secuestrada.", "instruction": "Llame a la línea."},
    "fr-CA": {"description": "Jane a été enlevée.", "instruction": "Appelez la ligne."},
}
# What a hostile officer account (or a pasted web page) might type into any free-text field.
MARKUP = '<img src=x onerror=alert(1)> & "q" <b>bold</b>'
FEEDS = ("/feeds/cap.atom", "/feeds/alerts.rss", "/feeds/alerts.geojson")


@pytest.fixture(autouse=True)
def cap_channel(ctx: Context) -> Iterator[None]:
    ctx.settings = ctx.settings.with_overrides(CHANNELS="cap,log")
    yield


def _publish(
    ctx: Context, publisher: RecordingPublisher, officer: Actor, supervisor: Actor, **body: Any
) -> Alert:
    alert = services.create_alert(ctx, alert_body(**body), by=officer, photo=png_bytes())
    services.submit_alert(ctx, alert.id, by=officer)
    approved = services.approve_alert(ctx, alert.id, by=supervisor)
    run_pending_tasks(ctx, publisher)
    return approved


def _login(client: FlaskClient, username: str) -> None:
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code in (302, 303)


def test_a_cancel_reason_stays_internal_in_every_language(
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
    client: FlaskClient,
) -> None:
    alert = _publish(
        ctx, publisher, officer, supervisor, languages=LANGUAGES, translations=TRANSLATIONS
    )
    services.cancel_alert(ctx, alert.id, SECRET, by=supervisor)
    run_pending_tasks(ctx, publisher)

    with ctx.db.session() as session:
        versions = list(session.execute(select(Version).order_by(Version.seq)).scalars())
        documents = list(session.execute(select(CapDocument)).scalars())
        history = timeline(session, "alert", alert.id)
    assert [v.kind for v in versions] == ["alert", "cancel"]
    # Not in what was published, for any channel to read ...
    assert all(SECRET not in json.dumps(v.content) for v in versions)
    # ... nor in any CAP document, every language's info block included ...
    assert len(documents) == 2
    cancel_xml = next(d.xml for d in documents if d.kind == "cancel")
    languages = etree.fromstring(cancel_xml).xpath(
        "//*[local-name()='info']/*[local-name()='language']/text()"
    )
    assert sorted(languages) == sorted(LANGUAGES)
    for document in documents:
        assert SECRET.encode() not in document.xml
        assert client.get(f"/cap/{document.identifier}.xml").data == document.xml
    # ... nor in the feeds ...
    for path in FEEDS:
        response = client.get(path)
        assert response.status_code == 200
        assert SECRET not in response.get_data(as_text=True)
    # ... nor on the public page, which says the standard cancelled text in each language.
    cancelled_texts = set()
    for language in LANGUAGES:
        page = client.get(f"/alerts/{alert.public_id}?lang={language}")
        assert page.status_code == 200
        body = page.get_data(as_text=True)
        assert SECRET not in body and SECRET_IN_HTML not in body
        notice = lxml.html.fromstring(body).xpath("//main//p/strong/text()")
        assert notice, body
        cancelled_texts.add(notice[0])
    assert len(cancelled_texts) == len(LANGUAGES)  # one standard text per language
    # The reason is kept where staff read it: the audit entry, shown in the console's history.
    assert [e.detail.get("reason") for e in history if e.action == "alert.cancel"] == [SECRET]
    _login(client, "supervisor1")
    assert SECRET_IN_HTML in client.get(f"/alerts/{alert.id}").get_data(as_text=True)


def test_a_resolve_note_is_public(
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
    operator: Actor,
    client: FlaskClient,
) -> None:
    alert = _publish(ctx, publisher, officer, supervisor)
    services.resolve_alert(ctx, alert.id, "Jane was found safe.", by=supervisor)
    run_pending_tasks(ctx, publisher)

    page = client.get(f"/alerts/{alert.public_id}")

    assert "Jane was found safe." in page.get_data(as_text=True)


def _photo_url(ctx: Context, alert_id: int) -> str:
    with ctx.db.session() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None and alert.photo is not None
        return f"/photos/{alert.photo.sha256}.{alert.photo.extension}"


def test_a_photo_is_not_public_until_its_alert_is_published(
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
    client: FlaskClient,
    app: Any,
) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer, photo=png_bytes(9, 9))
    url = _photo_url(ctx, alert.id)
    assert client.get(url).status_code == 404  # a draft's photo

    staff = app.test_client()
    _login(staff, "officer1")
    assert staff.get(url).status_code == 404  # the public URL is public, cookie or not
    seen = staff.get(f"/alerts/{alert.id}/photo")
    assert seen.status_code == 200  # the officer reviewing the draft sees it on the console
    assert seen.headers["Cache-Control"] == "private, no-store"
    assert f'src="/alerts/{alert.id}/photo"' in staff.get(f"/alerts/{alert.id}").get_data(
        as_text=True
    )
    assert client.get(f"/alerts/{alert.id}/photo").status_code in (302, 401)  # not signed in

    services.submit_alert(ctx, alert.id, by=officer)
    assert client.get(url).status_code == 404  # a pending alert's photo
    assert client.get(url, headers={"If-None-Match": f'"{url[8:72]}"'}).status_code == 404

    services.approve_alert(ctx, alert.id, by=supervisor)
    run_pending_tasks(ctx, publisher)
    published = client.get(url)
    assert published.status_code == 200
    assert published.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # Cacheable for everyone: a signed-in reader gets the same response, no cookie involved.
    as_staff = staff.get(url)
    assert as_staff.status_code == 200 and "Set-Cookie" not in as_staff.headers
    assert "cookie" not in as_staff.headers.get("Vary", "").lower()

    # A proposed update's new photo waits for its approval too.
    proposal = services.propose_update(
        ctx, alert.id, alert_body(description="Seen at the mall."), by=officer, photo=jpeg_bytes()
    )
    with ctx.db.session() as session:
        photo = session.execute(
            text("SELECT sha256 FROM photos WHERE mime_type = 'image/jpeg'")
        ).scalar_one()
    assert client.get(f"/photos/{photo}.jpg").status_code == 404
    services.approve_update(ctx, alert.id, by=supervisor, proposal_id=proposal.id)
    run_pending_tasks(ctx, publisher)
    assert client.get(f"/photos/{photo}.jpg").status_code == 200


def _hostile_body() -> dict[str, Any]:
    body = alert_body(
        case_reference=f"NCIC {MARKUP}",
        last_seen_place=MARKUP,
        direction_of_travel=MARKUP,
        description=MARKUP,
        instruction=MARKUP,
        children=[{"name": MARKUP, "age": 7, "clothing": MARKUP, "marks": MARKUP}],
        suspects=[{"name": MARKUP, "description": MARKUP}],
    )
    body["areas"][0]["description"] = MARKUP
    return body


def test_rss_descriptions_are_escaped_text_a_reader_shows_as_text(
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
    client: FlaskClient,
) -> None:
    _publish(ctx, publisher, officer, supervisor, **_hostile_body())

    rss = client.get("/feeds/alerts.rss").data

    # What the XML carries is text whose HTML reading is the typed characters, not markup.
    [description] = etree.fromstring(rss).xpath("//item/description/text()")
    shown = lxml.html.fragment_fromstring(description, create_parent="div")
    assert shown.xpath("//img | //b") == []
    assert MARKUP in shown.text_content()
    # feedparser (what many readers use) keeps it as text too: no tag survives its sanitizer.
    [entry] = feedparser.parse(rss).entries
    assert "<img" not in entry.summary and "&lt;img" in entry.summary


def test_geojson_properties_are_plain_text(
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
    client: FlaskClient,
) -> None:
    _publish(ctx, publisher, officer, supervisor, **_hostile_body())

    collection = json.loads(client.get("/feeds/alerts.geojson").data)

    [feature] = collection["features"]
    properties = feature["properties"]
    assert properties["areaDesc"] == MARKUP  # what was typed, unchanged: plain text
    for name, value in properties.items():
        # Every field, present and future: plain JSON values, never HTML-escaped (a map shows
        # them with textContent) and never carrying markup that alertd made.
        assert value is None or isinstance(value, str | int | float), name
        if isinstance(value, str):
            assert "&lt;" not in value and "&amp;" not in value and "&quot;" not in value, name
            if "<" in value or ">" in value:
                # Only as typed (a headline may shorten the rest of it).
                assert "<img src=x onerror=alert(1)>" in value, (name, value)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_embedded_database_and_instance_secrets_are_private(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    settings = load_settings(
        {"INSTANCE_PATH": str(instance), "DATABASE_URL": "", "CHANNELS": "log"}, environ={}
    )
    old = os.umask(0o022)  # the usual umask, under which files are world-readable by default
    try:
        context = make_context(settings)
        try:
            with context.db.engine.begin() as conn:
                conn.execute(text("CREATE TABLE t (x INTEGER)"))
                conn.execute(text("INSERT INTO t VALUES (1)"))
            database = instance / "alertd.sqlite3"
            wal = instance / "alertd.sqlite3-wal"
            shm = instance / "alertd.sqlite3-shm"
            assert wal.exists() and shm.exists()
            ensure_secret_key(settings)
            files = (database, wal, shm, instance / "secret_key", key_path(settings))
            assert {str(p): _mode(p) for p in files} == {str(p): 0o600 for p in files}
            assert _mode(instance) == 0o700
        finally:
            context.close()
    finally:
        os.umask(old)


def test_an_older_world_readable_database_is_narrowed(tmp_path: Path) -> None:
    database = tmp_path / "old.sqlite3"
    database.touch(mode=0o644)
    database.chmod(0o644)
    settings = load_settings(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": f"sqlite:///{database}",
            "CHANNELS": "log",
        },
        environ={},
    )

    make_context(settings).close()

    assert _mode(database) == 0o600
