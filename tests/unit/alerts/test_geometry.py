"""Area shapes are checked at entry with shapely and refused with the reason, naming the field."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from werkzeug.datastructures import MultiDict

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.content import ContentErrors, parse_content
from alertd.alerts.criteria import load_rule_sets
from alertd.alerts.forms import parse_form
from alertd.alerts.geometry import geojson_circle, geojson_polygon, polygon_problem
from alertd.context import Context
from alertd.errors import ServiceError
from alertd.settings import REPO_ROOT
from tests.support.factories import alert_body

BOWTIE = [[34.0, -118.0], [34.1, -117.9], [34.1, -118.0], [34.0, -117.9], [34.0, -118.0]]


def parse(areas: list[dict[str, Any]]) -> dict[str, Any]:
    return parse_content(
        alert_body(areas=areas),
        rule_sets=load_rule_sets(REPO_ROOT / "config" / "criteria"),
        default_jurisdiction="us-doj",
        default_expires=datetime.now(UTC) + timedelta(hours=1),
        max_hours=72,
    )


def refusal(area: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ContentErrors) as refused:
        parse([{"description": "Downtown", **area}])
    return refused.value.fields


def test_a_self_intersecting_polygon_is_refused_with_where_it_crosses() -> None:
    fields = refusal({"polygon": BOWTIE})
    assert fields == {"areas[0].polygon": fields["areas[0].polygon"]}
    assert "crosses itself near 34.05,-117.95" in fields["areas[0].polygon"]


@pytest.mark.parametrize(
    ("polygon", "reason"),
    [
        ([[34.0, -118.0], [34.1, -118.0], [34.0, -118.0]], "has 3 points; at least 4"),
        ([[34.0, -118.0], [34.1, -118.0], [34.1, -118.1], [34.2, -118.3]], "is not closed"),
        ([[34.0, -118.0], [34.1, -118.0], [34.1, -118.0], [34.0, -118.0]], "three distinct"),
    ],
)
def test_short_unclosed_and_degenerate_polygons_are_refused(
    polygon: list[list[float]], reason: str
) -> None:
    assert reason in refusal({"polygon": polygon})["areas[0].polygon"]


def test_a_circle_with_a_negative_radius_is_refused_naming_the_field() -> None:
    fields = refusal({"circle": {"lat": 34.0, "lon": -118.0, "radius_km": -1}})
    assert "areas[0].circle.radius_km" in fields


def test_a_refused_shape_leaves_the_draft_as_it_was(ctx: Context, officer: Actor) -> None:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    bad = alert_body(areas=[{"description": "x", "polygon": BOWTIE}])
    with pytest.raises(ServiceError) as refused:
        services.edit_alert(ctx, alert.id, bad, by=officer)
    assert "areas[0].polygon" in refused.value.fields
    with ctx.db.session() as session:
        assert services.get_alert(session, alert.id).content["areas"] == alert.content["areas"]


def test_the_console_form_closes_the_ring_the_officer_typed() -> None:
    form = MultiDict(
        {"areas-0-description": "Downtown", "areas-0-polygon": "34,-118 34.1,-118 34.1,-118.1"}
    )
    areas = parse_form(form, load_rule_sets(REPO_ROOT / "config" / "criteria")).body["areas"]
    assert areas[0]["polygon"][0] == areas[0]["polygon"][-1]
    assert len(areas[0]["polygon"]) == 4


def test_a_valid_polygon_passes_and_geojson_rings_run_counter_clockwise() -> None:
    clockwise = [[34.0, -118.0], [34.1, -118.0], [34.1, -117.9], [34.0, -118.0]]
    assert polygon_problem(clockwise) is None
    ring = geojson_polygon(clockwise)["coordinates"][0]
    area2 = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in itertools.pairwise(ring))
    assert area2 > 0  # the shoelace sum is positive for a counter-clockwise ring
    circle = geojson_circle(34.0, -118.0, 5)["coordinates"][0]
    area2 = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in itertools.pairwise(circle))
    assert area2 > 0 and circle[0] == circle[-1]
    assert geojson_circle(34.0, -118.0, 0) == {"type": "Point", "coordinates": [-118.0, 34.0]}
