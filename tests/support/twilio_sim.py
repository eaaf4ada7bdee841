"""A Twilio Messages API on loopback for tests and benchmarks.

Answers ``POST /2010-04-01/Accounts/<sid>/Messages.json`` with Twilio's JSON, and
``GET .../Messages.json?To=...&DateSent>=...`` with a page of what it took. A script per
destination number plays the error table (21610, 21211, 21614), ``429`` with ``Retry-After``,
``500``, garbage, a hang past the client's timeout, and a request read and then the connection
dropped (taken, never answered). Status callbacks are signed as Twilio signs them and may be sent
twice and out of order. Threaded, and counts every request it took, per number.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm holds the
        # body for the client's delayed ACK (40 ms a request on Linux).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: int, message: str, **headers: str) -> None:
        body = {"code": code, "message": message, "more_info": "", "status": status}
        self._answer(status, body, headers)

    def do_POST(self) -> None:
        sim = self.server.sim
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if len(raw) < length:
            # The client died mid-request (a SIGKILLed worker): like any real server, act on
            # nothing. Taking the truncated form counted a message to a number cut short.
            self.close_connection = True
            return
        form = dict(urllib.parse.parse_qsl(raw.decode()))
        if not self.path.endswith("/Messages.json"):
            self._error(404, 20404, "not found")
            return
        to = form.get("To", "")
        if not to:
            self._error(400, 21604, "A 'To' phone number is required.")
            return
        step = sim.next_behaviour(to)
        if isinstance(step, int):
            self._error(400, step, ERRORS.get(step, "error").format(to=to))
        elif step == "429":
            self._error(429, 20429, "Too Many Requests", **{"Retry-After": str(sim.retry_after)})
        elif step == "500":
            self._error(500, 20500, "Internal Server Error")
        elif step == "garbage":
            page = b"<html>Bad Gateway</html>"
            self.send_response(502)
            self.send_header("Content-Type", "text/html")
            # Its true length: one short left a byte that a strict parser (aiohttp's) read as
            # the next answer's status line.
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
        elif step == "hang":
            time.sleep(sim.hang_seconds)
            self.close_connection = True
        elif step == "drop":
            # Taken, then the connection dies before any answer.
            sim.take(form)
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        else:
            taken = sim.take(form)
            self._answer(201, message_json(taken))
            if sim.callbacks and taken.status_callback:
                threading.Thread(target=self._callbacks, args=(taken,), daemon=True).start()

    def _callbacks(self, taken: Taken) -> None:
        sim = self.server.sim
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

    def do_GET(self) -> None:
        sim = self.server.sim
        parts = urllib.parse.urlsplit(self.path)
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
        self._answer(
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
                "uri": self.path,
            },
        )


def _parse_time(text: str) -> datetime:
    if len(text) == 10:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, sim: Simulator) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.sim = sim


@contextmanager
def running(sim: Simulator | None = None) -> Iterator[Simulator]:
    sim = sim or Simulator()
    server = _Server(sim)
    sim.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sim
    finally:
        server.shutdown()
        server.server_close()
