"""Where texts go: the ``console`` backend keeps them in a table (not sent), the ``twilio``
backend sends them with the official SDK. Each answer is classified here, once: retry only on
429 (throttled, honouring Retry-After), 5xx and connection errors that happened before the
request left; a request that left and got no answer is unknown (Twilio has no idempotency key);
21610 means the person texted STOP, 21211/21614 that the number cannot take texts."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import os
import re
import threading
import urllib.parse
import urllib.request
import weakref
from collections.abc import Coroutine, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

import aiohttp
import urllib3
from sqlalchemy import select
from twilio.base.exceptions import TwilioRestException
from twilio.http import AsyncHttpClient, HttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from alertd.channels.sms.models import ConsoleText
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
# Seconds to connect, and again to read the answer (the SDK takes one number for both).
READ_SECONDS = 10.0

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


# The twilio package is untyped (see the mypy override in pyproject.toml).
class _PooledClient(HttpClient):  # type: ignore[misc]
    """The transport under the official SDK (its documented ``http_client`` hook): the SDK
    still builds every request and reads every answer; this carries them over one urllib3
    connection pool per process, as wide as our concurrency, with connections kept alive
    between sub-batches and no retry of its own.

    Not the SDK's own ``TwilioHttpClient``, for two things measured or found wrong with it:
    it keeps the last answer on the client and returns it from there, so two threads at once
    could each read the other's answer (a 429 taken for a 201); and through ``requests`` it
    re-reads every proxy variable of the environment per request. Together with ``requests``'
    own work that was 0.69 ms of CPU per text against 0.3 ms here, on this machine. Proxies are
    read from the environment once. Each thread's last answer is kept in ``local`` so a 429's
    Retry-After can be read (the SDK's exception drops the headers)."""

    def __init__(self, pool: int) -> None:
        super().__init__(logger=logging.getLogger(__name__), is_async=False, timeout=READ_SECONDS)
        self.local = threading.local()
        self._pool = pool
        self._managers: dict[str, urllib3.PoolManager] = {}
        self._lock = threading.Lock()

    def _manager(self, url: str) -> urllib3.PoolManager:
        parts = urllib.parse.urlsplit(url)
        with self._lock:
            if parts.scheme not in self._managers:
                options: dict[str, Any] = {
                    "num_pools": 4,
                    "maxsize": self._pool,
                    "retries": False,
                    "timeout": urllib3.Timeout(connect=READ_SECONDS, read=READ_SECONDS),
                }
                proxy = _env_proxy(parts)
                self._managers[parts.scheme] = (
                    urllib3.ProxyManager(proxy, **options)
                    if proxy
                    else urllib3.PoolManager(**options)
                )
            return self._managers[parts.scheme]

    def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        url, body, sending = _prepare(url, params, data, headers, auth)
        # The SDK names no timeout of its own: urllib3 takes None for no timeout at all, so a
        # hung gateway held the request for as long as it kept the connection open.
        wait = timeout or self.timeout
        answer = self._manager(url).request(
            method.upper(),
            url,
            body=body,
            headers=sending,
            redirect=allow_redirects,
            timeout=urllib3.Timeout(connect=wait, read=wait),
        )
        self.local.headers, self.local.status = answer.headers, answer.status
        return TwilioResponse(
            int(answer.status), answer.data.decode("utf-8", "replace"), answer.headers
        )


class _Transport(AsyncHttpClient):  # type: ignore[misc]
    """The transport under the official SDK (its documented async ``http_client`` hook): the
    SDK still builds every request and reads every answer (``messages.create_async``); this
    carries them over one aiohttp connection pool per process, as wide as our concurrency,
    connections kept alive between sub-batches, no retry of its own.

    Used for a sub-batch of several texts. Measured against the SDK over the urllib3 pool on
    sixteen threads (the transport before), sub-batches of 25 to the simulator on this machine:
    0.24 ms of client CPU per text against 0.42 (medians of three interleaved runs, load 16).
    aiohttp parses answers in C and one event loop replaces sixteen threads taking the GIL in
    turn. The SDK's own ``AsyncTwilioHttpClient``
    keeps the last answer on itself; here each request's status and headers go to a context
    variable of its own task, so a 429's Retry-After is read from its own answer (the SDK's
    exception drops the headers). Proxies are read from the environment once per host."""

    def __init__(self, pool: int) -> None:
        super().__init__(logger=logging.getLogger(__name__), is_async=True, timeout=READ_SECONDS)
        self._pool = pool
        self._proxies: dict[tuple[str, str], str | None] = {}
        # Made once per value: an attrs class whose construction cost 5% of a send.
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self.session: aiohttp.ClientSession | None = None

    def _proxy(self, parts: urllib.parse.SplitResult) -> str | None:
        key = (parts.scheme, parts.hostname or "")
        if key not in self._proxies:
            self._proxies[key] = _env_proxy(parts)
        return self._proxies[key]

    async def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        if self.session is None:
            # Made inside the loop that uses it, as aiohttp requires.
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=READ_SECONDS, sock_read=READ_SECONDS
                ),
            )
        url, body, sending = _prepare(url, params, data, headers, auth)
        # The SDK names no timeout of its own, and aiohttp takes None for no timeout at all:
        # a hung gateway held the sub-batch for as long as it kept the connection open.
        wait = timeout or self.timeout
        limits = self._timeouts.get(wait)
        if limits is None:
            limits = aiohttp.ClientTimeout(total=None, sock_connect=wait, sock_read=wait)
            self._timeouts[wait] = limits
        async with self.session.request(
            method.upper(),
            url,
            data=body,
            headers=sending,
            allow_redirects=allow_redirects,
            proxy=self._proxy(urllib.parse.urlsplit(url)),
            timeout=limits,
        ) as answer:
            _ANSWER.set((answer.status, answer.headers))
            text = (await answer.read()).decode("utf-8", "replace")
        return TwilioResponse(int(answer.status), text, answer.headers)


# The status and headers of the answer this task last read (set by _Transport.request).
_ANSWER: ContextVar[tuple[int, Mapping[str, str]] | None] = ContextVar("_ANSWER", default=None)


def _env_proxy(parts: urllib.parse.SplitResult) -> str | None:
    """The proxy the environment names for this URL's scheme, unless its host bypasses it."""
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def _prepare(
    url: str,
    params: Mapping[str, Any] | None,
    data: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None,
    auth: tuple[str, str] | None,
) -> tuple[str, bytes | None, dict[str, str]]:
    """The URL, body and headers of an SDK request, as both transports send it: the query
    string appended, the form (or JSON) encoded, HTTP Basic authentication."""
    sending = dict(headers or {})
    if params:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params, doseq=True)
    body: bytes | None = None
    if data is not None:
        if sending.get("Content-Type", "").endswith("json"):
            body = json.dumps(data).encode()
        else:
            sending.setdefault("Content-Type", "application/x-www-form-urlencoded")
            body = _form(data).encode()
    if auth:
        sending["Authorization"] = _basic(auth[0], auth[1])
    return url, body, sending


@functools.lru_cache(maxsize=8)
def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


# Form values already quoted: a sub-batch's texts share their body, sender and validity, and
# quoting a 160-character body byte by byte was most of the encoding's cost. Emptied when
# full (the numbers and callback URLs, one per text, fill it).
_QUOTED: dict[str, str] = {}
_QUOTED_MAX = 4096


def _quoted(value: str) -> str:
    quoted = _QUOTED.get(value)
    if quoted is None:
        if len(_QUOTED) >= _QUOTED_MAX:
            _QUOTED.clear()
        quoted = _QUOTED[value] = urllib.parse.quote_plus(value)
    return quoted


def _form(data: Mapping[str, Any]) -> str:
    """``urllib.parse.urlencode(data, doseq=True)``, with strings and numbers quoted once."""
    pairs = []
    for key, value in data.items():
        if isinstance(key, str) and isinstance(value, (str, int, float)):
            pairs.append(f"{_quoted(key)}={_quoted(str(value))}")
        else:
            pairs.append(urllib.parse.urlencode({key: value}, doseq=True))
    return "&".join(pair for pair in pairs if pair)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class _Process:
    """What one process sends with: an event loop on a thread of its own, the transport and
    the SDK client on it. Made again after a fork (a Celery child), never shared across one."""

    def __init__(self, env: Mapping[str, str], api_base: str, pool: int) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.http = _Transport(pool)
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
            if self.http.session is not None:
                await self.http.session.close()
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
        self.http = _PooledClient(self.concurrency)
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
                self._process = _Process(self._env, self._api_base, self.concurrency)
                # Its connections are closed when the gateway goes, or at exit.
                self._closing = weakref.finalize(self, self._process.close)
            return self._process

    def _sender(self) -> dict[str, str]:
        if self.service_sid:
            return {"messaging_service_sid": self.service_sid}
        return {"from_": self.from_number}

    def send(self, text: Text) -> Result:
        """One text, from the calling thread (safe from several threads at once)."""
        self.http.local.headers, self.http.local.status = None, None
        try:
            message = self.client.messages.create(
                to=text.to,
                body=text.body,
                status_callback=text.status_callback,
                validity_period=text.validity_seconds,
                **self._sender(),
            )
        except TwilioRestException as exc:
            return self._refused(exc, text.to, self.http.local.headers)
        except (
            urllib3.exceptions.ConnectTimeoutError,  # NewConnectionError too: refused, no DNS
            urllib3.exceptions.SSLError,
            urllib3.exceptions.ProxyError,
        ) as exc:
            # Nothing of the request left.
            return Result(RETRY, error=f"connection: {type(exc).__name__}")
        except urllib3.exceptions.HTTPError as exc:
            # A read timeout or a dropped connection: the request may have been taken.
            return Result(UNKNOWN, error=f"no answer: {type(exc).__name__}")
        except (ValueError, KeyError, TypeError) as exc:
            return _garbage(getattr(self.http.local, "status", None), exc)
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
        _ANSWER.set(None)
        try:
            message = await here.client.messages.create_async(
                to=text.to,
                body=text.body,
                status_callback=text.status_callback,
                validity_period=text.validity_seconds,
                **self._sender(),
            )
        except TwilioRestException as exc:
            answer = _ANSWER.get()
            return self._refused(exc, text.to, answer[1] if answer else None)
        except (
            aiohttp.ClientConnectorError,  # refused, no DNS, TLS or proxy refusal before sending
            aiohttp.ConnectionTimeoutError,
        ) as exc:
            # Nothing of the request left.
            return Result(RETRY, error=f"connection: {type(exc).__name__}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            # A read timeout or a dropped connection: the request may have been taken.
            return Result(UNKNOWN, error=f"no answer: {type(exc).__name__}")
        except (ValueError, KeyError, TypeError) as exc:
            answer = _ANSWER.get()
            return _garbage(answer[0] if answer else None, exc)
        return _taken(message)

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
        except (TwilioRestException, urllib3.exceptions.HTTPError, ValueError):
            return None
        return [str(m.body or "") for m in messages]


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
