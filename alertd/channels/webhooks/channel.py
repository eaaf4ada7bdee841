"""The ``webhook`` channel: one delivery per (version, endpoint).

Isolation: one delivery task may hold many endpoints; each request runs in a thread of a small
pool inside the task (``ALERTD_WEBHOOK_CONCURRENCY``), bounded by connect and read timeouts
and a total deadline. A hanging endpoint therefore holds one thread for at most a few seconds,
never the threads serving healthy endpoints, and the circuit breaker stops requests to an
endpoint after a run of failures, so a dead endpoint soon costs no thread at all. A separate
slow queue was the alternative; it needs a second worker pool to deploy and still has to cap
each request, so the pool inside the task gives the same isolation with less to run.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alertd.actor import SYSTEM, Actor
from alertd.alerts.models import ACTIVE, Alert, Photo, Version
from alertd.alerts.text import summary_text
from alertd.audit.services import record
from alertd.channels.base import (
    OUT_FAILED,
    OUT_RETRY,
    OUT_SENT,
    OUT_SKIPPED,
    OUT_THROTTLED,
    OUT_UNKNOWN,
    ApiPaths,
    Channel,
    NavLink,
    Outcome,
    PreviewText,
    Routes,
)
from alertd.channels.models import (
    D_PENDING,
    D_PLANNING,
    OPEN_STATES,
    SENT,
    Delivery,
    Dispatch,
)
from alertd.channels.webhooks import api, openapi, queries, sender, views
from alertd.channels.webhooks.formats import ENDED_KINDS, Message, PhotoFile, build_message
from alertd.channels.webhooks.http import Answer, Limits
from alertd.channels.webhooks.models import EVENT_OF_KIND, TOKEN_FORMATS, Attempt, Endpoint
from alertd.channels.webhooks.preview import post_preview_texts
from alertd.channels.webhooks.secrets import unseal
from alertd.channels.webhooks.services import CHANNEL, PERMISSION, check_endpoint_url
from alertd.channels.webhooks.ssrf import UnsafeUrl
from alertd.context import Context
from alertd.db import utcnow

log = logging.getLogger(__name__)

# Delays between attempts (seconds), as the issue and Svix suggest: the first attempt is
# immediate, then 5 s, 30 s, 2 min, 10 min, 30 min, each with +-20 % jitter so that endpoints
# failing together do not all come back at the same instant.
SCHEDULE = (5, 30, 120, 600, 1800)
JITTER = 0.2
# How long a delivery waits for the version before it on the same endpoint (version order).
ORDER_WAIT_SECONDS = 1.0
# An open circuit stays open this long, doubling with each further failure, up to the cap.
BREAKER_OPEN_SECONDS, BREAKER_MAX_SECONDS = 30, 600
# The first bytes of each answer kept in the delivery log.
LOG_HEAD_BYTES = 500


@dataclass(frozen=True)
class _Job:
    delivery: Delivery
    endpoint: sender.EndpointView
    thread: sender.Thread | None


class WebhookChannel(Channel):
    name = CHANNEL
    idempotent = True
    # ceil(100 / ALERTD_WEBHOOK_CONCURRENCY) rounds of connect + read at worst: 4 x 7 s with the
    # defaults, well inside Celery's soft time limit (90 s) and DELIVERY_LEASE_SECONDS.
    task_size = 100
    # Partners receive every event in order (alert, update, cancel), not just the latest.
    sends_superseded = True

    def routes(self) -> Sequence[Routes]:
        # The API takes bearer tokens, never a cookie: no form token to check.
        return (Routes(views.bp), Routes(api.bp, csrf_exempt=True))

    def openapi(self) -> ApiPaths:
        return ApiPaths(openapi.PATHS, openapi.SCHEMAS)

    def console_links(self, actor: Actor) -> Sequence[NavLink]:
        if not actor.can(PERMISSION):
            return ()
        return (NavLink("Webhooks", url_for("webhooks.index")),)

    def console_status(self, ctx: Context, version: Version) -> str | None:
        with ctx.db.session() as session:
            requests = queries.attempt_count(session, version.alert_id)
        if not requests:
            return None
        return f"{requests} request{'' if requests == 1 else 's'} to partners"

    def console_page(self, actor: Actor, alert_id: int) -> str | None:
        if not actor.can(PERMISSION):
            return None  # The log shows partners' URLs and their answers.
        return url_for("webhooks.alert_log", alert_id=alert_id)

    def preview(self, ctx: Context, version: Version) -> dict[str, str]:
        primary = (version.content.get("languages") or ["en-US"])[0]
        return {primary: summary_text(version)}

    def preview_texts(self, ctx: Context, version: Version) -> list[PreviewText]:
        public_id = ""
        if version.alert_id is not None:
            with ctx.db.session() as session:
                public_id = session.execute(
                    select(Alert.public_id).where(Alert.id == version.alert_id)
                ).scalar_one()
        return post_preview_texts(ctx.settings, version, public_id)

    def plan(self, ctx: Context, version: Version) -> Iterable[str]:
        event = EVENT_OF_KIND[version.kind]
        with ctx.db.session() as session:
            endpoints = session.execute(
                select(Endpoint.id, Endpoint.events, Endpoint.accepts_tests)
                .where(Endpoint.enabled.is_(True))
                .order_by(Endpoint.id)
            ).all()
        return [
            str(e.id)
            for e in endpoints
            if event in e.events and (version.status == "Actual" or e.accepts_tests)
        ]

    def deliver(
        self, ctx: Context, version: Version, deliveries: Sequence[Delivery]
    ) -> list[Outcome]:
        now = utcnow()
        outcomes: dict[int, Outcome] = {}
        jobs: list[_Job] = []
        with ctx.db.session() as session:
            alert = session.get(Alert, version.alert_id)
            assert alert is not None
            public_id = alert.public_id
            photo = session.get(Photo, version.photo_id) if version.photo_id else None
            photo_file = (
                PhotoFile(photo.data, photo.mime_type, f"{photo.sha256}.{photo.extension}")
                if photo
                else None
            )
            # A few queries per batch, not per delivery: a fan-out to many endpoints starts fast.
            waiting_dispatch = _earlier_dispatch_unplanned(session, version)
            waiting = _earlier_open(session, version, [d.recipient for d in deliveries])
            endpoints = {
                e.id: e
                for e in session.execute(
                    select(Endpoint).where(Endpoint.id.in_([int(d.recipient) for d in deliveries]))
                ).scalars()
            }
            for delivery in deliveries:
                endpoint = endpoints.get(int(delivery.recipient))
                if endpoint is None or not endpoint.enabled:
                    reason = endpoint.disabled_reason if endpoint else "endpoint deleted"
                    outcomes[delivery.id] = Outcome(
                        delivery.id, OUT_FAILED, f"endpoint disabled: {reason}"
                    )
                elif endpoint.circuit_open_until and endpoint.circuit_open_until > now:
                    wait = (endpoint.circuit_open_until - now).total_seconds()
                    outcomes[delivery.id] = _defer(delivery, f"circuit open: {wait:.0f} s", wait)
                elif waiting_dispatch or delivery.recipient in waiting:
                    outcomes[delivery.id] = _defer(
                        delivery, "waiting for the previous version", ORDER_WAIT_SECONDS
                    )
                else:
                    thread = _thread(session, ctx, version, endpoint)
                    reason = _no_post_reason(alert, version, endpoint, thread, now)
                    if reason:
                        outcomes[delivery.id] = Outcome(delivery.id, OUT_SKIPPED, reason)
                    else:
                        jobs.append(_Job(delivery, _view(ctx, endpoint), thread))
        results = self._send_all(ctx, version, public_id, photo_file, jobs)
        self._record(ctx, jobs, results, outcomes, deliveries)
        return [outcomes[d.id] for d in deliveries]

    def _send_all(
        self,
        ctx: Context,
        version: Version,
        public_id: str,
        photo: PhotoFile | None,
        jobs: list[_Job],
    ) -> list[sender.Result]:
        if not jobs:
            return []
        settings = ctx.settings
        limits = Limits(
            settings.WEBHOOK_CONNECT_SECONDS,
            settings.WEBHOOK_READ_SECONDS,
            settings.WEBHOOK_CONNECT_SECONDS + settings.WEBHOOK_READ_SECONDS,
            settings.WEBHOOK_MAX_RESPONSE_BYTES,
        )
        messages: dict[str, Message] = {}
        for job in jobs:
            language = job.endpoint.language
            if language not in messages:
                name = photo.filename if photo else None
                messages[language] = build_message(
                    settings, version, public_id, language, photo, name
                )

        def one(job: _Job) -> sender.Result:
            try:
                # Checked again at every delivery: DNS may have changed since the endpoint was
                # saved; the request goes only to the addresses checked here.
                target = check_endpoint_url(settings, job.endpoint.url)
            except UnsafeUrl as exc:
                return sender.Result(sender.FAILED, f"refused: {exc}")
            try:
                return sender.send(
                    job.endpoint,
                    target,
                    job.delivery.id,
                    messages[job.endpoint.language],
                    job.thread,
                    limits,
                )
            except Exception as exc:  # One endpoint's surprise must not lose the others.
                log.exception("webhook endpoint %s", job.endpoint.id)
                return sender.Result(sender.RETRY, f"{type(exc).__name__}: {exc}")

        workers = max(1, min(settings.WEBHOOK_CONCURRENCY, len(jobs)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook") as pool:
            return list(pool.map(one, jobs))

    def _record(
        self,
        ctx: Context,
        jobs: list[_Job],
        results: list[sender.Result],
        outcomes: dict[int, Outcome],
        deliveries: Sequence[Delivery],
    ) -> None:
        now = utcnow()
        with ctx.db.transaction() as session:
            # Locked in id order, as every batch does, so two batches cannot deadlock.
            locked = {
                e.id: e
                for e in session.execute(
                    select(Endpoint)
                    .where(Endpoint.id.in_(sorted({j.endpoint.id for j in jobs})))
                    .order_by(Endpoint.id)
                    .with_for_update()
                ).scalars()
            }
            for job, result in zip(jobs, results, strict=True):
                delivery = job.delivery
                for answer in result.answers or [sender_answer(result)]:
                    session.add(_attempt(delivery, job.endpoint.id, answer, result.state, now))
                endpoint = locked[job.endpoint.id]
                _breaker(ctx, endpoint, result, now)
                if result.state == sender.GONE:
                    endpoint.enabled = False
                    endpoint.disabled_reason = f"answered 410 Gone at {now.isoformat()}"
                    record(
                        session,
                        actor=SYSTEM,
                        action="webhook.endpoint.disable",
                        target_type="webhook_endpoint",
                        target_id=endpoint.id,
                        detail={"reason": "410 Gone", "delivery": delivery.id},
                    )
                outcomes[delivery.id] = _outcome(delivery, result)


def _no_post_reason(
    alert: Alert, version: Version, endpoint: Endpoint, thread: sender.Thread | None, now: datetime
) -> str:
    """Why a post for people (chat, Mastodon, Telegram) must not go out now. Partners on the
    standard format get every event in order; a public post of an alert that ended while it
    waited would circulate a search that is over, and a correction of a post never made would
    only confuse."""
    if endpoint.format == "standard":
        return ""
    if version.kind not in ENDED_KINDS and (alert.state != ACTIVE or alert.expires_at <= now):
        return f"the alert ended ({alert.state}) before this post went out"
    if version.kind in ENDED_KINDS and endpoint.format in TOKEN_FORMATS and thread is None:
        return "nothing was posted for this alert here, so there is nothing to correct"
    return ""


def sender_answer(result: sender.Result) -> Answer:
    # No request left (refused by the SSRF check): the log still shows the attempt and why.
    return Answer(None, error=result.error)


def _attempt(
    delivery: Delivery, endpoint_id: int, answer: Answer, state: str, now: datetime
) -> Attempt:
    head = answer.body[:LOG_HEAD_BYTES].decode("utf-8", "replace") if answer.body else ""
    return Attempt(
        delivery_id=delivery.id,
        endpoint_id=endpoint_id,
        alert_id=delivery.alert_id,
        at=now,
        status_code=answer.status,
        latency_ms=answer.latency_ms,
        response_head=(head or answer.error)[: LOG_HEAD_BYTES * 2],
        outcome=state,
    )


def _outcome(delivery: Delivery, result: sender.Result) -> Outcome:
    if result.state == sender.SENT:
        return Outcome(delivery.id, OUT_SENT, external_id=result.external_id)
    if result.state == sender.RETRY:
        delay = result.retry_after
        if delay is None:
            base = SCHEDULE[min(max(delivery.attempts, 1) - 1, len(SCHEDULE) - 1)]
            delay = base * random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311 - jitter only
        return Outcome(delivery.id, OUT_RETRY, result.error, retry_after=delay)
    if result.state == sender.UNKNOWN:
        return Outcome(delivery.id, OUT_UNKNOWN, result.error)
    if result.state == sender.THROTTLED:
        # A 429: the endpoint is alive and asks us to slow down; no attempt is used up.
        return Outcome(delivery.id, OUT_THROTTLED, result.error, retry_after=result.retry_after)
    return Outcome(delivery.id, OUT_FAILED, result.error)


def _breaker(ctx: Context, endpoint: Endpoint, result: sender.Result, now: datetime) -> None:
    if result.state == sender.SENT:
        endpoint.consecutive_failures, endpoint.circuit_open_until = 0, None
        return
    if result.state not in (sender.RETRY, sender.UNKNOWN):
        return
    endpoint.consecutive_failures += 1
    over = endpoint.consecutive_failures - ctx.settings.WEBHOOK_BREAKER_FAILURES
    if over >= 0:
        seconds = min(BREAKER_OPEN_SECONDS * 2 ** min(over, 10), BREAKER_MAX_SECONDS)
        endpoint.circuit_open_until = now + timedelta(seconds=seconds)


def _defer(delivery: Delivery, why: str, seconds: float) -> Outcome:
    """Wait without spending an attempt (nothing was sent): the engine's ``throttled``."""
    return Outcome(delivery.id, OUT_THROTTLED, f"deferred: {why}", retry_after=seconds)


def _view(ctx: Context, endpoint: Endpoint) -> sender.EndpointView:
    secrets = [unseal(ctx.settings, endpoint.secret_enc)]
    until = endpoint.previous_secret_until
    if endpoint.previous_secret_enc and until and until > utcnow():
        secrets.append(unseal(ctx.settings, endpoint.previous_secret_enc))
    return sender.EndpointView(
        id=endpoint.id,
        url=endpoint.url,
        format=endpoint.format,
        language=endpoint.language,
        secrets=tuple(secrets),
        token=unseal(ctx.settings, endpoint.token_enc) if endpoint.token_enc else "",
        chat_id=endpoint.chat_id,
    )


def _earlier_dispatch_unplanned(session: Session, version: Version) -> bool:
    """An earlier version of the alert whose webhook deliveries are not all written yet."""
    count = session.execute(
        select(func.count())
        .select_from(Dispatch)
        .join(Version, Version.id == Dispatch.version_id)
        .where(
            Version.alert_id == version.alert_id,
            Version.seq < version.seq,
            Dispatch.channel == CHANNEL,
            Dispatch.state.in_((D_PENDING, D_PLANNING)),
        )
    ).scalar_one()
    return bool(count)


def _earlier_open(session: Session, version: Version, recipients: list[str]) -> set[str]:
    """Endpoints still waiting for an earlier version of this alert: they get this one after."""
    if version.seq == 1:
        return set()
    return set(
        session.execute(
            select(Delivery.recipient)
            .join(Version, Version.id == Delivery.version_id)
            .where(
                Delivery.alert_id == version.alert_id,
                Delivery.channel == CHANNEL,
                Delivery.recipient.in_(recipients),
                Delivery.state.in_(OPEN_STATES),
                Version.seq < version.seq,
            )
            .distinct()
        ).scalars()
    )


def _thread(
    session: Session, ctx: Context, version: Version, endpoint: Endpoint
) -> sender.Thread | None:
    """The first post of this alert on a Mastodon or Telegram endpoint, to reply to or edit."""
    if endpoint.format not in ("mastodon", "telegram"):
        return None
    first = session.execute(
        select(Delivery.external_id, Version)
        .join(Version, Version.id == Delivery.version_id)
        .where(
            Delivery.alert_id == version.alert_id,
            Delivery.channel == CHANNEL,
            Delivery.recipient == str(endpoint.id),
            Delivery.state == SENT,
            Delivery.external_id.is_not(None),
            Version.seq < version.seq,
        )
        .order_by(Version.seq)
        .limit(1)
    ).first()
    if first is None:
        return None
    external_id, first_version = first
    alert = session.get(Alert, version.alert_id)
    assert alert is not None
    text = build_message(
        ctx.settings, first_version, alert.public_id, endpoint.language, None, None
    ).long_text
    return sender.Thread(str(external_id), text)
