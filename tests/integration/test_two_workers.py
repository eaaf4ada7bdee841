"""Two separate worker processes (as on two machines) against one Redis and one database share
the work of one alert, and no delivery is done twice. Their metrics, written to one
multiprocess folder, add up to what was delivered; their JSON log lines name each delivery."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from alertd.alerts import services
from alertd.channels.models import Delivery
from alertd.context import Context
from alertd.observe.views import MULTIPROC_ENV
from alertd.web.app import create_app
from tests.support.factories import alert_body, make_actor
from tests.support.processes import CeleryProcess, wait_for

pytestmark = pytest.mark.redis

RECIPIENTS = 60


def _sent_by_worker(log: Path) -> set[int]:
    """Delivery ids this worker's processes logged as sent, read from its JSON lines."""
    sent = set()
    for line in log.read_text().splitlines():
        if not line.startswith("{"):
            continue  # Celery's banner is plain text.
        entry = json.loads(line)
        if entry.get("delivery_state") == "sent" and entry.get("channel") == "recording":
            # Successes are logged one line per sub-batch, naming every delivery.
            sent.update(int(i) for i in entry["delivery_ids"])
    return sent


def test_two_worker_processes_share_the_work_and_send_nothing_twice(
    live_ctx: Context,
    worker_env: dict[str, str],
    start_celery: Callable[..., CeleryProcess],
    sink: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given: two workers, each its own process tree, sharing only Redis and the database
    (tmp_path / "flaky-ok").touch()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = worker_env | {
        "ALERTD_TEST_RECIPIENTS": str(RECIPIENTS),
        # Each send takes a moment, as a real gateway does, so both workers get a share.
        "ALERTD_TEST_SEND_SECONDS": "0.03",
        MULTIPROC_ENV: str(metrics_dir),
    }
    workers = [start_celery("worker", "--concurrency=1", env=env) for _ in range(2)]
    officer = make_actor(live_ctx, "off", "officer")
    supervisor = make_actor(live_ctx, "sup", "supervisor")

    # when
    alert = services.create_alert(live_ctx, alert_body(), by=officer)
    services.submit_alert(live_ctx, alert.id, by=officer)
    services.approve_alert(live_ctx, alert.id, by=supervisor)

    def finished() -> list[Delivery]:
        with live_ctx.db.session() as session:
            rows = list(
                session.execute(
                    select(Delivery).where(
                        Delivery.alert_id == alert.id, Delivery.channel == "recording"
                    )
                ).scalars()
            )
        return rows if len(rows) == RECIPIENTS and all(d.state == "sent" for d in rows) else []

    rows = wait_for(finished, 60, interval=0.2, message=f"{RECIPIENTS} deliveries sent")

    # then: every delivery went out exactly once...
    sends = Counter(line.split()[0] for line in sink.read_text().splitlines())
    assert len(sends) == RECIPIENTS and set(sends.values()) == {1}
    assert {str(d.id) for d in rows} == set(sends)
    assert all(d.attempts == 1 for d in rows)
    # ...and both workers did part of it, never the same part.
    first, second = (_sent_by_worker(w.log) for w in workers)
    assert first and second, (len(first), len(second))
    assert not first & second
    assert first | second == {d.id for d in rows}
    # The workers' figures, each written by its own processes, add up in /metrics.
    monkeypatch.setenv(MULTIPROC_ENV, str(metrics_dir))
    text = create_app(context=live_ctx).test_client().get("/metrics").text
    outcomes = {
        s.labels["channel"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "alertd_delivery_outcomes_total" and s.labels["outcome"] == "sent"
    }
    assert outcomes["recording"] == RECIPIENTS
    assert any(metrics_dir.iterdir())
