"""/metrics after a real approval and delivery, who may read it, and JSON log lines that carry
the alert, version and delivery ids."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.models import Alert
from alertd.broker import RecordingPublisher
from alertd.channels import dispatch
from alertd.context import Context
from alertd.observe.logs import configure_logging
from alertd.observe.views import MULTIPROC_ENV
from alertd.web.app import create_app
from tests.support.factories import alert_body
from tests.support.tasks import run_pending_tasks


def active_alert(
    ctx: Context, publisher: RecordingPublisher, officer: Actor, supervisor: Actor
) -> Alert:
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    approved = services.approve_alert(ctx, alert.id, by=supervisor)
    run_pending_tasks(ctx, publisher)
    return approved


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture(autouse=True)
def single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)


def test_metrics_after_an_alert_show_states_deliveries_latency_and_queues(
    client: FlaskClient,
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
) -> None:
    # given
    before = samples(client.get("/metrics").text)
    active_alert(ctx, publisher, officer, supervisor)

    # when
    response = client.get("/metrics")

    # then
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    found = samples(response.text)
    log = (("channel", "log"),)
    assert found[("alertd_alerts", (("state", "active"), ("status", "Actual")))] == 1
    assert found[("alertd_deliveries", (("channel", "log"), ("state", "sent")))] == 1
    assert found[("alertd_dispatches", (("channel", "log"), ("state", "planned")))] == 1
    assert found[("alertd_outbox_untaken", (("measure", "count"),))] == 0
    assert found[("alertd_outbox_untaken", (("measure", "age_seconds"),))] == 0
    # Counters and histograms live in the process: compare with the scrape before the alert.
    sent = (("channel", "log"), ("outcome", "sent"))
    assert (
        found[("alertd_delivery_outcomes_total", sent)]
        - before.get(("alertd_delivery_outcomes_total", sent), 0)
        == 1
    )
    first_send = found[("alertd_approval_to_first_send_seconds_count", log)]
    assert first_send - before.get(("alertd_approval_to_first_send_seconds_count", log), 0) == 1
    assert found[("alertd_approval_to_first_send_seconds_sum", log)] < 60
    assert found[("alertd_send_seconds_count", log)] >= 1
    assert "# HELP alertd_limiter_wait_seconds" in response.text


def test_untaken_work_shows_in_the_queue_figures(
    client: FlaskClient,
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
) -> None:
    # given: approved, but no task has run
    alert = services.create_alert(ctx, alert_body(), by=officer)
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)
    waiting = samples(client.get("/metrics").text)

    # when: dispatched and planned, but no delivery task has run
    (_, (message_id,)) = publisher.sent.pop(0)
    for dispatch_id in dispatch.dispatch_version(ctx, message_id):
        dispatch.plan_dispatch(ctx, dispatch_id)
    planned = samples(client.get("/metrics").text)

    # then
    assert waiting[("alertd_outbox_untaken", (("measure", "count"),))] == 1
    assert planned[("alertd_outbox_untaken", (("measure", "count"),))] == 0
    due = (("channel", "log"), ("measure", "count"))
    assert planned[("alertd_deliveries_due", due)] == 1


def test_metrics_refuse_other_machines_without_a_token(client: FlaskClient) -> None:
    response = client.get("/metrics", environ_overrides={"REMOTE_ADDR": "203.0.113.9"})

    assert response.status_code == 403


def test_metrics_with_a_token_need_it_from_anywhere(ctx: Context) -> None:
    # given
    ctx.settings = ctx.settings.with_overrides(METRICS_TOKEN="scrape-me")
    client = create_app(context=ctx, test_config={"TESTING": True}).test_client()

    # when / then
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    allowed = client.get(
        "/metrics",
        headers={"Authorization": "Bearer scrape-me"},
        environ_overrides={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert allowed.status_code == 200 and "alertd_alerts" in allowed.text


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("json", logging.INFO, stream)
    yield stream
    root.handlers, root.level = handlers, level


def test_json_log_lines_about_a_delivery_carry_its_ids(
    json_log: io.StringIO,
    ctx: Context,
    publisher: RecordingPublisher,
    officer: Actor,
    supervisor: Actor,
) -> None:
    # when
    alert = active_alert(ctx, publisher, officer, supervisor)

    # then
    lines: list[dict[str, Any]] = [json.loads(line) for line in json_log.getvalue().splitlines()]
    about_deliveries = [line for line in lines if line.get("delivery_state")]
    assert about_deliveries, lines
    version_id = alert.versions[0].id
    for line in about_deliveries:
        assert line["alert_id"] == alert.id
        assert line["version_id"] == version_id
        # A failure names its delivery; successes come one line per sub-batch, naming each.
        ids = [line["delivery_id"]] if "delivery_id" in line else line["delivery_ids"]
        assert ids and all(isinstance(i, int) for i in ids)
        assert {"time", "level", "name", "message"} <= set(line)
    # The log channel's own line about sending, logged inside the same context, has them too.
    channel_lines = [line for line in lines if line["name"] == "alertd.channels.log"]
    assert channel_lines and all(line.get("version_id") == version_id for line in channel_lines)
