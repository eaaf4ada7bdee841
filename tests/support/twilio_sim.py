"""A Twilio Messages API on loopback for tests and benchmarks.

Answers ``POST /2010-04-01/Accounts/<sid>/Messages.json`` with Twilio's JSON, and
``GET .../Messages.json?To=...&DateSent>=...`` with a page of what it took. A script per
destination number plays the error table (21610, 21211, 21614), ``429`` with ``Retry-After``,
``500``, garbage, a hang past the client's timeout, and a request read and then the connection
dropped (taken, never answered). Status callbacks are signed as Twilio signs them and may be sent
twice and out of order. Counts every request it took, per number. One event loop on a thread
of its own serves every connection, so its CPU per request stays small beside a benchmark's
workers on the same cores.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, formatdate
from typing import Any

from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "simulator-auth-token"
ERRORS = {
    21610: "Attempt to send to unsubscribed recipient",
    # As Twilio words it, naming the number.
    21211: "The 'To' number {to} is not a valid phone number.",
    21614: "'To' number is not a valid mobile number",
}


@dataclass
class Taken:
    sid: str
    to: str
    body: str
    sender: str
    at: datetime
    validity_period: int | None
    status_callback: str


@dataclass
class Simulator:
    """What the simulator took, and how it misbehaves. ``script[to]`` is a list of behaviours
    used up one request at a time: an int error code, "429", "500", "garbage", "drop", "hang"."""

    callbacks: bool = False
    # Where callbacks are posted: the app's real address when it differs from the public URL
    # they are signed for.
    callback_host: str = ""
    duplicate_callbacks: bool = False
    retry_after: int = 1
    hang_seconds: float = 15.0
    script: dict[str, list[Any]] = field(default_factory=dict)
    taken: list[Taken] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _sids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    url: str = ""

    def per_number(self) -> Counter[str]:
        with self.lock:
            return Counter(t.to for t in self.taken)

    def first_taken_at(self) -> float | None:
        with self.lock:
            return min((t.at.timestamp() for t in self.taken), default=None)

    def next_behaviour(self, to: str) -> Any:
        with self.lock:
            self.requests[to] += 1
            steps = self.script.get(to)
            return steps.pop(0) if steps else None

    def take(self, form: dict[str, str]) -> Taken:
        with self.lock:
            taken = Taken(
                sid=f"SM{next(self._sids):032x}",
                to=form.get("To", ""),
                body=form.get("Body", ""),
                sender=form.get("From") or form.get("MessagingServiceSid", ""),
                at=datetime.now(UTC),
                validity_period=int(form["ValidityPeriod"]) if "ValidityPeriod" in form else None,
                status_callback=form.get("StatusCallback", ""),
            )
            self.taken.append(taken)
            return taken


def message_json(t: Taken, status: str = "queued") -> dict[str, Any]:
    stamp = format_datetime(t.at)
    uri = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{t.sid}.json"
    return {
        "account_sid": ACCOUNT_SID,
        "api_version": "2010-04-01",
        "body": t.body,
        "date_created": stamp,
        "date_sent": stamp,
        "date_updated": stamp,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": t.sender if t.sender.startswith("+") else None,
        "messaging_service_sid": None if t.sender.startswith("+") else t.sender,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": t.sid,
        "status": status,
        "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
        "to": t.to,
        "uri": uri,
    }


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, params))


def post_signed(
    url: str, params: dict[str, str], *, host: str = "", token: str = AUTH_TOKEN
) -> int:
    """POST form ``params`` signed for ``url``, sent to ``host`` (scheme://host:port) if given."""
    target = url
    if host:
        parts = urllib.parse.urlsplit(url)
        target = host.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
    request = urllib.request.Request(  # noqa: S310 - loopback, built by the test
        target,
        data=urllib.parse.urlencode(params).encode(),
        headers={"X-Twilio-Signature": sign(url, params, token)},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


# Reasons for the status codes the simulator answers with.
_REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    404: "Not Found",
    411: "Length Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
}
# Longest request head taken; a longer one is refused and its connection closed.
_MAX_HEAD = 65536


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, parsed here on the server's event loop: one thread
    for every connection, not one each (a thread per connection took the GIL in turn with the
    benchmark's workers on two cores: 0.30-0.36 ms of CPU per request, against 0.05 here)."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.sim = server.sim
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.stopped = False  # Hanging, dropped or closing: nothing more is read or answered.
        self.hang: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        # A request cut short (a SIGKILLed client) is left unread: like any real server, act
        # on nothing. Taking the truncated form counted a message to a number cut short.
        self.stopped = True
        if self.hang is not None:
            self.hang.cancel()
        self.server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while not self.stopped:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > _MAX_HEAD:
                    self.close()
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            method, _, rest = lines[0].partition(" ")
            target, _, version = rest.partition(" ")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", ""):
                # Every client used with it sends a Content-Length.
                self.answer(411, {"code": 411, "message": "Content-Length required"})
                self.close()
                return
            length = int(headers.get("content-length") or "0")
            if len(self.buffer) < end + 4 + length:
                return  # The rest of the body has not come yet.
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            connection = headers.get("connection", "").lower()
            keep = "close" not in connection and (
                version != "HTTP/1.0" or "keep-alive" in connection
            )
            if method == "POST":
                self.post(target, body)
            elif method == "GET":
                self.get(target)
            else:
                self.error(501, 501, f"Unsupported method ({method!r})")
            if not keep:
                self.close()

    def close(self) -> None:
        self.stopped = True
        if self.transport is not None:
            self.transport.close()

    def answer(
        self,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
            f"Date: {_http_date()}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(data)}",
            *(f"{k}: {v}" for k, v in (headers or {}).items()),
            "",
            "",
        ]
        # One write for head and body: no Nagle wait for the client's delayed ACK between them.
        assert self.transport is not None
        self.transport.write("\r\n".join(head).encode("latin-1") + data)

    def error(self, status: int, code: int, message: str, **headers: str) -> None:
        body = {"code": code, "message": message, "more_info": "", "status": status}
        self.answer(status, body, headers)

    def post(self, target: str, raw: bytes) -> None:
        sim = self.sim
        form = dict(urllib.parse.parse_qsl(raw.decode()))
        if not urllib.parse.urlsplit(target).path.endswith("/Messages.json"):
            self.error(404, 20404, "not found")
            return
        to = form.get("To", "")
        if not to:
            self.error(400, 21604, "A 'To' phone number is required.")
            return
        step = sim.next_behaviour(to)
        if isinstance(step, int):
            self.error(400, step, ERRORS.get(step, "error").format(to=to))
        elif step == "429":
            self.error(429, 20429, "Too Many Requests", **{"Retry-After": str(sim.retry_after)})
        elif step == "500":
            self.error(500, 20500, "Internal Server Error")
        elif step == "garbage":
            # With its true length: one short left a byte that a strict parser (aiohttp's)
            # read as the next answer's status line.
            self.answer(502, b"<html>Bad Gateway</html>", content_type="text/html")
        elif step == "hang":
            # Nothing more is read or answered on this connection; it closes once the time
            # (longer than the client's timeout) has passed.
            self.stopped = True
            assert self.transport is not None
            self.transport.pause_reading()
            self.hang = asyncio.get_running_loop().call_later(
                sim.hang_seconds, self.transport.close
            )
        elif step == "drop":
            # Taken, then the connection dies before any answer.
            sim.take(form)
            self.close()
        else:
            taken = sim.take(form)
            self.answer(201, _created_json(taken))
            if sim.callbacks and taken.status_callback:
                threading.Thread(target=_callbacks, args=(sim, taken), daemon=True).start()

    def get(self, target: str) -> None:
        sim = self.sim
        parts = urllib.parse.urlsplit(target)
        query = dict(urllib.parse.parse_qsl(parts.query))
        to = query.get("To")
        after = query.get("DateSent>") or query.get("DateSent&gt;")
        since = _parse_time(after) if after else None
        with sim.lock:
            found = [
                t
                for t in sim.taken
                if (to is None or t.to == to) and (since is None or t.at >= since)
            ]
        page_size = int(query.get("PageSize", "50"))
        self.answer(
            200,
            {
                "messages": [message_json(t, "sent") for t in reversed(found)][:page_size],
                "end": min(len(found), page_size) - 1,
                "first_page_uri": parts.path,
                "next_page_uri": None,
                "page": 0,
                "page_size": page_size,
                "previous_page_uri": None,
                "start": 0,
                "uri": target,
            },
        )


def _created_json(t: Taken) -> bytes:
    """A create's answer: as message_json's for a queued message, which Twilio has not sent
    yet (no date_sent), made from a template of the parts every answer shares."""
    stamp = _rfc2822(t.at)
    by_number = t.sender.startswith("+")
    return _CREATED.format(
        body=json.dumps(t.body),
        stamp=stamp,
        sender=json.dumps(t.sender) if by_number else "null",
        service="null" if by_number else json.dumps(t.sender),
        sid=t.sid,
        to=json.dumps(t.to),
    ).encode()


_URI = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{{sid}}"
_CREATED = (
    f'{{{{"account_sid": "{ACCOUNT_SID}", "api_version": "2010-04-01", "body": {{body}}, '
    '"date_created": "{stamp}", "date_sent": null, "date_updated": "{stamp}", '
    '"direction": "outbound-api", "error_code": null, "error_message": null, '
    '"from": {sender}, "messaging_service_sid": {service}, "num_media": "0", '
    '"num_segments": "1", "price": null, "price_unit": "USD", "sid": "{sid}", '
    f'"status": "queued", "subresource_uris": {{{{"media": "{_URI}/Media.json"}}}}, '
    f'"to": {{to}}, "uri": "{_URI}.json"}}}}'
)


def _callbacks(sim: Simulator, taken: Taken) -> None:
    order = ["sent", "delivered"]
    if sim.duplicate_callbacks:
        # Twice, and the late "sent" after "delivered".
        order = ["delivered", "sent", "delivered", "queued"]
    for status in order:
        params = {"MessageSid": taken.sid, "MessageStatus": status, "To": taken.to}
        try:
            post_signed(taken.status_callback, params, host=sim.callback_host)
        except OSError:
            return


# Formatted once per second: the same text for every request within it.
_STAMPS: dict[str, tuple[int, str]] = {}


def _rfc2822(moment: datetime) -> str:
    second = int(moment.timestamp())
    cached = _STAMPS.get("rfc2822")
    if cached is None or cached[0] != second:
        cached = (second, format_datetime(moment.replace(microsecond=0)))
        _STAMPS["rfc2822"] = cached
    return cached[1]


def _http_date() -> str:
    second = int(time.time())
    cached = _STAMPS.get("http")
    if cached is None or cached[0] != second:
        cached = (second, formatdate(second, usegmt=True))
        _STAMPS["http"] = cached
    return cached[1]


def _parse_time(text: str) -> datetime:
    if len(text) == 10:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _Server:
    """The event loop on a thread of its own, listening on a free loopback port."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.connections: set[_Connection] = set()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            self.loop.create_server(
                lambda: _Connection(self), "127.0.0.1", 0, backlog=256, reuse_address=True
            ),
            self.loop,
        ).result()
        self.port = int(self.server.sockets[0].getsockname()[1])

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            for connection in list(self.connections):
                connection.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextmanager
def running(sim: Simulator | None = None) -> Iterator[Simulator]:
    sim = sim or Simulator()
    server = _Server(sim)
    sim.url = f"http://127.0.0.1:{server.port}"
    try:
        yield sim
    finally:
        server.close()
