"""Figures read from the database when /metrics is scraped: they are true across every web
and worker process and survive restarts, because the database is the record."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alertd.alerts.models import Alert
from alertd.channels.models import PENDING, RETRY_WAIT, Delivery, Dispatch
from alertd.context import Context
from alertd.db import utcnow
from alertd.outbox.models import OutboxMessage

Sample = tuple[dict[str, str], float]


@dataclass(frozen=True)
class DatabaseGauge:
    """A gauge computed at scrape time; channels add theirs (open circuits, limiter backlog)
    with ``register_gauge`` so the core never names a channel."""

    name: str
    documentation: str
    labels: tuple[str, ...]
    read: Callable[[Session], Iterable[Sample]]


_extra_gauges: dict[str, DatabaseGauge] = {}


def register_gauge(gauge: DatabaseGauge) -> None:
    _extra_gauges[gauge.name] = gauge


def _age(now: datetime, moment: datetime | None) -> float:
    return max(0.0, (now - moment).total_seconds()) if moment is not None else 0.0


def _alerts(session: Session) -> Iterable[Sample]:
    rows = session.execute(
        select(Alert.state, Alert.status, func.count()).group_by(Alert.state, Alert.status)
    )
    return [({"state": s, "status": st}, float(n)) for s, st, n in rows]


def _deliveries(session: Session) -> Iterable[Sample]:
    rows = session.execute(
        select(Delivery.channel, Delivery.state, func.count()).group_by(
            Delivery.channel, Delivery.state
        )
    )
    return [({"channel": c, "state": s}, float(n)) for c, s, n in rows]


def _dispatches(session: Session) -> Iterable[Sample]:
    rows = session.execute(
        select(Dispatch.channel, Dispatch.state, func.count()).group_by(
            Dispatch.channel, Dispatch.state
        )
    )
    return [({"channel": c, "state": s}, float(n)) for c, s, n in rows]


def _outbox(session: Session) -> Iterable[Sample]:
    oldest, waiting = session.execute(
        select(func.min(OutboxMessage.created_at), func.count()).where(
            OutboxMessage.consumed_at.is_(None)
        )
    ).one()
    return [({"measure": "age_seconds"}, _age(utcnow(), oldest)), ({"measure": "count"}, waiting)]


def _due(session: Session) -> Iterable[Sample]:
    now = utcnow()
    rows = session.execute(
        select(Delivery.channel, func.min(Delivery.next_attempt_at), func.count())
        .where(Delivery.state.in_((PENDING, RETRY_WAIT)), Delivery.next_attempt_at <= now)
        .group_by(Delivery.channel)
    )
    samples: list[Sample] = []
    for channel, oldest, n in rows:
        samples.append(({"channel": channel, "measure": "age_seconds"}, _age(now, oldest)))
        samples.append(({"channel": channel, "measure": "count"}, float(n)))
    return samples


CORE_GAUGES = (
    DatabaseGauge("alertd_alerts", "Alerts by state and status.", ("state", "status"), _alerts),
    DatabaseGauge(
        "alertd_deliveries",
        "Delivery rows by channel and state (sent, failed, unknown, skipped, waiting...).",
        ("channel", "state"),
        _deliveries,
    ),
    DatabaseGauge(
        "alertd_dispatches", "Dispatches by channel and state.", ("channel", "state"), _dispatches
    ),
    DatabaseGauge(
        "alertd_outbox_untaken",
        "Outbox rows no worker has taken yet: the oldest one's age and how many.",
        ("measure",),
        _outbox,
    ),
    DatabaseGauge(
        "alertd_deliveries_due",
        "Deliveries due and not yet claimed (the work queue): the oldest one's age and how many.",
        ("channel", "measure"),
        _due,
    ),
)


class DatabaseCollector(Collector):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        with self.ctx.db.session() as session:
            for gauge in (*CORE_GAUGES, *_extra_gauges.values()):
                family = GaugeMetricFamily(
                    gauge.name, gauge.documentation, labels=list(gauge.labels)
                )
                for labels, value in gauge.read(session):
                    family.add_metric([labels[name] for name in gauge.labels], float(value))
                yield family
