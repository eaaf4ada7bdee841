"""The GeoJSON feed (``alerts.geojson``): the live CAP messages' areas for web maps."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from alertd.alerts.geometry import geojson_circle, geojson_polygon
from alertd.channels.cap.feed_urls import document_url
from alertd.channels.cap.message import format_cap_datetime
from alertd.channels.cap.models import CapDocument
from alertd.localtime import to_local
from alertd.settings import Settings


def geojson_feed(settings: Settings, documents: Sequence[CapDocument]) -> bytes:
    """Live alerts for web maps. GeoJSON has no circle, so a CAP circle is a polygon that
    approximates it, with ``centre`` ([lon, lat]) and ``radius_km`` properties; an alert with
    only geocodes is a feature with a null geometry."""
    features: list[dict[str, Any]] = []
    for document in documents:
        summary = document.summary
        properties: dict[str, Any] = {
            "identifier": document.identifier,
            "cap_url": document_url(settings, document.identifier),
            "web": summary.get("web", ""),
            "headline": summary.get("headline", ""),
            "event": summary.get("event", ""),
            "status": document.status,
            "msgType": document.msg_type,
            "urgency": summary.get("urgency", ""),
            "severity": summary.get("severity", ""),
            "certainty": summary.get("certainty", ""),
            "sent": format_cap_datetime(to_local(document.sent_at, settings)),
            "expires": format_cap_datetime(to_local(document.expires_at, settings)),
        }
        shapes = list(_shapes(summary.get("areas") or []))
        if not shapes:
            features.append(
                {
                    "type": "Feature",
                    "geometry": None,
                    "properties": {**properties, "areaDesc": summary.get("area_desc")},
                }
            )
        for geometry, extra in shapes:
            features.append(
                {"type": "Feature", "geometry": geometry, "properties": {**properties, **extra}}
            )
    collection = {"type": "FeatureCollection", "features": features}
    return (json.dumps(collection, ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode()


def _shapes(areas: Iterable[Mapping[str, Any]]) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
    for area in areas:
        extra = {"areaDesc": area.get("description", "")}
        for polygon in area.get("polygons") or []:
            yield geojson_polygon(polygon), extra
        for circle in area.get("circles") or []:
            # Maps draw the approximating polygon; the properties keep the circle exact.
            lat, lon, radius = circle["lat"], circle["lon"], circle["radius_km"]
            yield (
                geojson_circle(lat, lon, radius),
                {**extra, "centre": [lon, lat], "radius_km": radius},
            )
