"""The summary stored beside each CAP document: what the feeds show of it."""

from __future__ import annotations

from typing import Any

from lxml import etree  # type: ignore[import-untyped]  # lxml ships no type information

from alertd.channels.cap.message import CAP_NS


def summarize(xml: bytes) -> dict[str, Any]:
    """What the feeds show of one message, read from its first info block (the primary language)
    and all its areas, so a feed entry says exactly what the message says."""
    ns = {"cap": CAP_NS}
    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    infos = root.findall("cap:info", ns)
    info = infos[0] if infos else None

    def text(node: Any, path: str) -> str:
        found = node.find(path, ns) if node is not None else None
        return str(found.text or "").strip() if found is not None else ""

    areas: list[dict[str, Any]] = []
    for area in info.findall("cap:area", ns) if info is not None else []:
        polygons = []
        for polygon in area.findall("cap:polygon", ns):
            points = [pair.split(",") for pair in str(polygon.text or "").split()]
            polygons.append([[float(lat), float(lon)] for lat, lon in points])
        circles = []
        for circle in area.findall("cap:circle", ns):
            centre, radius = str(circle.text or "").split()
            lat, lon = centre.split(",")
            circles.append({"lat": float(lat), "lon": float(lon), "radius_km": float(radius)})
        geocodes = [
            [text(g, "cap:valueName"), text(g, "cap:value")]
            for g in area.findall("cap:geocode", ns)
        ]
        areas.append(
            {
                "description": text(area, "cap:areaDesc"),
                "polygons": polygons,
                "circles": circles,
                "geocodes": geocodes,
            }
        )
    return {
        "sender": text(root, "cap:sender"),
        "language": text(info, "cap:language"),
        "languages": [text(i, "cap:language") for i in infos],
        "event": text(info, "cap:event"),
        "category": text(info, "cap:category"),
        "response_type": text(info, "cap:responseType"),
        "urgency": text(info, "cap:urgency"),
        "severity": text(info, "cap:severity"),
        "certainty": text(info, "cap:certainty"),
        "sender_name": text(info, "cap:senderName"),
        "headline": text(info, "cap:headline"),
        "web": text(info, "cap:web"),
        "area_desc": "; ".join(a["description"] for a in areas if a["description"]),
        "areas": areas,
    }
