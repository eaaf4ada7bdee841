"""Real HTTP receivers on loopback for webhook tests: a Standard Webhooks receiver that verifies
every request with the ``standardwebhooks`` library, a Mastodon API simulator and a Telegram Bot
API simulator. Each runs a threading HTTP server in the test process; workers in other processes
reach it over the network like any partner."""

from __future__ import annotations

import itertools
import json
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

# An answer: status, headers, body; or HANG to never answer, or TRICKLE to send a body forever.
Reply = tuple[int, dict[str, str], bytes]
HANG: Reply = (0, {}, b"hang")
TRICKLE: Reply = (0, {}, b"trickle")


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    verified: bool | None = None
    payload: Any = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Hanging handlers must not keep the test process alive.
    block_on_close = False
    # Many endpoints may connect at once (the fan-out benchmark); the default backlog of 5
    # would drop connections and add the client's SYN retransmit delay to the measurement.
    request_queue_size = 512


class Receiver:
    """Records every request and answers what ``respond`` says (200 by default)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.seen: list[Seen] = []
        # With TLS, the server name each client asked for (SNI).
        self.server_names: list[str | None] = []
        self.lock = threading.Lock()
        self.respond: Callable[[Seen], Reply] = lambda _seen: (200, {}, b"ok")
        self.stopping = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(self.command, self.path, dict(self.headers), body, time.time())
                reply = receiver.handle(seen)
                with receiver.lock:
                    receiver.seen.append(seen)
                if reply is HANG:
                    receiver.stopping.wait(60)
                    return
                if reply is TRICKLE:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    while not receiver.stopping.is_set():
                        try:
                            self.wfile.write(b"x" * 65536)
                            self.wfile.flush()
                        except OSError:
                            return
                    return
                status, headers, data = reply
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_PUT = do_GET = _handle  # noqa: N815 - http.server's naming

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.scheme = "http"
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def handle(self, seen: Seen) -> Reply:
        return self.respond(seen)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def requests(self) -> list[Seen]:
        with self.lock:
            return list(self.seen)


class StandardReceiver(Receiver):
    """Verifies each request as a partner would, with the ``standardwebhooks`` library."""

    def __init__(self, secret: str = "") -> None:
        super().__init__()
        self.secret = secret

    def handle(self, seen: Seen) -> Reply:
        try:
            seen.payload = Webhook(self.secret).verify(seen.body, seen.headers)
            seen.verified = True
        except WebhookVerificationError:
            seen.verified = False
            return (401, {}, b"bad signature")
        return self.respond(seen)


class MastodonSimulator(Receiver):
    """The parts of the Mastodon API the channel uses, with its idempotency: a second
    ``POST /api/v1/statuses`` with the same ``Idempotency-Key`` returns the first status."""

    TOKEN = "mastodon-good-token"

    def __init__(self) -> None:
        super().__init__()
        self.ids = itertools.count(1000)
        self.statuses: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}
        self.edits: list[tuple[str, str]] = []
        self.media: dict[str, str] = {}

    def handle(self, seen: Seen) -> Reply:
        if seen.headers.get("Authorization") != f"Bearer {self.TOKEN}":
            return _json(401, {"error": "The access token is invalid"})
        override = self.respond(seen)
        if override[0] != 200:
            return override
        if seen.method == "POST" and seen.path == "/api/v2/media":
            media_id = str(next(self.ids))
            match = re.search(rb'name="description"\r\n\r\n(.*?)\r\n--', seen.body, re.S)
            self.media[media_id] = match.group(1).decode() if match else ""
            return _json(200, {"id": media_id, "type": "image"})
        if seen.method == "POST" and seen.path == "/api/v1/statuses":
            data = json.loads(seen.body)
            key = seen.headers.get("Idempotency-Key", "")
            with self.lock:
                if key and key in self.by_key:
                    return _json(200, self.statuses[self.by_key[key]])
                status_id = str(next(self.ids))
                status = {
                    "id": status_id,
                    "content": data["status"],
                    **data,
                    "key": key,
                    "posted_media": list(data.get("media_ids") or []),
                }
                self.statuses[status_id] = status
                if key:
                    self.by_key[key] = status_id
            return _json(200, status)
        edit = re.fullmatch(r"/api/v1/statuses/(\d+)", seen.path)
        if seen.method == "PUT" and edit:
            status_id = edit.group(1)
            if status_id not in self.statuses:
                return _json(404, {"error": "Record not found"})
            text = json.loads(seen.body)["status"]
            with self.lock:
                self.statuses[status_id]["content"] = text
                self.statuses[status_id]["media_ids"] = []
                self.edits.append((status_id, text))
            return _json(200, self.statuses[status_id])
        return _json(404, {"error": "not found"})


class TelegramSimulator(Receiver):
    """The Bot API methods the channel uses: sendPhoto, sendMessage, editMessageCaption and
    editMessageText, answering as Telegram does (``{"ok": ..., "result": ...}``)."""

    TOKEN = "123456:telegram-good-token"

    def __init__(self) -> None:
        super().__init__()
        self.ids = itertools.count(1)
        self.messages: dict[int, dict[str, Any]] = {}
        self.edits: list[tuple[int, str]] = []

    def handle(self, seen: Seen) -> Reply:
        match = re.fullmatch(r"/bot([^/]+)/(\w+)", seen.path)
        if match is None:
            return _json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        token, method = match.groups()
        if token != self.TOKEN:
            return _json(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        override = self.respond(seen)
        if override[0] != 200:
            return override
        fields = _fields(seen)
        with self.lock:
            if method in ("sendPhoto", "sendMessage"):
                message_id = next(self.ids)
                self.messages[message_id] = {
                    "method": method,
                    "chat_id": fields.get("chat_id"),
                    "text": fields.get("caption") or fields.get("text"),
                    "reply_to": fields.get("reply_to_message_id"),
                    "photo": "photo" in fields,
                }
                return _json(200, {"ok": True, "result": {"message_id": message_id}})
            if method in ("editMessageCaption", "editMessageText"):
                message_id = int(fields["message_id"])
                if message_id not in self.messages:
                    return _json(400, {"ok": False, "error_code": 400, "description": "no message"})
                text = str(fields.get("caption") or fields.get("text"))
                self.messages[message_id]["text"] = text
                self.edits.append((message_id, text))
                return _json(200, {"ok": True, "result": {"message_id": message_id}})
        return _json(404, {"ok": False, "error_code": 404, "description": "Not Found"})


def _json(status: int, data: Any) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(data).encode()


def _fields(seen: Seen) -> dict[str, Any]:
    content_type = seen.headers.get("Content-Type", "")
    if content_type.startswith("application/json"):
        data: dict[str, Any] = json.loads(seen.body)
        return data
    fields: dict[str, Any] = {}
    for part in seen.body.split(b"--" + content_type.split("boundary=")[-1].encode()):
        head, _, value = part.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]+)"', head)
        if name:
            fields[name.group(1).decode()] = value.removesuffix(b"\r\n").decode("utf-8", "replace")
    return fields


R = TypeVar("R", bound=Receiver)


@contextmanager
def running(receiver: R) -> Iterator[R]:
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


@dataclass
class Script:
    """Answers in order, then the last one forever: e.g. 500, 500, 200."""

    replies: list[Reply]
    calls: int = field(default=0)

    def __call__(self, _seen: Seen) -> Reply:
        reply = self.replies[min(self.calls, len(self.replies) - 1)]
        self.calls += 1
        return reply
