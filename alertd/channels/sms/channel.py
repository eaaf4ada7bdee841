"""The ``sms`` channel: plans recipients from the subscriber tables, renders one text per
language, and sends a sub-batch through the gateway with up to ``concurrency`` requests in
flight (on the gateway's event loop). Its deliveries name subscribers by id, so a number is
read only just before sending."""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from flask import url_for
from flask_babel import ngettext
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from alertd.actor import SYSTEM, Actor
from alertd.alerts.models import Alert, Version
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
from alertd.channels.models import Delivery
from alertd.channels.sms import api, callbacks, openapi, queries, services, views
from alertd.channels.sms import gateway as gw
from alertd.channels.sms.messages import MAX_SEGMENTS, TEMPLATE_OF_KIND, texts_for, too_long
from alertd.channels.sms.models import ConsoleText, Subscriber
from alertd.channels.sms.segments import count_segments
from alertd.context import Context
from alertd.db import rowcount, utcnow
from alertd.public.links import base_url
from config import defaults

# An unknown request with no trace at the gateway after this long surely never left.
RECONCILE_GRACE = timedelta(seconds=60)
# A 429 is given back as a retry after this long when the gateway named no Retry-After.
THROTTLE_DEFAULT_SECONDS = 1.0
# A 5xx or a connection refused with no Retry-After: 5 s, then doubling up to ten minutes,
# each drawn between half and all of it, so texts refused together do not come back together.
RETRY_BASE_SECONDS = 5.0
RETRY_CAP_SECONDS = 600.0

_OUTCOME = {
    gw.SENT: OUT_SENT,
    gw.RETRY: OUT_RETRY,
    # Rescheduled after Retry-After without using up an attempt.
    gw.THROTTLED: OUT_THROTTLED,
    gw.FAILED: OUT_FAILED,
    gw.UNKNOWN: OUT_UNKNOWN,
}


# What a purged console text's number becomes.
ERASED = "[erased]"

# A sub-batch's subscribers, read just before sending: built once, not per sub-batch.
_SUBSCRIBERS = select(
    Subscriber.id,
    Subscriber.phone,
    Subscriber.language,
    Subscriber.opted_out,
    Subscriber.invalid,
).where(Subscriber.id.in_(bindparam("ids", expanding=True)))


class SmsChannel(Channel):
    name = "sms"
    # Twilio has no idempotency key: a request that got no answer is never resent blindly.
    idempotent = False
    # A superseded or ended alert's text is not worth sending.
    sends_superseded = False

    def __init__(self) -> None:
        self._texts: dict[int, dict[str, str]] = {}
        self._gateways: dict[tuple[int, str, str], gw.Gateway] = {}

    def gateway(self, ctx: Context) -> gw.Gateway:
        # One per process and configuration: the Twilio client keeps its connections alive
        # between batches.
        key = (id(ctx), ctx.settings.SMS_BACKEND, ctx.settings.TWILIO_API_BASE)
        if key not in self._gateways:
            self._gateways[key] = gw.make_gateway(ctx)
        return self._gateways[key]

    def configure(self, environ: Mapping[str, str] | None = None) -> None:
        """The sender's rate (global across workers) and the requests in flight per sub-batch
        are deployment settings (ALERTD_SMS_RATE, ALERTD_SMS_CONCURRENCY), read here."""
        env = os.environ if environ is None else environ
        rate = float(env.get("ALERTD_SMS_RATE") or defaults.SMS_RATE)
        # Per deployment, not per class: the base declares these as class-level defaults.
        self.rate = rate if rate > 0 else None  # type: ignore[misc]
        self.concurrency = int(  # type: ignore[misc]
            env.get("ALERTD_SMS_CONCURRENCY") or defaults.SMS_CONCURRENCY
        )

    def routes(self) -> Sequence[Routes]:
        return (
            Routes(views.bp),
            # Bearer tokens, never a cookie: no form token to check.
            Routes(api.bp, csrf_exempt=True),
            # Twilio proves itself by its signature, not by a form token.
            Routes(callbacks.bp, csrf_exempt=True),
        )

    def openapi(self) -> ApiPaths:
        return ApiPaths(openapi.PATHS, openapi.SCHEMAS)

    def console_links(self, actor: Actor) -> Sequence[NavLink]:
        if not actor.can(services.PERMISSION):
            return ()
        return (NavLink("SMS", url_for("sms.subscribers")),)

    def texts(self, ctx: Context, version: Version) -> dict[str, str]:
        """The version's text per language, rendered once per process."""
        if version.id not in self._texts:
            with ctx.db.session() as session:
                public_id = session.execute(
                    select(Alert.public_id).where(Alert.id == version.alert_id)
                ).scalar_one()
            if len(self._texts) > 1000:
                self._texts.clear()
            self._texts[version.id] = texts_for(
                ctx.settings, version.kind, version.content, public_id
            )
        return self._texts[version.id]

    def render(self, ctx: Context, version: Version) -> str:
        return self.texts(ctx, version).get("en", "")

    def preview(self, ctx: Context, version: Version) -> dict[str, str]:
        return self.texts(ctx, version)

    def preview_texts(self, ctx: Context, version: Version) -> list[PreviewText]:
        # Rendered afresh, not from the per-version cache: a preview's version is not stored.
        public_id = ""
        if version.alert_id is not None:
            with ctx.db.session() as session:
                public_id = session.execute(
                    select(Alert.public_id).where(Alert.id == version.alert_id)
                ).scalar_one()
        found = []
        for lang, text in texts_for(ctx.settings, version.kind, version.content, public_id).items():
            count = count_segments(text)
            characters = ngettext("%(num)d character", "%(num)d characters", count.characters)
            label = f"SMS ({characters}, {count.encoding})"
            found.append(PreviewText(lang, label, text, count.segments, "segments", MAX_SEGMENTS))
        return found

    def approval_problems(
        self, ctx: Context, kind: str, content: Mapping[str, Any], public_id: str
    ) -> dict[str, str]:
        long = too_long(texts_for(ctx.settings, kind, content, public_id))
        return {
            f"sms.{lang}": f"{c.segments} segments ({c.characters} characters, {c.encoding}); "
            f"at most {MAX_SEGMENTS}"
            for lang, c in long.items()
        }

    def console_status(self, ctx: Context, version: Version) -> str | None:
        with ctx.db.session() as session:
            counts = queries.alert_counts(session, version.alert_id)
        return ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.items())

    def console_page(self, actor: Actor, alert_id: int) -> str | None:
        if not actor.can(services.PERMISSION):
            return None  # The page names subscribers and the gateway's errors.
        return url_for("sms.alert_status", alert_id=alert_id)

    def plan(self, ctx: Context, version: Version) -> Iterable[str]:
        return (str(i) for i in self._recipients(ctx, version))

    def _recipients(self, ctx: Context, version: Version) -> Iterator[int]:
        # Test and Exercise alerts never reach the public's phones.
        if version.status != "Actual" or version.kind not in TEMPLATE_OF_KIND:
            return iter(())
        if version.kind == "alert":
            return queries.area_recipients(ctx, version.content)
        widen = version.kind == "update"
        return queries.recipients(ctx, version.alert_id, version.id, version.content, widen=widen)

    def deliver(
        self, ctx: Context, version: Version, deliveries: Sequence[Delivery]
    ) -> list[Outcome]:
        texts = self.texts(ctx, version)
        ids = [int(d.recipient) for d in deliveries]
        # A bare connection: a read needs no ORM session.
        with ctx.db.read_engine.connect() as connection:
            subs = {
                sub_id: (phone, language, opted_out or invalid)
                for sub_id, phone, language, opted_out, invalid in connection.execute(
                    _SUBSCRIBERS, {"ids": ids}
                )
            }
        validity = gw.validity_seconds(version.expires_at)
        callback = base_url(ctx.settings) + "/twilio/status/{}"
        outcomes: dict[int, Outcome] = {}
        to_send: list[tuple[Delivery, gw.Text]] = []
        for delivery in deliveries:
            sub = subs.get(int(delivery.recipient))
            if sub is None or sub[2]:
                outcomes[delivery.id] = Outcome(delivery.id, OUT_SKIPPED, "no longer subscribed")
            elif validity <= 0 or not texts:
                outcomes[delivery.id] = Outcome(delivery.id, OUT_SKIPPED, "the alert has expired")
            else:
                text = gw.Text(
                    delivery.id,
                    version.alert_id,
                    sub[0],
                    texts.get(sub[1], texts["en"]),
                    callback.format(delivery.id),
                    validity,
                )
                to_send.append((delivery, text))
        results = self.gateway(ctx).send_many([text for _, text in to_send]) if to_send else []
        for (delivery, _), result in zip(to_send, results, strict=True):
            outcomes[delivery.id] = self._outcome(ctx, delivery, result)
        return [outcomes[d.id] for d in deliveries]

    def _outcome(self, ctx: Context, delivery: Delivery, result: gw.Result) -> Outcome:
        if result.code == gw.OPTED_OUT_CODE:
            services.mark_unreachable(ctx, int(delivery.recipient), opted_out=True, by=SYSTEM)
        elif result.code in gw.INVALID_CODES:
            services.mark_unreachable(ctx, int(delivery.recipient), opted_out=False, by=SYSTEM)
        return Outcome(
            delivery.id,
            _OUTCOME[result.outcome],
            result.error,
            retry_after=retry_delay(result, delivery.attempts),
            external_id=result.external_id,
        )

    def erase_recipients(self, session: Session, delivery_ids: Sequence[int]) -> int:
        """The console backend's kept texts hold the number in clear."""
        result = session.execute(
            update(ConsoleText).where(ConsoleText.delivery_id.in_(delivery_ids)).values(to=ERASED)
        )
        return rowcount(result)

    def reconcile(self, ctx: Context, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Ask the gateway's message list whether each unknown text went out since its attempt:
        a text to that number with this version's wording (in any of its languages) is sent;
        none after the grace period is safe to retry; otherwise it stays unknown. Another text to
        the same number (the alert before a cancel, another alert) is not taken for this one."""
        ids = [int(d.recipient) for d in deliveries]
        with ctx.db.session() as session:
            phones = dict(
                (i, p)
                for i, p in session.execute(
                    select(Subscriber.id, Subscriber.phone).where(Subscriber.id.in_(ids))
                )
            )
            versions = {
                v.id: v
                for v in session.execute(
                    select(Version).where(Version.id.in_({d.version_id for d in deliveries}))
                ).scalars()
            }
        wordings = {vid: set(self.texts(ctx, v).values()) for vid, v in versions.items()}
        gateway, now, settled = self.gateway(ctx), utcnow(), []
        for delivery in deliveries:
            phone = phones.get(int(delivery.recipient))
            since = delivery.attempted_at or delivery.created_at
            if phone is None:
                settled.append(Outcome(delivery.id, OUT_SKIPPED, "no longer subscribed"))
                continue
            bodies = gateway.sent_since(phone, since - timedelta(seconds=5))
            if bodies is None:
                continue
            if wordings.get(delivery.version_id, set()).intersection(bodies):
                settled.append(Outcome(delivery.id, OUT_SENT, "found at the gateway"))
            elif now - since > RECONCILE_GRACE:
                settled.append(Outcome(delivery.id, OUT_RETRY, "not found at the gateway"))
        return settled


def retry_delay(result: gw.Result, attempts: int) -> float | None:
    """Seconds before the next try of a throttled or retryable text, jittered; a Retry-After
    is honoured (never earlier, up to a tenth later). None for any other outcome. The engine
    fails a text whose next try would fall after the alert's expiry."""
    if result.outcome not in (gw.THROTTLED, gw.RETRY):
        return None
    if result.retry_after is not None:
        return float(result.retry_after) * random.uniform(1.0, 1.1)  # noqa: S311 - spreading
    if result.outcome == gw.THROTTLED:
        return THROTTLE_DEFAULT_SECONDS * random.uniform(1.0, 2.0)  # noqa: S311
    ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2.0 ** max(0, attempts - 1))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311
