"""What the console's alert form types as text and the content body holds as structure: times
with a separate UTC offset, and an area's geocodes, polygon and circle. Each split goes both
ways (form to body, body to form), so an edit shows what was saved the way it was typed.
Anything that does not split cleanly is passed on as typed, so ``alertd.alerts.content`` names
the field and says what is wrong."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

_OFFSET = re.compile(r"^([+-])(\d{1,2}):?(\d{2})?$")

# Whole hours plus the half- and quarter-hour zones in use.
_EXTRA_OFFSETS = (
    "-09:30",
    "-03:30",
    "+03:30",
    "+04:30",
    "+05:30",
    "+05:45",
    "+06:30",
    "+09:30",
    "+10:30",
    "+12:45",
)


def _hours_offset(hours: int) -> str:
    return f"{'-' if hours < 0 else '+'}{abs(hours):02d}:00"


OFFSETS: tuple[str, ...] = tuple(
    sorted(
        {_hours_offset(h) for h in range(-12, 15)} | set(_EXTRA_OFFSETS),
        key=lambda o: (1 if o[0] == "+" else -1) * (int(o[1:3]) * 60 + int(o[4:6])),
    )
)


def offset_choices(current: str = "") -> list[str]:
    """The offsets to offer; a stored offset that is not in the list is still offered, so
    editing an alert never silently changes its times."""
    if current and current not in OFFSETS:
        return [current, *OFFSETS]
    return list(OFFSETS)


def zone_offset(moment: datetime) -> str:
    """``+05:30`` for an aware time; the form's way of writing an offset."""
    raw = moment.strftime("%z")
    return f"{raw[:3]}:{raw[3:]}" if raw else "+00:00"


def normal_offset(raw: str) -> str | None:
    """Normalise a UTC offset typed or chosen as "+05:30", "-5", "UTC" or "Z"."""
    text = raw.strip().upper().replace("UTC", "").replace("GMT", "")
    if text in ("", "Z", "+0", "-0"):
        return "+00:00"
    match = _OFFSET.match(text)
    if match is None:
        return None
    sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    if hours > 14 or minutes > 59:
        return None
    return f"{sign}{hours:02d}:{minutes:02d}"


def joined_datetime(value: str, offset_text: str) -> tuple[str, bool]:
    """A ``datetime-local`` value plus its offset, as ISO 8601 with the offset; and whether the
    offset could be read."""
    if not value:
        return "", True
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value, True  # content.py names the field and shows the expected format.
    if parsed.tzinfo is not None:
        return parsed.isoformat(), True
    offset = normal_offset(offset_text)
    if offset is None:
        return value, False
    return parsed.isoformat() + offset, True


def split_datetime(value: str) -> tuple[str, str]:
    """ISO 8601 with offset -> (``datetime-local`` value, offset), in the offset it was given."""
    if not value:
        return "", ""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value, ""
    offset = zone_offset(parsed) if parsed.tzinfo is not None else ""
    # Seconds only when there are some, so an edit never moves a time the officer did not touch.
    timespec = "seconds" if parsed.second else "minutes"
    return parsed.replace(tzinfo=None).isoformat(timespec=timespec), offset


def number_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def points(text: str) -> list[list[str]]:
    # Points are separated by spaces (or semicolons); a point is "lat,lon". Whatever does not
    # split cleanly is passed on so content.py reports which point is wrong.
    return [
        [part.strip() for part in point.split(",")]
        for point in re.split(r"[\s;]+", text.strip())
        if point
    ]


def _same_point(a: list[str], b: list[str]) -> bool:
    try:
        return [float(x) for x in a] == [float(x) for x in b]
    except ValueError:
        return a == b  # content.py reports the unreadable point


def closed_ring(text: str) -> list[list[str]]:
    """The corners as typed, closed: officers type the corners; the form closes the ring."""
    ring = points(text)
    if len(ring) > 2 and not _same_point(ring[0], ring[-1]):
        ring.append(ring[0])
    return ring


def ring_text(polygon: list[Any]) -> str:
    ring = list(polygon)
    if len(ring) > 3 and ring[0] == ring[-1]:
        ring = ring[:-1]  # The closing point is added back on save.
    return " ".join(f"{number_text(lat)},{number_text(lon)}" for lat, lon in ring)


def circle(text: str) -> dict[str, str | None]:
    centre, _, radius = text.strip().partition(" ")
    lat, _, lon = centre.partition(",")
    return {
        "lat": lat.strip() or None,
        "lon": lon.strip() or None,
        "radius_km": radius.strip() or None,
    }


def circle_text(value: dict[str, Any]) -> str:
    lat, lon, radius = (number_text(value[k]) for k in ("lat", "lon", "radius_km"))
    return f"{lat},{lon} {radius}"


def geocodes(text: str) -> tuple[dict[str, str], str | None]:
    """``NAME=value`` pairs, and what is wrong with the first piece that is not one."""
    codes: dict[str, str] = {}
    problem = None
    for piece in re.split(r"[,;\n]+", text):
        if not piece.strip():
            continue
        key, sep, value = piece.partition("=")
        if not sep or not key.strip():
            problem = problem or f"write each geocode as NAME=value, not {piece.strip()[:40]!r}"
            continue
        codes[key.strip()] = value.strip()
    return codes, problem


def geocodes_text(codes: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in codes.items())
