"""HTTP caching by the RFC on what the public reads: weak If-None-Match, no Vary: Cookie or
Set-Cookie, gzip under its own ETag."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from alertd.actor import Actor
from alertd.broker import RecordingPublisher
from alertd.context import Context
from tests.functional.test_feeds import Desk
from tests.support.factories import PASSWORD

FEEDS = ["/feeds/cap.atom", "/feeds/alerts.rss", "/feeds/alerts.geojson", "/feeds/test/cap.atom"]


@pytest.fixture(autouse=True)
def cap_channels(ctx: Context) -> Iterator[None]:
    ctx.settings = ctx.settings.with_overrides(CHANNELS="cap,log")
    yield


@pytest.fixture
def paths(
    ctx: Context, publisher: RecordingPublisher, officer: Actor, supervisor: Actor
) -> list[str]:
    desk = Desk(ctx, publisher, officer, supervisor)
    alert = desk.approve()
    (version,) = desk.versions(alert)
    return [f"/cap/{version.identifier}.xml", *FEEDS, f"/a/{alert.public_id}"]


def test_public_responses_never_vary_on_or_set_the_cookie(
    paths: list[str], client: FlaskClient, officer: Actor
) -> None:
    # A signed-in officer reads the public URLs: what they get is what everyone gets.
    assert client.post("/login", data={"username": "officer1", "password": PASSWORD}).status_code
    assert client.get("/").status_code == 200
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "cookie" not in response.headers.get("Vary", "").lower(), path
        assert "Set-Cookie" not in response.headers, path
        assert "no-store" not in response.headers["Cache-Control"], path
    # The console still varies on the cookie.
    assert "Cookie" in client.get("/").headers["Vary"]


def test_a_stale_cookie_is_not_cleared_on_a_public_response(
    paths: list[str], client: FlaskClient, officer: Actor
) -> None:
    client.set_cookie("alertd_session", "not-a-valid-session")
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200 and "Set-Cookie" not in response.headers, path


def test_if_none_match_uses_the_weak_comparison(paths: list[str], client: FlaskClient) -> None:
    for path in paths:
        etag = client.get(path).headers["ETag"]
        assert not etag.startswith("W/")
        for header in (etag, f"W/{etag}", f'"other", W/{etag}', "*"):
            response = client.get(path, headers={"If-None-Match": header})
            assert response.status_code == 304, (path, header)
            assert response.headers["ETag"] == etag
        assert client.get(path, headers={"If-None-Match": 'W/"other"'}).status_code == 200


def test_documents_and_feeds_are_offered_gzip_under_their_own_etag(
    paths: list[str], client: FlaskClient
) -> None:
    # Documents and feeds; the empty test feed is too small for gzip to pay (below 512 bytes).
    for path in [p for p in paths[:-1] if "/test/" not in p]:
        plain = client.get(path, headers={"Accept-Encoding": "identity"})
        packed = client.get(path, headers={"Accept-Encoding": "gzip, deflate"})
        assert "Content-Encoding" not in plain.headers
        assert packed.headers["Content-Encoding"] == "gzip", path
        assert gzip.decompress(packed.data) == plain.data
        assert packed.headers["ETag"] != plain.headers["ETag"]
        assert "Accept-Encoding" in plain.headers["Vary"]
        assert "Accept-Encoding" in packed.headers["Vary"]
        # Each validator answers only for its own encoding.
        gz_tag, plain_tag = packed.headers["ETag"], plain.headers["ETag"]
        assert (
            client.get(
                path, headers={"Accept-Encoding": "gzip", "If-None-Match": gz_tag}
            ).status_code
            == 304
        )
        assert (
            client.get(
                path, headers={"Accept-Encoding": "gzip", "If-None-Match": plain_tag}
            ).status_code
            == 200
        )
        assert client.get(path, headers={"If-None-Match": gz_tag}).status_code == 200
