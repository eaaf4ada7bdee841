"""What Twilio calls: status callbacks (``/twilio/status/<delivery_id>``) and inbound texts
(``/twilio/inbound``, answered with TwiML). Each request proves itself by its
``X-Twilio-Signature``, checked by the SDK's RequestValidator against the public URL (behind a
proxy the URL this server sees differs); a bad or missing one is refused with 403 and audited."""

from __future__ import annotations

import os

from flask import Blueprint, Response, abort, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from alertd.actor import Actor
from alertd.audit.services import record
from alertd.channels.models import Delivery
from alertd.channels.sms import services
from alertd.channels.sms.models import GatewayStatus
from alertd.channels.sms.phones import BadNumber, phone_digest, to_e164
from alertd.db import utcnow
from alertd.errors import Invalid
from alertd.public.links import base_url
from alertd.web.auth import client_address, ctx

bp = Blueprint("twilio", __name__, url_prefix="/twilio")

# How far along a text is; a callback only ever moves it forward (they arrive out of order and
# twice). A failure after delivery cannot happen, so delivered outranks both endings.
RANK = {"accepted": 0, "queued": 1, "sending": 2, "sent": 3, "undelivered": 4, "failed": 4}
RANK["delivered"] = 5
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
HELP_TEXT = (
    "AMBER alerts by text from alertd: missing-child alerts for your area. Reply STOP to end, "
    "JOIN <area> to add an area. Msg&data rates may apply."
)


def _twilio_actor() -> Actor:
    return Actor(None, "twilio", "system", client_address(), "twilio")


def _verified() -> None:
    token = os.environ.get("TWILIO_AUTH_TOKEN", "")
    url = base_url(ctx().settings) + request.full_path.rstrip("?")
    signature = request.headers.get("X-Twilio-Signature", "")
    if token and signature and RequestValidator(token).validate(url, request.form, signature):
        return
    with ctx().db.transaction() as session:
        record(
            session,
            actor=_twilio_actor(),
            action="sms.callback.refused",
            outcome="refused",
            target_type="twilio",
            target_id=request.path[:60],
            detail={"reason": "bad signature" if signature else "no signature"},
        )
    abort(403)


@bp.post("/status/<int:delivery_id>")
def status(delivery_id: int) -> Response:
    _verified()
    new = request.form.get("MessageStatus", "")
    if new not in RANK:
        abort(400)
    with ctx().db.transaction() as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or delivery.channel != "sms":
            abort(404)
        row = session.get(GatewayStatus, delivery_id, with_for_update=True)
        if row is None:
            session.add(
                GatewayStatus(
                    delivery_id=delivery_id,
                    alert_id=delivery.alert_id,
                    status=new,
                    error_code=request.form.get("ErrorCode", "")[:10],
                    updated_at=utcnow(),
                )
            )
        elif RANK[new] > RANK.get(row.status, -1):
            row.status, row.updated_at = new, utcnow()
            row.error_code = request.form.get("ErrorCode", "")[:10]
    return Response(status=204)


def _reply(text: str) -> Response:
    twiml = MessagingResponse()
    twiml.message(text)
    return Response(str(twiml), mimetype="application/xml")


def _join_areas() -> dict[str, str]:
    """``SMS_JOIN_AREAS`` as word -> ``SCHEME=VALUE``."""
    out = {}
    for item in ctx().settings.SMS_JOIN_AREAS.split():
        word, _, code = item.partition("=")
        if code:
            out[word.upper()] = code
    return out


@bp.post("/inbound")
def inbound() -> Response:
    _verified()
    try:
        phone = to_e164(request.form.get("From", ""))
    except BadNumber:
        return _reply("Sorry, we cannot read your number.")
    words = request.form.get("Body", "").strip().split()
    keyword = words[0].upper() if words else ""
    by = _twilio_actor()
    if keyword in STOP_WORDS:
        services.set_opted_out(ctx(), phone, True, by=by, via="sms")
        return _reply("You will get no more alerts. Reply START to subscribe again.")
    if keyword in START_WORDS:
        known = services.set_opted_out(ctx(), phone, False, by=by, via="sms")
        if known:
            return _reply("You will get alerts again. Reply STOP to end.")
        return _reply("Reply JOIN <area> to get alerts for an area.")
    if keyword == "JOIN":
        wanted = words[1].upper() if len(words) > 1 else ""
        code = _join_areas().get(wanted)
        if code is None:
            known_words = ", ".join(sorted(_join_areas())) or "none yet"
            return _reply(f"Unknown area {wanted[:20]!r}. Areas: {known_words}.")
        try:
            services.join_area(ctx(), phone, code, by=by)
        except Invalid:
            return _reply(f"Unknown area {wanted[:20]!r}.")
        return _reply(f"You will get alerts for {wanted}. Reply STOP to end.")
    if keyword in HELP_WORDS:
        return _reply(HELP_TEXT)
    with ctx().db.transaction() as session:
        record(
            session,
            actor=by,
            action="sms.inbound.unknown",
            target_type="sms_phone",
            detail={"phone_hmac": phone_digest(ctx().settings, phone)},
        )
    return _reply(HELP_TEXT)
