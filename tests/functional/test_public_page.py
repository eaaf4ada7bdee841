"""The public page through the Flask test client: the AMBER ALERT banner, each fact once and
labelled, values translated from the gettext catalogues, a tel: link in E.164, share links and
social-card metadata with absolute URLs, and a headline that is never the case reference."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Alert
from alertd.broker import RecordingPublisher
from alertd.channels.cap.models import CapDocument
from alertd.context import Context
from tests.support.factories import alert_body, png_bytes
from tests.support.tasks import run_pending_tasks


@pytest.fixture(autouse=True)
def cap_channels(ctx: Context) -> None:
    ctx.settings = ctx.settings.with_overrides(CHANNELS="cap,log")


def _live(
    ctx: Context, publisher: RecordingPublisher, officer: Actor, supervisor: Actor, **body: object
) -> Alert:
    alert = services.create_alert(ctx, alert_body(**body), by=officer, photo=png_bytes(60, 80))
    services.submit_alert(ctx, alert.id, by=officer)
    approved = services.approve_alert(ctx, alert.id, by=supervisor)
    run_pending_tasks(ctx, publisher)
    return approved


def _meta(html: str, key: str) -> str:
    found = re.search(rf'<meta (?:property|name)="{re.escape(key)}" content="([^"]*)"', html)
    assert found, key
    return unescape(found.group(1))


def _main(html: str) -> str:
    """The visible text of <main>, tags dropped."""
    body = html[html.index("<main>") : html.index("</main>")]
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())


@pytest.fixture
def live(ctx: Context, publisher: RecordingPublisher, officer: Actor, supervisor: Actor) -> Alert:
    return _live(ctx, publisher, officer, supervisor)


def test_the_page_leads_with_the_banner_and_states_each_fact_once_labelled(
    live: Alert, client: FlaskClient
) -> None:
    html = client.get(f"/a/{live.public_id}?lang=en-US").get_data(as_text=True)

    banner = re.search(r'<div class="state"[^>]*>(.*?)</div>', html)
    assert banner and "AMBER ALERT" in banner.group(1)
    text = _main(html)
    for fact in ("6WCU986", "scar on left cheek", "red raincoat, blue jeans", "Nissan", "brown"):
        assert text.count(fact) == 1, fact
    assert "7 years old" in text
    labelled = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]*)</dd>", html))
    assert labelled["Hair"] == "brown" and labelled["Eyes"] == "green"
    assert labelled["Sex"] == "female" and labelled["Clothing"] == "red raincoat, blue jeans"
    assert labelled["Height"] == "120 cm" and labelled["Weight"] == "23 kg"
    assert re.search(r"Plate\s*<strong class=\"plate\">6WCU986 \(CA\)</strong>", html)
    assert '<a class="call" id="tip-line" href="tel:+18005550199">+1 800-555-0199</a>' in html


def test_share_links_and_social_cards_carry_absolute_urls_and_the_photo(
    live: Alert, client: FlaskClient
) -> None:
    html = client.get(f"/a/{live.public_id}").get_data(as_text=True)
    page_url = f"http://alertd.test/a/{live.public_id}"

    assert _meta(html, "og:url") == page_url
    image = _meta(html, "og:image")
    assert image.startswith("http://alertd.test/photos/") and _meta(html, "twitter:image") == image
    assert _meta(html, "twitter:card") == "summary_large_image"
    assert _meta(html, "og:title").startswith("AMBER Alert: ")
    assert client.get(urlsplit(image).path).status_code == 200
    shares = dict(re.findall(r'<a href="([^"]+)" rel="noopener" data-share="([^"]+)"', html))
    by_name = {name: unescape(href) for href, name in shares.items()}
    assert set(by_name) == {"X", "Facebook", "WhatsApp", "Email"}
    assert parse_qs(urlsplit(by_name["X"]).query)["url"] == [page_url]
    assert parse_qs(urlsplit(by_name["Facebook"]).query)["u"] == [page_url]
    assert page_url in parse_qs(urlsplit(by_name["WhatsApp"]).query)["text"][0]
    assert by_name["Email"].startswith("mailto:?subject=AMBER%20ALERT")


def test_values_are_translated_not_only_labels(live: Alert, client: FlaskClient) -> None:
    spanish = _main(client.get(f"/a/{live.public_id}?lang=es-US").get_data(as_text=True))
    assert "Cabello castaño" in spanish and "Ojos verdes" in spanish
    assert "Sexo femenino" in spanish and "Nissan Versa 2014 azul" in spanish
    assert "7 años" in spanish and "Matrícula" in spanish

    # A reader asking for French gets the first language's text (there is no French one) but
    # the interface in English: the page speaks the alert's language, not a third.
    html = client.get(f"/a/{live.public_id}", headers={"Accept-Language": "fr"})
    assert html.headers["Content-Language"] == "en-US"
    assert "Hair brown" in _main(html.get_data(as_text=True))


def test_french_catalogue_for_a_french_alert(
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
    client: FlaskClient,
) -> None:
    alert = _live(ctx, publisher, officer, supervisor, languages=["fr-CA"], translations={})
    text = _main(client.get(f"/a/{alert.public_id}").get_data(as_text=True))
    assert "Cheveux châtains" in text and "Nissan Versa 2014 bleue" in text and "7 ans" in text


def test_the_headline_names_the_child_before_any_cap_document_exists(
    live: Alert, ctx: Context, client: FlaskClient
) -> None:
    with ctx.db.session() as session, session.begin():
        session.execute(delete(CapDocument).where(CapDocument.alert_id == live.id))
    html = client.get(f"/a/{live.public_id}").get_data(as_text=True)
    headline = re.search(r"<h1>(.*?)</h1>", html, re.S)
    assert headline and " ".join(re.sub("<[^>]+>", " ", headline.group(1)).split()) == (
        "Jane Doe 7 years old"
    )
    assert _meta(html, "og:title") == "AMBER Alert: Jane Doe, 7"
    assert "NCIC-2026-000123" not in html
    assert "NCIC" not in _meta(html, "og:title")


def test_an_ended_alert_offers_no_share_links(
    live: Alert, ctx: Context, publisher: RecordingPublisher, supervisor: Actor, client: FlaskClient
) -> None:
    services.resolve_alert(ctx, live.id, "Found safe.", by=supervisor)
    run_pending_tasks(ctx, publisher)
    html = client.get(f"/a/{live.public_id}").get_data(as_text=True)
    assert "data-share" not in html and 'id="tip-line"' not in html
    assert "Please stop sharing it." in _meta(html, "og:description")
