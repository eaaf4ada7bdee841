"""Reading subscribers, and selecting a version's recipients with set-based SQL: each of an
alert's geocodes is read from the (scheme, value, subscriber_id) index in id order, and
subscribers who gave a point are found by a bounding box on (lat, lon) before the exact shape
test. Rows are read in id order a page at a
time (keyset paging) and merged, so no selection ever holds every subscriber in memory."""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from shapely.geometry import Point, Polygon
from shapely.prepared import prep
from sqlalchemy import Integer, and_, cast, func, or_, select, tuple_
from sqlalchemy.orm import Session

from alertd.actor import Actor
from alertd.alerts.geometry import EARTH_RADIUS_KM
from alertd.alerts.models import Version
from alertd.channels.models import (
    CANCELLED,
    FAILED,
    OPEN_STATES,
    SENDING,
    SENT,
    SKIPPED,
    UNKNOWN,
    Delivery,
)
from alertd.channels.sms.models import GatewayStatus, Subscriber, SubscriberArea
from alertd.channels.sms.services import PERMISSION
from alertd.context import Context
from alertd.errors import Forbidden, NotFound

CHANNEL = "sms"
PAGE = 100
# Rows fetched per round trip while streaming a selection.
STREAM_ROWS = 5000
_KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180


def require_reader(by: Actor) -> None:
    if not by.can(PERMISSION):
        raise Forbidden("Only operators and admins see subscribers.")


def get_subscriber(session: Session, subscriber_id: int) -> Subscriber:
    sub = session.get(Subscriber, subscriber_id)
    if sub is None:
        raise NotFound(f"No subscriber {subscriber_id}.")
    return sub


def list_subscribers(
    session: Session, *, phone: str = "", after: int = 0, limit: int = PAGE
) -> list[Subscriber]:
    """A page in id order after ``after``; ``phone`` keeps the numbers starting with it."""
    query = select(Subscriber).where(Subscriber.id > after).order_by(Subscriber.id).limit(limit)
    if phone:
        query = query.where(Subscriber.phone.startswith(phone, autoescape=True))
    return list(session.execute(query).scalars())


def areas_of(session: Session, ids: Sequence[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {i: [] for i in ids}
    rows = session.execute(
        select(SubscriberArea.subscriber_id, SubscriberArea.scheme, SubscriberArea.value)
        .where(SubscriberArea.subscriber_id.in_(ids))
        .order_by(SubscriberArea.id)
    )
    for sub_id, scheme, value in rows:
        out[sub_id].append(f"{scheme}={value}")
    return out


def subscriber_json(sub: Subscriber, areas: list[str]) -> dict[str, Any]:
    return {
        "id": sub.id,
        "phone": sub.phone,
        "language": sub.language,
        "areas": areas,
        "lat": sub.lat,
        "lon": sub.lon,
        "opted_in_via": sub.opted_in_via,
        "opted_in_at": sub.opted_in_at.isoformat(),
        "opted_out": sub.opted_out,
        "opted_out_at": sub.opted_out_at.isoformat() if sub.opted_out_at else None,
        "invalid": sub.invalid,
        "created_at": sub.created_at.isoformat(),
    }


# Selection ---------------------------------------------------------------------------------


def _reachable() -> Any:
    return and_(Subscriber.opted_out.is_(False), Subscriber.invalid.is_(False))


def _geocodes(areas: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    pairs = {
        (str(name).upper(), str(value))
        for area in areas
        for name, value in (area.get("geocodes") or {}).items()
    }
    return sorted(pairs)


class _Shape:
    """One polygon or circle of an alert: its bounding box, and the exact test."""

    def __init__(self, area: Mapping[str, Any]) -> None:
        self.circle: tuple[float, float, float] | None = None
        if area.get("polygon"):
            points = [(float(lon), float(lat)) for lat, lon in area["polygon"]]
            self.polygon = prep(Polygon(points))
            lons, lats = [p[0] for p in points], [p[1] for p in points]
            self.box = (min(lats), max(lats), min(lons), max(lons))
        else:
            c = area["circle"]
            lat, lon, radius = float(c["lat"]), float(c["lon"]), float(c["radius_km"])
            self.circle = (lat, lon, radius)
            dlat = radius / _KM_PER_DEGREE
            dlon = radius / (_KM_PER_DEGREE * max(math.cos(math.radians(lat)), 1e-6))
            self.box = (lat - dlat, lat + dlat, lon - dlon, lon + dlon)

    def condition(self) -> Any:
        south, north, west, east = self.box
        return and_(Subscriber.lat.between(south, north), Subscriber.lon.between(west, east))

    def contains(self, lat: float, lon: float) -> bool:
        if self.circle is None:
            return bool(self.polygon.covers(Point(lon, lat)))
        clat, clon, radius = self.circle
        return _distance_km(clat, clon, lat, lon) <= radius


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, a)))


def _pages(ctx: Context, query: Any, key: Any, *same: Any) -> Iterator[Any]:
    """Rows of ``query`` in ``key`` order, a page per short read: no session stays open between
    pages, so the planner may write delivery rows while it reads (SQLite has one writer).
    ``same`` are columns joined equal to ``key``: each is bounded by the cursor too, or a merge
    join walks the other index from its start on every page (130 ms a page at 500,000)."""
    last: int | None = None
    while True:
        page = query if last is None else query.where(*(k > last for k in (key, *same)))
        with ctx.db.session() as session:
            rows = list(session.execute(page.order_by(key).limit(STREAM_ROWS)))
        yield from rows
        if len(rows) < STREAM_ROWS:
            return
        last = int(rows[-1][0])


def _by_geocode(ctx: Context, pairs: list[tuple[str, str]]) -> Iterator[int]:
    # One stream per pair, merged: each reads the (scheme, value, subscriber_id) index in
    # order, so its first page comes without sorting the area's every subscriber (an IN over
    # several pairs would be sorted whole before the first row). The merge keeps id order for
    # _unique; a subscriber is in one pair's stream at most once (the unique constraint).
    return heapq.merge(*(_by_pair(ctx, scheme, value) for scheme, value in pairs))


def _by_pair(ctx: Context, scheme: str, value: str) -> Iterator[int]:
    query = (
        select(SubscriberArea.subscriber_id)
        .join(Subscriber, Subscriber.id == SubscriberArea.subscriber_id)
        .where(SubscriberArea.scheme == scheme, SubscriberArea.value == value, _reachable())
    )
    for (sub_id,) in _pages(ctx, query, SubscriberArea.subscriber_id, Subscriber.id):
        yield int(sub_id)


def _by_point(ctx: Context, shapes: list[_Shape]) -> Iterator[int]:
    if not shapes:
        return
    query = select(Subscriber.id, Subscriber.lat, Subscriber.lon).where(
        or_(*(s.condition() for s in shapes)), _reachable()
    )
    for sub_id, lat, lon in _pages(ctx, query, Subscriber.id):
        if any(s.contains(lat, lon) for s in shapes):
            yield int(sub_id)


def _earlier_recipients(ctx: Context, alert_id: int, version_id: int) -> Iterator[int]:
    """Subscribers an earlier version of this alert reached (or may have: unknown), still
    reachable: updates, resolutions and cancellations go to them."""
    sub_id = cast(Delivery.recipient, Integer)
    query = (
        select(sub_id)
        .join(Subscriber, Subscriber.id == sub_id)
        .where(
            Delivery.alert_id == alert_id,
            Delivery.channel == CHANNEL,
            Delivery.version_id != version_id,
            # In flight when the ending committed (its request may have left): included, or
            # someone texted the alert a moment before a cancel would never hear of it.
            or_(
                Delivery.state.in_((SENT, UNKNOWN)),
                and_(Delivery.state == SENDING, Delivery.attempted_at.is_not(None)),
            ),
            _reachable(),
        )
        .distinct()
    )
    for (value,) in _pages(ctx, query, sub_id):
        yield int(value)


def _unique(ids: Iterator[int]) -> Iterator[int]:
    last = None
    for value in ids:
        if value != last:
            yield value
            last = value


def area_recipients(ctx: Context, content: Mapping[str, Any]) -> Iterator[int]:
    """Reachable subscribers inside the alert's areas, in id order, each once."""
    areas = content.get("areas") or []
    shapes = [_Shape(a) for a in areas if a.get("polygon") or a.get("circle")]
    return _unique(heapq.merge(_by_geocode(ctx, _geocodes(areas)), _by_point(ctx, shapes)))


def recipients(
    ctx: Context, alert_id: int, version_id: int, content: Mapping[str, Any], *, widen: bool
) -> Iterator[int]:
    """Who gets a follow-up: those the alert reached before, and with ``widen`` (an update)
    also everyone inside an area the update adds, that no earlier version covered. Someone
    who joined an area already covered is not reached by a follow-up of an alert they never
    had: follow-ups are no new area selection."""
    earlier = _earlier_recipients(ctx, alert_id, version_id)
    if not widen:
        return _unique(earlier)
    covered = _covered_areas(ctx, alert_id, version_id)
    return _unique(heapq.merge(earlier, added_area_recipients(ctx, content, covered)))


def _covered_areas(ctx: Context, alert_id: int, version_id: int) -> list[Mapping[str, Any]]:
    """The areas of every earlier alert or update version of this alert."""
    seq = select(Version.seq).where(Version.id == version_id).scalar_subquery()
    with ctx.db.session() as session:
        contents = session.execute(
            select(Version.content).where(
                Version.alert_id == alert_id,
                Version.seq < seq,
                Version.kind.in_(("alert", "update")),
            )
        ).scalars()
        return [area for content in contents for area in content.get("areas") or []]


def added_area_recipients(
    ctx: Context, content: Mapping[str, Any], covered: Sequence[Mapping[str, Any]]
) -> Iterator[int]:
    """Reachable subscribers inside ``content``'s areas and outside every ``covered`` one, in
    id order: the candidates are streamed as for an alert, and each page is tested against the
    covered areas in one query per kind of area."""
    areas = content.get("areas") or []
    old_pairs = set(_geocodes(covered))
    old_shapes = [_shape_key(a) for a in covered if a.get("polygon") or a.get("circle")]
    added = [
        a
        for a in areas
        if set(_geocodes([a])) - old_pairs
        or ((a.get("polygon") or a.get("circle")) and _shape_key(a) not in old_shapes)
    ]
    if not added:
        return
    shapes = [_Shape(a) for a in covered if a.get("polygon") or a.get("circle")]
    page: list[int] = []
    for sub_id in area_recipients(ctx, {"areas": added}):
        page.append(sub_id)
        if len(page) >= STREAM_ROWS:
            yield from _outside(ctx, page, sorted(old_pairs), shapes)
            page = []
    if page:
        yield from _outside(ctx, page, sorted(old_pairs), shapes)


def _shape_key(area: Mapping[str, Any]) -> str:
    return repr((area.get("polygon"), area.get("circle")))


def _outside(
    ctx: Context, ids: list[int], pairs: list[tuple[str, str]], shapes: list[_Shape]
) -> list[int]:
    """``ids`` (in order) less those inside a covered geocode or shape."""
    inside: set[int] = set()
    with ctx.db.session() as session:
        if pairs:
            inside.update(
                session.execute(
                    select(SubscriberArea.subscriber_id).where(
                        SubscriberArea.subscriber_id.in_(ids),
                        tuple_(SubscriberArea.scheme, SubscriberArea.value).in_(pairs),
                    )
                ).scalars()
            )
        if shapes:
            rows = session.execute(
                select(Subscriber.id, Subscriber.lat, Subscriber.lon).where(
                    Subscriber.id.in_(ids), or_(*(s.condition() for s in shapes))
                )
            )
            inside.update(
                i
                for i, lat, lon in rows
                if lat is not None and lon is not None and any(s.contains(lat, lon) for s in shapes)
            )
    return [i for i in ids if i not in inside]


# The alert page's SMS counts ----------------------------------------------------------------


def alert_counts(session: Session, alert_id: int) -> dict[str, int]:
    """pending, sent, delivered, failed, unknown, skipped and opted out, for one alert."""
    states = dict(
        (state, int(n))
        for state, n in session.execute(
            select(Delivery.state, func.count())
            .where(Delivery.alert_id == alert_id, Delivery.channel == CHANNEL)
            .group_by(Delivery.state)
        )
    )
    delivered = session.scalar(
        select(func.count())
        .select_from(GatewayStatus)
        .where(GatewayStatus.alert_id == alert_id, GatewayStatus.status == "delivered")
    )
    opted_out = session.scalar(
        select(func.count(func.distinct(Delivery.recipient)))
        .join(Subscriber, Subscriber.id == cast(Delivery.recipient, Integer))
        .where(
            Delivery.alert_id == alert_id,
            Delivery.channel == CHANNEL,
            Subscriber.opted_out.is_(True),
        )
    )
    return {
        "pending": sum(states.get(s, 0) for s in OPEN_STATES),
        "sent": states.get(SENT, 0),
        "delivered": int(delivered or 0),
        "failed": states.get(FAILED, 0),
        "unknown": states.get(UNKNOWN, 0),
        "skipped": states.get(SKIPPED, 0) + states.get(CANCELLED, 0),
        "opted_out": int(opted_out or 0),
    }


def troubled(session: Session, alert_id: int, limit: int = 200) -> list[Delivery]:
    """The alert's failed and unknown SMS deliveries, newest first."""
    return list(
        session.execute(
            select(Delivery)
            .where(
                Delivery.alert_id == alert_id,
                Delivery.channel == CHANNEL,
                Delivery.state.in_((FAILED, UNKNOWN)),
            )
            .order_by(Delivery.id.desc())
            .limit(limit)
        ).scalars()
    )
