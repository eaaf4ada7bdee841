"""``GET /metrics``: Prometheus text, for a scraper holding the token or on this machine."""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterator

from flask import Blueprint, Response, abort, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from alertd.observe.collector import DatabaseCollector
from alertd.web.auth import ctx

bp = Blueprint("metrics", __name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class _ThisProcess(Collector):
    """The default registry's metrics (this process only), for the single-process fallback."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def _allowed() -> bool:
    token = ctx().settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)
    # Without a token only this machine may read: behind a proxy on the same host, set the
    # token or ALERTD_PROXY_HOPS (which makes remote_addr the outside client).
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def registry() -> CollectorRegistry:
    found = CollectorRegistry(auto_describe=False)
    folder = os.environ.get(MULTIPROC_ENV)
    if folder:
        MultiProcessCollector(found, path=folder)  # type: ignore[no-untyped-call]
    else:
        found.register(_ThisProcess())
    found.register(DatabaseCollector(ctx()))
    return found


@bp.get("/metrics")
def metrics() -> Response:
    if not _allowed():
        abort(403, description="Metrics need the ALERTD_METRICS_TOKEN bearer token.")
    return Response(generate_latest(registry()), headers={"Content-Type": CONTENT_TYPE_LATEST})
