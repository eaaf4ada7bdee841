"""Area shapes: checked with shapely at entry, and written to GeoJSON as RFC 7946 wants them.

CAP writes `lat,lon`; shapely and GeoJSON take `(lon, lat)`. Checks run on the plane of degrees,
which is what CAP receivers do when they test whether a phone is inside a polygon.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from shapely.geometry import Polygon
from shapely.geometry.polygon import orient
from shapely.validation import explain_validity

EARTH_RADIUS_KM = 6371.0088  # the mean radius (IUGG)
# Points of the polygon that stands in for a circle: under 0.2 % area error, a small feature.
CIRCLE_SEGMENTS = 64

LatLon = Sequence[float]


def polygon_problem(points: Sequence[LatLon]) -> str | None:
    """Why `points` (lat, lon pairs, closed) is not a usable CAP polygon, or None when it is."""
    if len(points) < 4:
        return f"has {len(points)} points; at least 4 are needed (3 corners and the first again)"
    if list(points[0]) != list(points[-1]):
        return "is not closed: the last point must repeat the first"
    shape = Polygon([(lon, lat) for lat, lon in points])
    if shape.is_valid:
        return None
    reason = explain_validity(shape)
    if reason.startswith("Self-intersection"):
        # shapely says "Self-intersection[lon lat]"; the officer reads lat,lon.
        lon, lat = reason[reason.index("[") + 1 : -1].split()[:2]
        return f"crosses itself near {float(lat):g},{float(lon):g}; draw its edges without crossing"
    if reason.startswith("Too few points"):
        return "needs at least three distinct corners"
    return f"is not a valid shape ({reason})"


def geojson_polygon(points: Sequence[LatLon]) -> dict[str, Any]:
    """A GeoJSON Polygon of CAP `points` with its outer ring counter-clockwise (RFC 7946 3.1.6)."""
    shape = orient(Polygon([(lon, lat) for lat, lon in points]), sign=1.0)
    return {"type": "Polygon", "coordinates": [[list(p) for p in shape.exterior.coords]]}


def geojson_circle(lat: float, lon: float, radius_km: float) -> dict[str, Any]:
    """A counter-clockwise polygon through points `radius_km` from the centre along great circles.

    GeoJSON has no circle. A zero radius is a point, as CAP means it.
    """
    if radius_km <= 0:
        return {"type": "Point", "coordinates": [lon, lat]}
    distance = radius_km / EARTH_RADIUS_KM
    phi, lam = math.radians(lat), math.radians(lon)
    ring = []
    for step in range(CIRCLE_SEGMENTS):
        # Bearings run anticlockwise (north, west, south, east) so the ring is counter-clockwise.
        bearing = -2 * math.pi * step / CIRCLE_SEGMENTS
        phi2 = math.asin(
            math.sin(phi) * math.cos(distance)
            + math.cos(phi) * math.sin(distance) * math.cos(bearing)
        )
        lam2 = lam + math.atan2(
            math.sin(bearing) * math.sin(distance) * math.cos(phi),
            math.cos(distance) - math.sin(phi) * math.sin(phi2),
        )
        ring.append([round(math.degrees(lam2), 6), round(math.degrees(phi2), 6)])
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}
