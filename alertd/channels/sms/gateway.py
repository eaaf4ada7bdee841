"""Where texts go: the ``console`` backend keeps them in a table (not sent), the ``twilio``
backend sends them with the official SDK. Each answer is classified here, once: retry only on
429 (throttled, honouring Retry-After), 5xx and connection errors that happened before the
request left; a request that left and got no answer is unknown (Twilio has no idempotency key);
21610 means the person texted STOP, 21211/21614 that the number cannot take texts."""

from __future__ import annotations

import asyncio
import os
import re
import threading
import weakref
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import select
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from alertd.channels.sms import transport
from alertd.channels.sms.models import ConsoleText
from alertd.channels.sms.streams import StreamClient
from alertd.context import Context
from alertd.db import utcnow

# A phone number written in an error message: + and 7 to 15 digits, spaces or dashes allowed.
_NUMBER = re.compile(r"\+?\d[\d \-]{5,18}\d")
# Outcomes of one request.
SENT, RETRY, THROTTLED, FAILED, UNKNOWN = "sent", "retry", "throttled", "failed", "unknown"
OPTED_OUT_CODE = 21610
INVALID_CODES = (21211, 21614)
# Twilio's longest validity period, in seconds (ten hours).
MAX_VALIDITY = 36000

_T = TypeVar("_T")


@dataclass(frozen=True)
class Text:
    delivery_id: int
    alert_id: int
    to: str
    body: str
    status_callback: str
    validity_seconds: int


@dataclass(frozen=True)
class Result:
    outcome: str
    external_id: str | None = None
    error: str = ""
    code: int | None = None
    retry_after: float | None = None


class Gateway(Protocol):
    def send(self, text: Text) -> Result: ...

    def send_many(self, texts: Sequence[Text]) -> list[Result]:
        """A result per text, in order; requests may be in flight together."""
        ...

    def sent_since(self, to: str, since: datetime) -> list[str] | None:
        """Bodies of texts to ``to`` since ``since``; None when the gateway cannot say."""
        ...


class ConsoleGateway:
    """Keeps each text in ``sms_console_texts``, shown in the console marked as not sent."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def send(self, text: Text) -> Result:
        with self.ctx.db.transaction() as session:
            kept = session.execute(
                select(ConsoleText.id).where(ConsoleText.delivery_id == text.delivery_id)
            ).scalar_one_or_none()
            if kept is None:
                row = ConsoleText(
                    delivery_id=text.delivery_id,
                    alert_id=text.alert_id,
                    to=text.to,
                    body=text.body,
                    created_at=utcnow(),
                )
                session.add(row)
                session.flush()
                kept = row.id
        return Result(SENT, external_id=f"console-{kept}")

    def send_many(self, texts: Sequence[Text]) -> list[Result]:
        return [self.send(text) for text in texts]

    def sent_since(self, to: str, since: datetime) -> list[str] | None:
        with self.ctx.db.session() as session:
            rows = session.execute(
                select(ConsoleText.body).where(
                    ConsoleText.to == to, ConsoleText.created_at >= since
                )
            )
            return [body for (body,) in rows]


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class _Process:
    """What one process sends with: an event loop on a thread of its own, the transport and
    the SDK client on it. Made again after a fork (a Celery child), never shared across one."""

    def __init__(self, env: Mapping[str, str], api_base: str, pool: int, timeout: float) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.http = StreamClient(pool, timeout)
        self.client = _client(env, api_base, self.http)
        threading.Thread(target=self._serve, name="sms-gateway", daemon=True).start()

    def _serve(self) -> None:
        self.loop.run_forever()
        self.loop.close()  # Stopped by close(): its connections are closed already.

    def run(self, work: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def close(self) -> None:
        """Close the connections and stop the loop, without waiting: this may run on the
        loop's own thread (a finalizer called by the garbage collector there)."""
        if self.pid != os.getpid() or self.loop.is_closed():
            return

        async def shut() -> None:
            await self.http.close()
            self.loop.stop()

        def start() -> None:
            self.shutting = self.loop.create_task(shut())  # Held: a bare task may be collected.

        self.loop.call_soon_threadsafe(start)


class TwilioGateway:
    """A lone text (what the rate limiter releases, one grant at a time) goes out from the
    calling thread over the urllib3 pool: no hand-over to another thread, whose wake-up on a
    loaded machine lengthened each paced request and so lowered the paced rate (182-186/s
    against 191-192 at R=200, load 11-13). A sub-batch goes out on the event loop."""

    def __init__(self, ctx: Context, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.from_number = env.get("TWILIO_FROM_NUMBER", "")
        self.service_sid = env.get("TWILIO_MESSAGING_SERVICE_SID", "")
        if not (self.from_number or self.service_sid):
            raise ValueError("set TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        self.concurrency = max(1, ctx.settings.SMS_CONCURRENCY)
        self.timeout = transport.READ_SECONDS
        self.http = transport.PooledClient(self.concurrency, self.timeout)
        self.client = _client(env, ctx.settings.TWILIO_API_BASE, self.http)
        self._env = {k: env.get(k, "") for k in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")}
        self._api_base = ctx.settings.TWILIO_API_BASE
        self._lock = threading.Lock()
        self._process: _Process | None = None
        self._closing: weakref.finalize[Any, Any] | None = None

    def _here(self) -> _Process:
        with self._lock:
            if self._process is None or self._process.pid != os.getpid():
                if self._closing is not None:
                    self._closing.detach()  # The parent's loop: its thread did not fork.
                self._process = _Process(self._env, self._api_base, self.concurrency, self.timeout)
                # Its connections are closed when the gateway goes, or at exit.
                self._closing = weakref.finalize(self, self._process.close)
            return self._process

    def _sender(self) -> dict[str, str]:
        if self.service_sid:
            return {"messaging_service_sid": self.service_sid}
        return {"from_": self.from_number}

    def _create(self, text: Text) -> dict[str, Any]:
        return {
            "to": text.to,
            "body": text.body,
            "status_callback": text.status_callback,
            "validity_period": text.validity_seconds,
            **self._sender(),
        }

    def send(self, text: Text) -> Result:
        """One text, from the calling thread (safe from several threads at once)."""
        transport.ANSWER.set(None)
        try:
            message = self.client.messages.create(**self._create(text))
        except _NOT_TAKEN as exc:
            return self._failed(exc, text.to)
        return _taken(message)

    def send_many(self, texts: Sequence[Text]) -> list[Result]:
        """Every text of a sub-batch, up to ``concurrency`` requests in flight; a result per
        text, in order. Safe to call from several threads at once."""
        if len(texts) <= 1:
            return [self.send(text) for text in texts]
        here = self._here()
        return here.run(self._send_all(here, texts))

    async def _send_all(self, here: _Process, texts: Sequence[Text]) -> list[Result]:
        # ``concurrency`` senders take the texts in turn: one task each, not one per text
        # behind a semaphore.
        results: list[Result | None] = [None] * len(texts)
        turns = iter(range(len(texts)))

        async def sender() -> None:
            for i in turns:
                results[i] = await self._send_one(here, texts[i])

        await asyncio.gather(*(sender() for _ in range(min(self.concurrency, len(texts)))))
        return [r for r in results if r is not None]

    async def _send_one(self, here: _Process, text: Text) -> Result:
        transport.ANSWER.set(None)
        try:
            message = await here.client.messages.create_async(**self._create(text))
        except _NOT_TAKEN as exc:
            return self._failed(exc, text.to)
        return _taken(message)

    def _failed(self, exc: Exception, to: str) -> Result:
        """What a request that raised comes to, from either transport."""
        answer = transport.ANSWER.get()
        if isinstance(exc, TwilioRestException):
            return self._refused(exc, to, answer[1] if answer else None)
        if isinstance(exc, transport.NotSent):
            return Result(RETRY, error=f"connection: {exc}")
        if isinstance(exc, transport.NoAnswer):
            # A read timeout or a dropped connection: the request may have been taken.
            return Result(UNKNOWN, error=f"no answer: {exc}")
        return _garbage(answer[0] if answer else None, exc)

    def _refused(
        self, exc: TwilioRestException, to: str, headers: Mapping[str, str] | None
    ) -> Result:
        code = exc.code if isinstance(exc.code, int) else None
        # Twilio names the number in some refusals ("The 'To' number +1... is not valid"); the
        # error is kept on the delivery and in the audit chain, where numbers never go.
        message = _NUMBER.sub("[number]", str(exc.msg).replace(to, "[number]"))
        error = f"{exc.status} {code or ''} {message[:200]}".strip()
        if exc.status == 429:
            return Result(THROTTLED, error=error, retry_after=_retry_after(headers))
        if exc.status >= 500:
            return Result(RETRY, error=error, retry_after=_retry_after(headers))
        return Result(FAILED, error=error, code=code)

    def sent_since(self, to: str, since: datetime) -> list[str] | None:
        try:
            messages = self.client.messages.list(to=to, date_sent_after=since, limit=50)
        except (TwilioRestException, transport.TransportError, ValueError):
            return None
        return [str(m.body or "") for m in messages]


# What a create may raise short of a message: a refusal, no answer, garbage for an answer.
_NOT_TAKEN = (TwilioRestException, transport.TransportError, ValueError, KeyError, TypeError)


def _client(env: Mapping[str, str], api_base: str, http: Any) -> Client:
    # An explicit, non-empty environment: the SDK falls back to os.environ for an empty one,
    # where a stray TWILIO_REGION or TWILIO_EDGE would rewrite the host.
    client = Client(
        env.get("TWILIO_ACCOUNT_SID", ""),
        env.get("TWILIO_AUTH_TOKEN", ""),
        http_client=http,
        environment={"ALERTD_EXPLICIT": "1"},
    )
    if api_base:
        client.api.base_url = api_base.rstrip("/")
    return client


def _taken(message: Any) -> Result:
    sid = getattr(message, "sid", None)
    if not isinstance(sid, str) or not sid:
        return Result(UNKNOWN, error="answer without a message sid")
    return Result(SENT, external_id=sid)


def _garbage(status: int | None, exc: Exception) -> Result:
    """Garbage for an answer (HTML, empty, not JSON): retryable, never a crash. A 2xx with
    garbage could mean it was taken, so that one is unknown."""
    if status is not None and 200 <= status < 300:
        return Result(UNKNOWN, error=f"unreadable answer: {type(exc).__name__}")
    return Result(RETRY, error=f"unreadable answer ({status}): {type(exc).__name__}")


def make_gateway(ctx: Context) -> Gateway:
    if ctx.settings.SMS_BACKEND == "twilio":
        return TwilioGateway(ctx)
    if ctx.settings.SMS_BACKEND == "console":
        return ConsoleGateway(ctx)
    raise ValueError(
        f"ALERTD_SMS_BACKEND must be console or twilio, not {ctx.settings.SMS_BACKEND!r}"
    )


def validity_seconds(expires_at: datetime, now: datetime | None = None) -> int:
    """Seconds left before the alert expires, as Twilio's validity_period (1 to ten hours)."""
    left = int((expires_at - (now or utcnow())).total_seconds())
    return min(MAX_VALIDITY, left)
