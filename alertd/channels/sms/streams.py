"""The transport under the SDK's async client (its documented ``http_client`` hook), for a
sub-batch of texts on the gateway's event loop: HTTP/1.1 over asyncio streams, connections
kept alive per host, as many as our concurrency, no retry of its own.

Written here rather than taken from aiohttp (the transport before), for CPU: on two cores the
fan-out is bound by the CPU each text costs, and aiohttp's request machinery (a timer per
request, tracing hooks, cookie jar, multidicts, a general connector) was most of the gateway
thread's share. Twilio's API needs little of HTTP: a request with a Content-Length, an answer
with a Content-Length (a chunked one is read too, and one that ends with the connection),
keep-alive. Side by side in one run, 20,000-recipient fan-outs with two workers on two
cores: 0.60-0.65 ms of worker CPU per text against 0.88-0.97 over aiohttp, and 1,653-1,785
texts/s against 1,254-1,430 (docs/benchmarks.md, SMS).

Through a proxy from the environment, each request goes to the urllib3 transport on a thread
of its own (proxies, CONNECT tunnels and their errors are urllib3's business, not ours)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import ssl
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from twilio.http import AsyncHttpClient
from twilio.http.response import Response as TwilioResponse

from alertd.channels.sms.transport import (
    ANSWER,
    NoAnswer,
    NotSent,
    PooledClient,
    env_proxy,
    failure,
    prepare,
)

# An idle connection older than this is closed rather than used: a server may have dropped
# it meanwhile, and a request written into a connection the server is closing gets no answer
# (an unknown outcome). aiohttp's default, and under the idle timeouts of common balancers.
KEEP_IDLE_SECONDS = 15.0
# The longest answer head read; a longer one is no answer.
_MAX_HEAD = 65536
_NO_BODY = frozenset({204, 304})

_Origin = tuple[str, str, int]


class _Connection:
    __slots__ = ("expired", "idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0
        self.expired = False  # Cut off by the watch: no answer in time.

    def usable(self, now: float) -> bool:
        # A server that closed the connection while it sat idle has sent its FIN by now.
        return (
            now - self.idle_since < KEEP_IDLE_SECONDS
            and not self.reader.at_eof()
            and not self.writer.is_closing()
        )

    def close(self) -> None:
        self.writer.close()


class StreamClient(AsyncHttpClient):  # type: ignore[misc]  # The twilio package is untyped.
    """Each request's status and headers go to ``ANSWER`` in the calling task."""

    def __init__(self, pool: int, timeout: float) -> None:
        super().__init__(logger=logging.getLogger(__name__), is_async=True, timeout=timeout)
        self._idle: dict[_Origin, list[_Connection]] = {}
        # At most ``pool`` connections open at once, however many sub-batches share the loop.
        self._slots = asyncio.Semaphore(pool)
        self._proxies: dict[tuple[str, str], str | None] = {}
        self._proxied = PooledClient(pool, timeout)
        self._threads: concurrent.futures.ThreadPoolExecutor | None = None
        self._pool = pool
        self._tls: ssl.SSLContext | None = None
        # Connections awaiting an answer, and when each stops waiting: one watch for all of
        # them instead of a timer per request (a timer's set-up and cancel were a tenth of
        # this transport's CPU per text).
        self._waiting: dict[_Connection, float] = {}
        self._watch: asyncio.TimerHandle | None = None

    def _proxy(self, parts: urllib.parse.SplitResult) -> str | None:
        key = (parts.scheme, parts.hostname or "")
        if key not in self._proxies:
            self._proxies[key] = env_proxy(parts)
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
        parts = urllib.parse.urlsplit(url)
        if self._proxy(parts):
            return await self._through_proxy(
                method, url, params, data, headers, auth, timeout, allow_redirects
            )
        url, body, sending = prepare(url, params, data, headers, auth)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise NotSent(f"cannot send to {url!r}")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        origin = (parts.scheme, parts.hostname, port)
        host = parts.netloc.rpartition("@")[2]
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"{method.upper()} {target} HTTP/1.1", f"Host: {host}"]
        lines.extend(f"{name}: {value}" for name, value in sending.items())
        if body is not None or method.upper() in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        # The SDK names no timeout of its own: without one a hung gateway held the sub-batch
        # for as long as it kept the connection open.
        wait = timeout or self.timeout
        async with self._slots:
            connection = await self._connection(origin, wait)
            try:
                status, answer, text, keep = await self._exchange(connection, request, method, wait)
            except BaseException:
                # Cut off mid-answer (a timeout, a cancel): what is left on it is unreadable.
                connection.close()
                raise
            if keep:
                connection.idle_since = time.monotonic()
                self._idle.setdefault(origin, []).append(connection)
            else:
                connection.close()
        ANSWER.set((status, answer))
        return TwilioResponse(status, text, answer)

    async def _connection(self, origin: _Origin, wait: float) -> _Connection:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.usable(now):
                return connection
            connection.close()
        scheme, hostname, port = origin
        tls = self._context() if scheme == "https" else None
        try:
            async with asyncio.timeout(wait):
                reader, writer = await asyncio.open_connection(
                    hostname, port, ssl=tls, limit=_MAX_HEAD
                )
        except (OSError, TimeoutError) as exc:  # ssl.SSLError and socket.gaierror are OSErrors
            raise NotSent(failure(exc)) from exc
        return _Connection(reader, writer)

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    async def _exchange(
        self, connection: _Connection, request: bytes, method: str, wait: float
    ) -> tuple[int, dict[str, str], str, bool]:
        """Write the request and read its answer: (status, headers, body, keep alive)."""
        reader = connection.reader
        self._expect(connection, wait)
        try:
            connection.writer.write(request)
            status, version, answer = _head(await reader.readuntil(b"\r\n\r\n"))
            while 100 <= status < 200:  # An interim answer (100 Continue): the real follows.
                status, version, answer = _head(await reader.readuntil(b"\r\n\r\n"))
            keep = _keeps_alive(version, answer)
            if method.upper() == "HEAD" or status in _NO_BODY:
                data = b""
            elif "chunked" in answer.get("transfer-encoding", "").lower():
                data = await _chunked(reader)
            elif "content-length" in answer:
                data = await reader.readexactly(int(answer["content-length"]))
            else:
                data, keep = await reader.read(), False  # Until the server closes.
        except (OSError, EOFError, ValueError, asyncio.LimitOverrunError) as exc:
            # IncompleteReadError is an EOFError: the server closed before a whole answer, or
            # the watch cut the connection off.
            if connection.expired:
                raise NoAnswer(f"TimeoutError: no answer in {wait:g} s") from exc
            raise NoAnswer(failure(exc)) from exc
        finally:
            self._waiting.pop(connection, None)
        return status, answer, data.decode("utf-8", "replace"), keep

    def _expect(self, connection: _Connection, wait: float) -> None:
        """Have the watch cut ``connection`` off if no whole answer came within ``wait``."""
        self._waiting[connection] = time.monotonic() + wait
        if self._watch is None:
            # Checked a few times per timeout: a hung request ends at most a quarter late.
            every = min(1.0, wait / 4)
            self._watch = asyncio.get_running_loop().call_later(every, self._check, every)

    def _check(self, every: float) -> None:
        now = time.monotonic()
        for connection, deadline in list(self._waiting.items()):
            if deadline <= now:
                connection.expired = True
                # The read waiting on it ends at once (an end of file), and so does the request.
                connection.writer.transport.abort()
        self._watch = (
            asyncio.get_running_loop().call_later(every, self._check, every)
            if self._waiting
            else None
        )

    async def _through_proxy(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        data: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        auth: tuple[str, str] | None,
        timeout: float | None,
        allow_redirects: bool,
    ) -> TwilioResponse:
        if self._threads is None:
            self._threads = concurrent.futures.ThreadPoolExecutor(
                self._pool, thread_name_prefix="sms-proxy"
            )
        answer: TwilioResponse = await asyncio.get_running_loop().run_in_executor(
            self._threads,
            lambda: self._proxied.request(
                method, url, params, data, headers, auth, timeout, allow_redirects
            ),
        )
        # Set in the executor's thread, not in this task: set here again.
        ANSWER.set((answer.status_code, answer.headers))
        return answer

    async def close(self) -> None:
        """Close every idle connection (a request in flight closes its own)."""
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        idle = [c for connections in self._idle.values() for c in connections]
        self._idle.clear()
        for connection in idle:
            connection.close()
        # Until each socket is closed: the loop may stop right after this.
        await asyncio.gather(*(c.writer.wait_closed() for c in idle), return_exceptions=True)
        if self._threads is not None:
            self._threads.shutdown(wait=False)


def _head(raw: bytes) -> tuple[int, str, dict[str, str]]:
    """Status, HTTP version and headers (names in lower case) of an answer's head; ValueError
    when it is not HTTP."""
    lines = raw.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError(f"not an HTTP/1 answer: {lines[0][:80]!r}")
    status = int(rest[:3])
    answer: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, colon, value = line.partition(":")
            if not colon:
                raise ValueError(f"not a header: {line[:80]!r}")
            answer[name.strip().lower()] = value.strip()
    return status, version, answer


def _keeps_alive(version: str, answer: Mapping[str, str]) -> bool:
    connection = answer.get("connection", "").lower()
    if version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # Trailers, then a blank line.
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise ValueError("a chunk without its CRLF")
