"""A refused form keeps the photo the officer chose: held server-side, named in the form, and
used when the corrected form is sent without choosing it again."""

from __future__ import annotations

import io
import re

from flask.testing import FlaskClient
from sqlalchemy import func, select

from alertd.actor import Actor
from alertd.alerts.models import Alert, Photo
from alertd.context import Context
from tests.functional.test_console import login, raise_form
from tests.support.factories import png_bytes


def test_an_error_keeps_the_photo_and_the_corrected_form_uses_it(
    client: FlaskClient, ctx: Context, officer: Actor
) -> None:
    # given: a form with a photo and an age in words the form cannot read
    login(client, "officer1")
    data = raise_form(**{"children-0-age": "seven"})
    data["photo"] = (io.BytesIO(png_bytes(32, 32)), "jane.png")

    # when
    refused = client.post("/alerts/new", data=data, content_type="multipart/form-data")

    # then: nothing saved, the photo held and named in the form
    assert refused.status_code == 400
    held = re.search(r'name="held_photo" value="([0-9a-f]{64}\.png)"', refused.text)
    assert held and "Photo kept" in refused.text
    with ctx.db.session() as session:
        assert session.execute(select(func.count()).select_from(Alert)).scalar_one() == 0

    # when: corrected, sent without choosing the photo again
    fixed = raise_form(**{"children-0-age": "7", "held_photo": held.group(1)})
    saved = client.post("/alerts/new", data=fixed, content_type="multipart/form-data")

    # then
    assert saved.status_code == 302
    with ctx.db.session() as session:
        alert = session.execute(select(Alert)).scalar_one()
        photo = session.get(Photo, alert.photo_id)
        assert photo is not None and f"{photo.sha256}.{photo.extension}" == held.group(1)


def test_a_new_photo_replaces_a_held_one(client: FlaskClient, ctx: Context, officer: Actor) -> None:
    login(client, "officer1")
    first = raise_form(**{"children-0-age": "seven"})
    first["photo"] = (io.BytesIO(png_bytes(32, 32)), "old.png")
    held = re.search(
        r'name="held_photo" value="([^"]+)"',
        client.post("/alerts/new", data=first, content_type="multipart/form-data").text,
    )
    assert held

    second = raise_form(**{"held_photo": held.group(1)})
    second["photo"] = (io.BytesIO(png_bytes(40, 40)), "new.png")
    client.post("/alerts/new", data=second, content_type="multipart/form-data")

    with ctx.db.session() as session:
        alert = session.execute(select(Alert)).scalar_one()
        photo = session.get(Photo, alert.photo_id)
        assert photo is not None and f"{photo.sha256}.{photo.extension}" != held.group(1)
