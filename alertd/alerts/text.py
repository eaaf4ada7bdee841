"""Plain-text summaries of an alert for previews, logs and the simplest channels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alertd.alerts.models import Version

KIND_PREFIX = {
    "alert": "CHILD ABDUCTION ALERT",
    "update": "UPDATE - CHILD ABDUCTION ALERT",
    "extend": "UPDATE - CHILD ABDUCTION ALERT",
    "resolve": "CHILD FOUND - alert ended",
    "cancel": "CANCELLED - alert withdrawn",
    "expire": "EXPIRED - alert ended",
}


def child_phrase(content: Mapping[str, Any]) -> str:
    parts = []
    for child in content.get("children") or []:
        age = f", {child['age']}" if child.get("age") is not None else ""
        parts.append(f"{child.get('name') or 'unnamed child'}{age}")
    return "; ".join(parts)


def vehicle_phrase(content: Mapping[str, Any]) -> str:
    phrases = []
    for v in content.get("vehicles") or []:
        words = [str(v.get(k)) for k in ("colour", "year", "make", "model") if v.get(k)]
        plate = v.get("plate")
        if plate:
            region = f" ({v['plate_region']})" if v.get("plate_region") else ""
            words.append(f"plate {plate}{region}")
        phrases.append(" ".join(words))
    return "; ".join(p for p in phrases if p)


def summary_text(version: Version) -> str:
    content = version.content
    prefix = KIND_PREFIX.get(version.kind, "ALERT")
    if version.status != "Actual":
        prefix = f"{version.status.upper()} - {prefix}"
    parts = [prefix, child_phrase(content)]
    if version.kind in ("alert", "update", "extend"):
        parts += [vehicle_phrase(content), content.get("last_seen_place", "")]
        if content.get("tip_line"):
            parts.append(f"Call {content['tip_line']}")
    return ". ".join(p for p in parts if p)
