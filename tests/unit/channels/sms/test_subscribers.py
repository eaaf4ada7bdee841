"""Subscribers: numbers checked and stored in E.164, areas or a point, the CSV import (every bad
row named with its line, safe to run twice), opt-out and back in, and recipient selection by
geocode and by shape, streamed in id order with each subscriber once."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from alertd.actor import Actor
from alertd.audit.models import AuditEntry
from alertd.channels.sms import queries, services
from alertd.channels.sms.models import Subscriber, SubscriberArea
from alertd.channels.sms.phones import BadNumber, to_e164
from alertd.context import Context
from alertd.errors import Conflict, Forbidden, Invalid


def test_numbers_are_stored_in_e164_and_bad_ones_say_why() -> None:
    assert to_e164("+1 (415) 555-2671") == "+14155552671"
    assert to_e164("415 555 2671", "US") == "+14155552671"
    with pytest.raises(BadNumber, match="not a phone number"):
        to_e164("call me")
    with pytest.raises(BadNumber, match="not a valid number"):
        to_e164("+1 555 0100")
    with pytest.raises(BadNumber, match="not a phone number"):
        to_e164("415 555 2671")  # no country and no default region


def test_add_names_every_bad_field_and_refuses_a_second_copy(
    ctx: Context, operator: Actor, officer: Actor
) -> None:
    with pytest.raises(Invalid) as bad:
        services.add_subscriber(
            ctx,
            {"phone": "12", "language": "de", "areas": ["SAME"], "lat": 91, "lon": 0},
            by=operator,
        )
    assert set(bad.value.fields) == {"phone", "language", "areas", "lat"}
    with pytest.raises(Invalid, match="give at least one area"):
        services.add_subscriber(ctx, {"phone": "+14155552671"}, by=operator)
    with pytest.raises(Forbidden):
        services.add_subscriber(ctx, {"phone": "+14155552671", "areas": ["SAME=1"]}, by=officer)

    sub = services.add_subscriber(
        ctx, {"phone": "+1 415 555 2671", "language": "es", "areas": ["same=006037"]}, by=operator
    )
    with pytest.raises(Conflict):
        services.add_subscriber(ctx, {"phone": "+14155552671", "lat": 1, "lon": 2}, by=operator)

    with ctx.db.session() as session:
        stored = session.get(Subscriber, sub.id)
        assert stored is not None and stored.phone == "+14155552671"
        assert stored.language == "es" and stored.opted_in_via == "console"
        assert queries.areas_of(session, [sub.id]) == {sub.id: ["SAME=006037"]}
        trail = json.dumps(
            [e.detail for e in session.execute(select(AuditEntry)).scalars()], default=str
        )
    # The trail names subscribers by id and a keyed digest, never by their number.
    assert "4155552671" not in trail and "phone_hmac" in trail


CSV = """phone,language,areas,lat,lon
+14155552671,en,SAME=006037 SAME=006075,,
+14155552672,fr,,34.1,-118.3
not-a-number,en,SAME=006037,,
+14155552673,xx,SAME=006037,,
+14155552674,en,,,
+14155552675,en,SAME=006037,95,
+14155552671,en,SAME=006001,,
+14155552676,en
"""


def test_import_reports_every_bad_row_with_its_line_and_is_safe_twice(
    ctx: Context, operator: Actor
) -> None:
    report = services.import_csv(ctx, io.StringIO(CSV), by=operator)

    assert (report.created, report.updated) == (2, 0)
    lines = dict(report.rejected)
    assert sorted(lines) == [4, 5, 6, 7, 8, 9]
    assert "phone" in lines[4] and "language" in lines[5] and "area" in lines[6]
    assert "lat" in lines[7] and "repeats the number on line 2" in lines[8]
    assert "expected 5" in lines[9]

    again = services.import_csv(ctx, io.StringIO(CSV), by=operator)
    assert (again.created, again.updated, len(again.rejected)) == (0, 2, 6)
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 2
        assert session.scalar(select(func.count()).select_from(SubscriberArea)) == 2


def test_an_import_across_chunks_updates_known_numbers_and_replaces_their_areas(
    ctx: Context, operator: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "IMPORT_CHUNK", 2)
    head = "phone,language,areas,lat,lon\n"
    first = head + "".join(f"+1415555{i:04d},en,SAME=006037,,\n" for i in range(3))
    services.import_csv(ctx, io.StringIO(first), by=operator)
    # Two known numbers (one moved to another area and language, one to a point) among new.
    second = head + (
        "+14155550000,es,SAME=006075 SAME=006001,,\n"
        "+14155550100,en,SAME=006037,,\n"
        "+14155550001,en,,37.5,-122.25\n"
        "+14155550101,fr,SAME=006075,,\n"
        "+14155550102,en,SAME=006037,,\n"
    )
    report = services.import_csv(ctx, io.StringIO(second), by=operator)
    assert (report.created, report.updated, report.rejected) == (3, 2, [])
    with ctx.db.session() as session:
        subs = {s.phone: s for s in session.scalars(select(Subscriber))}
        areas = session.execute(select(SubscriberArea.subscriber_id, SubscriberArea.value))
        by_sub: dict[int, set[str]] = {}
        for sub_id, value in areas:
            by_sub.setdefault(sub_id, set()).add(value)
    assert len(subs) == 6
    moved, pointed = subs["+14155550000"], subs["+14155550001"]
    assert moved.language == "es" and by_sub[moved.id] == {"006075", "006001"}
    assert (pointed.lat, pointed.lon) == (37.5, -122.25) and pointed.id not in by_sub
    assert by_sub[subs["+14155550002"].id] == {"006037"}
    assert subs["+14155550101"].language == "fr" and by_sub[subs["+14155550101"].id] == {"006075"}
    assert all(s.opted_in_via == "import" and not s.opted_out for s in subs.values())


def test_import_refuses_a_file_without_the_header(ctx: Context, operator: Actor) -> None:
    with pytest.raises(Invalid, match="header"):
        services.import_csv(ctx, io.StringIO("+14155552671,en,SAME=1,,\n"), by=operator)


def test_an_import_never_opts_back_in_someone_who_texted_stop(
    ctx: Context, operator: Actor
) -> None:
    services.import_csv(ctx, io.StringIO(CSV), by=operator)
    assert services.set_opted_out(ctx, "+14155552671", True, by=operator, via="sms")
    services.import_csv(ctx, io.StringIO(CSV), by=operator)
    with ctx.db.session() as session:
        sub = session.execute(select(Subscriber).where(Subscriber.phone == "+14155552671"))
        assert sub.scalar_one().opted_out


def _area(**shape: object) -> dict[str, object]:
    return {"areas": [{"description": "x", "geocodes": {}, **shape}]}


def test_selection_by_geocode_and_by_shape_each_once_and_only_reachable(
    ctx: Context, operator: Actor
) -> None:
    def add(phone: str, **data: object) -> int:
        return services.add_subscriber(ctx, {"phone": phone, **data}, by=operator).id

    a1 = add("+14155550101", areas=["SAME=006037"])
    a2 = add("+14155550102", areas=["SAME=006037", "SAME=006075"])
    b = add("+14155550103", areas=["SAME=006075"])
    inside = add("+14155550104", lat=34.1, lon=-118.3)
    # Inside the polygon's bounding box but outside the triangle itself.
    corner = add("+14155550105", lat=34.19, lon=-118.49)
    both = add("+14155550106", areas=["SAME=006037"], lat=34.1, lon=-118.3)
    stopped = add("+14155550107", areas=["SAME=006037"])
    services.set_opted_out(ctx, "+14155550107", True, by=operator, via="sms")
    far = add("+14155550108", lat=40.7, lon=-74.0)

    triangle = [[34.0, -118.5], [34.2, -118.2], [34.0, -118.2], [34.0, -118.5]]
    content = {
        "areas": [
            {"description": "LA", "geocodes": {"same": "006037"}, "polygon": triangle},
        ]
    }
    assert _select(ctx, content) == [a1, a2, inside, both]
    assert corner not in _select(ctx, content)

    circle = _area(circle={"lat": 40.7, "lon": -74.01, "radius_km": 2})
    assert _select(ctx, circle) == [far]
    assert _select(ctx, {"areas": [{"geocodes": {"SAME": "006075"}}]}) == [a2, b]
    assert stopped not in _select(ctx, content)
    assert _select(ctx, _area(geocodes={"SAME": "999999"})) == []


def _select(ctx: Context, content: dict[str, object]) -> list[int]:
    return list(queries.area_recipients(ctx, content))


def test_an_update_adds_only_who_is_inside_an_area_no_earlier_version_covered(
    ctx: Context, operator: Actor
) -> None:
    def add(phone: str, **data: object) -> int:
        return services.add_subscriber(ctx, {"phone": phone, **data}, by=operator).id

    in_a = add("+14155550101", areas=["SAME=006037"])
    in_a_and_b = add("+14155550102", areas=["SAME=006037", "SAME=006075"])
    in_b = add("+14155550103", areas=["SAME=006075"])
    point_in_b = add("+14155550104", lat=37.75, lon=-122.45)
    point_in_a = add("+14155550105", lat=34.1, lon=-118.3)
    add("+14155550106", areas=["SAME=006001"])
    square_a = [[34.0, -118.5], [34.2, -118.5], [34.2, -118.2], [34.0, -118.2], [34.0, -118.5]]
    square_b = [[37.7, -122.5], [37.8, -122.5], [37.8, -122.4], [37.7, -122.4], [37.7, -122.5]]
    area_a = {"description": "A", "geocodes": {"SAME": "006037"}, "polygon": square_a}
    area_b = {"description": "B", "geocodes": {"SAME": "006075"}, "polygon": square_b}

    # The same area again adds nobody.
    assert list(queries.added_area_recipients(ctx, {"areas": [area_a]}, [area_a])) == []
    # Widened to B: those inside B and outside A, by geocode and by point.
    widened = {"areas": [area_a, area_b]}
    assert list(queries.added_area_recipients(ctx, widened, [area_a])) == [in_b, point_in_b]
    assert in_a not in queries.added_area_recipients(ctx, widened, [area_a])
    assert in_a_and_b not in queries.added_area_recipients(ctx, widened, [area_a])
    assert point_in_a not in queries.added_area_recipients(ctx, widened, [area_a])
