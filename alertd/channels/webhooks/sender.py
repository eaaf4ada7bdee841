"""Sending one version to one endpoint, format by format, and reading what the answer means.

Standard webhooks are signed over the exact bytes sent with ``standardwebhooks``; Mastodon
posts carry an ``Idempotency-Key`` equal to the delivery id, so a retry never posts twice.
Updates reply in the thread of the first post; a resolution or cancellation edits the first
post to say so at the top (and removes the photo) and replies."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

from alertd.channels.webhooks.formats import CAPTION_LIMIT, Message, render_json, shorten
from alertd.channels.webhooks.http import Answer, Limits, request
from alertd.channels.webhooks.ssrf import Target

SENT, RETRY, FAILED, GONE, UNKNOWN = "sent", "retry", "failed", "gone", "unknown"
THROTTLED = "throttled"
# Retry-After is honoured between these bounds (seconds).
RETRY_AFTER_BOUNDS = (1.0, 1800.0)
USER_AGENT = "alertd-webhooks/1"


@dataclass(frozen=True)
class EndpointView:
    """What a send needs of an endpoint, secrets decrypted, read before any request leaves."""

    id: int
    url: str
    format: str
    language: str
    secrets: tuple[str, ...]
    token: str
    chat_id: str


@dataclass(frozen=True)
class Thread:
    """The first post of this alert on this endpoint (Mastodon status or Telegram message)."""

    external_id: str
    text: str


@dataclass
class Result:
    state: str
    error: str = ""
    retry_after: float | None = None
    external_id: str | None = None
    # One entry per HTTP request made, for the delivery log.
    answers: list[Answer] = field(default_factory=list)


def send(
    endpoint: EndpointView,
    target: Target,
    delivery_id: int,
    message: Message,
    thread: Thread | None,
    limits: Limits,
) -> Result:
    if endpoint.format == "mastodon":
        return _mastodon(endpoint, target, delivery_id, message, thread, limits)
    if endpoint.format == "telegram":
        return _telegram(endpoint, target, message, thread, limits)
    body = render_json(endpoint.format, message)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if endpoint.format == "standard":
        headers.update(sign(endpoint.secrets, str(delivery_id), body))
    answer = request(target, "POST", body, headers, limits)
    return _judge(answer, endpoint.format, [answer])


def sign(secrets: tuple[str, ...], webhook_id: str, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers; during a rotation every live secret signs (space-separated)."""
    now = datetime.now(UTC)
    signatures = " ".join(Webhook(s).sign(webhook_id, now, body.decode()) for s in secrets)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures,
    }


def _retry_after(answer: Answer) -> float | None:
    raw = answer.headers.get("Retry-After") or answer.headers.get("retry-after")
    if raw is None and answer.body[:1] == b"{":
        # Telegram says it in the body: {"parameters": {"retry_after": 5}}.
        params = _json(answer).get("parameters")
        raw = str(params.get("retry_after")) if isinstance(params, dict) else None
    try:
        seconds = float(raw) if raw is not None else None
    except ValueError:
        return None
    if seconds is None or seconds != seconds:  # NaN
        return None
    return min(max(seconds, RETRY_AFTER_BOUNDS[0]), RETRY_AFTER_BOUNDS[1])


def _json(answer: Answer) -> dict[str, Any]:
    try:
        value = json.loads(answer.body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _gateway_message(answer: Answer) -> str:
    data = _json(answer)
    text = data.get("error") or data.get("description") or answer.body[:200].decode("replace")
    return str(text)


def _judge(
    answer: Answer, fmt: str, answers: list[Answer], external_id: str | None = None
) -> Result:
    status = answer.status
    if status is None and answer.maybe_received and fmt == "telegram":
        # The Bot API has no idempotency key: a resend could post twice. The outcome is
        # unknown, shown to operators, who can check the channel and replay it.
        return Result(UNKNOWN, f"no answer, the post may exist: {answer.error}", answers=answers)
    if status is None:
        return Result(RETRY, answer.error, None, answers=answers)
    if 200 <= status < 300:
        return Result(SENT, external_id=external_id, answers=answers)
    if status == 410:
        return Result(GONE, "the endpoint answered 410 Gone: disabled", answers=answers)
    if status == 429:
        return Result(THROTTLED, "HTTP 429", _retry_after(answer), answers=answers)
    if status >= 500:
        return Result(RETRY, f"HTTP {status}", _retry_after(answer), answers=answers)
    if 300 <= status < 400:
        where = answer.headers.get("Location", "")
        return Result(
            FAILED, f"HTTP {status}: redirects are not followed ({where[:200]})", answers=answers
        )
    if fmt in ("mastodon", "telegram") and status in (401, 403, 404):
        # A refused token is a setting to fix, not a reason to retry until the alert ends.
        return Result(
            FAILED, f"{fmt} refused the token: {_gateway_message(answer)}", answers=answers
        )
    return Result(
        FAILED, f"HTTP {status}: {answer.body[:300].decode('utf-8', 'replace')}", answers=answers
    )


def _mastodon(
    endpoint: EndpointView,
    target: Target,
    delivery_id: int,
    message: Message,
    thread: Thread | None,
    limits: Limits,
) -> Result:
    auth = {"Authorization": f"Bearer {endpoint.token}", "User-Agent": USER_AGENT}
    answers: list[Answer] = []
    base = target.path.rstrip("/")
    if thread is not None and message.kind in ("resolve", "cancel", "expire"):
        # Edit the first post first: it is the one still being shared. No media_ids: the edit
        # takes the photo off a post whose search has ended.
        edited = shorten(f"{message.short_text}\n\n{thread.text}", LONG_POST)
        answer = request(
            target,
            "PUT",
            json.dumps({"status": edited}).encode(),
            {**auth, "Content-Type": "application/json"},
            limits,
            path=f"{base}/api/v1/statuses/{thread.external_id}",
        )
        answers.append(answer)
        if not _ok(answer):
            return _judge(answer, "mastodon", answers)
    media_ids: list[str] = []
    if message.photo is not None:
        answer = request(
            target,
            "POST",
            None,
            auth,
            limits,
            path=f"{base}/api/v2/media",
            fields={
                "file": (message.photo.filename, message.photo.data, message.photo.mime_type),
                "description": message.photo_alt,
            },
        )
        answers.append(answer)
        if not _ok(answer):
            return _judge(answer, "mastodon", answers)
        media_ids.append(str(_json(answer).get("id", "")))
    status: dict[str, Any] = {
        "status": message.long_text,
        "media_ids": media_ids,
        "visibility": "public",
        "language": endpoint.language,
    }
    if thread is not None:
        status["in_reply_to_id"] = thread.external_id
    answer = request(
        target,
        "POST",
        json.dumps(status).encode(),
        {**auth, "Content-Type": "application/json", "Idempotency-Key": str(delivery_id)},
        limits,
        path=f"{base}/api/v1/statuses",
    )
    answers.append(answer)
    if answer.status == 422 and b"processing" in answer.body:
        # Mastodon answers a large upload with 202 and processes it in the background; a
        # status naming it before it is ready is refused. Not a bad request: try again soon.
        return Result(
            RETRY, "the photo is still being processed", MEDIA_WAIT_SECONDS, answers=answers
        )
    posted = str(_json(answer).get("id", "")) if _ok(answer) else None
    return _judge(answer, "mastodon", answers, external_id=posted)


MEDIA_WAIT_SECONDS = 2.0


# Mastodon's default status length.
LONG_POST = 500


def _ok(answer: Answer) -> bool:
    return answer.status is not None and 200 <= answer.status < 300


def _telegram(
    endpoint: EndpointView,
    target: Target,
    message: Message,
    thread: Thread | None,
    limits: Limits,
) -> Result:
    base = f"{target.path.rstrip('/')}/bot{endpoint.token}"
    answers: list[Answer] = []
    chat = endpoint.chat_id
    if thread is not None and message.kind in ("resolve", "cancel", "expire"):
        first_kind, _, first_id = thread.external_id.partition(":")
        method = "editMessageCaption" if first_kind == "photo" else "editMessageText"
        key = "caption" if first_kind == "photo" else "text"
        edited = shorten(f"{message.short_text}\n\n{thread.text}", CAPTION_LIMIT)
        answer = _bot(
            target,
            f"{base}/{method}",
            {"chat_id": chat, "message_id": int(first_id), key: edited},
            limits,
        )
        answers.append(answer)
        if not _ok(answer):
            return _judge(answer, "telegram", answers)
    reply = {"reply_to_message_id": int(thread.external_id.partition(":")[2])} if thread else {}
    if message.photo is not None:
        answer = request(
            target,
            "POST",
            None,
            {"User-Agent": USER_AGENT},
            limits,
            path=f"{base}/sendPhoto",
            fields={
                "chat_id": chat,
                "caption": shorten(message.long_text, CAPTION_LIMIT),
                "photo": (message.photo.filename, message.photo.data, message.photo.mime_type),
                **{k: str(v) for k, v in reply.items()},
            },
        )
        kind = "photo"
    else:
        answer = _bot(
            target,
            f"{base}/sendMessage",
            {"chat_id": chat, "text": message.long_text, **reply},
            limits,
        )
        kind = "text"
    answers.append(answer)
    result = _json(answer).get("result")
    posted = result.get("message_id") if isinstance(result, dict) else None
    return _judge(
        answer, "telegram", answers, external_id=f"{kind}:{posted}" if _ok(answer) else None
    )


def _bot(target: Target, path: str, payload: dict[str, Any], limits: Limits) -> Answer:
    return request(
        target,
        "POST",
        json.dumps(payload).encode(),
        {"Content-Type": "application/json", "User-Agent": USER_AGENT},
        limits,
        path=path,
    )
