"""The gateway's HTTP transports against real loopback servers that answer as the simulator
does not: chunked, ``Connection: close``, idle connections closed by the server, answers that
are not HTTP, refused connections, TLS with a trusted and an untrusted certificate, and a
forward proxy named by the environment."""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from alertd.channels.sms import gateway as gw
from alertd.context import Context
from tests.support import twilio_sim
from tests.support.tls import server_context

TWILIO = {
    "TWILIO_ACCOUNT_SID": twilio_sim.ACCOUNT_SID,
    "TWILIO_AUTH_TOKEN": twilio_sim.AUTH_TOKEN,
    "TWILIO_FROM_NUMBER": "+15005550006",
}
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy")

Handle = Callable[[socket.socket], None]


class Server:
    """A loopback server, a thread per connection, each handled by ``handle``."""

    def __init__(self, handle: Handle, tls: ssl.SSLContext | None = None) -> None:
        self.handle = handle
        self.tls = tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.connections = 0
        self.requests: list[bytes] = []
        self.threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return  # Closed.
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        with closing(sock):
            if self.tls is not None:
                try:
                    sock = self.tls.wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # The client refused the certificate.
            with closing(sock):
                self.handle(sock)

    def read_request(self, sock: socket.socket) -> bool:
        """Read one whole request; False when the client closed the connection."""
        data = b""
        while b"\r\n\r\n" not in data:
            part = sock.recv(65536)
            if not part:
                return False
            data += part
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            body += sock.recv(65536)
        self.requests.append(head)
        return True

    def close(self) -> None:
        self.listener.close()
        for thread in self.threads:
            thread.join(5)


@contextmanager
def serving(
    handle: Callable[[Server, socket.socket], None], **options: ssl.SSLContext
) -> Iterator[Server]:
    server = Server(lambda sock: handle(server, sock), **options)
    try:
        yield server
    finally:
        server.close()


def created(sid: str) -> bytes:
    return json.dumps({"sid": sid, "status": "queued", "body": "x"}).encode()


def answer(status: int, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status} Whatever", *headers, "", ""]
    return "\r\n".join(head).encode() + body


def gateway(ctx: Context, url: str, concurrency: int = 1) -> gw.TwilioGateway:
    ctx.settings = ctx.settings.with_overrides(
        SMS_BACKEND="twilio", TWILIO_API_BASE=url, SMS_CONCURRENCY=concurrency
    )
    return gw.TwilioGateway(ctx, environ=TWILIO)


def texts(n: int, start: int = 0) -> list[gw.Text]:
    return [
        gw.Text(i, 1, f"+1415555{i:04d}", "x", "http://a.test/s", 600)
        for i in range(start, start + n)
    ]


@pytest.fixture(autouse=True)
def no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_a_chunked_answer_is_read_whole_on_a_kept_alive_connection(ctx: Context) -> None:
    def handle(server: Server, sock: socket.socket) -> None:
        n = 0
        while server.read_request(sock):
            n += 1
            body = created(f"SM{n:032d}")
            chunks = [body[:7], body[7:20], body[20:]]
            framed = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks)
            sock.sendall(
                answer(201, framed + b"0\r\nX-Trailer: 1\r\n\r\n", "Transfer-Encoding: chunked")
            )

    with serving(handle) as server:
        results = gateway(ctx, f"http://127.0.0.1:{server.port}").send_many(texts(3))
    assert [(r.outcome, r.external_id) for r in results] == [
        (gw.SENT, f"SM{n:032d}") for n in (1, 2, 3)
    ]
    assert server.connections == 1


def test_an_answer_that_closes_the_connection_is_not_reused(ctx: Context) -> None:
    def handle(server: Server, sock: socket.socket) -> None:
        if server.read_request(sock):
            body = created(f"SM{server.connections:032d}")
            sock.sendall(answer(201, body, f"Content-Length: {len(body)}", "Connection: close"))

    with serving(handle) as server:
        results = gateway(ctx, f"http://127.0.0.1:{server.port}").send_many(texts(3))
    assert [r.outcome for r in results] == [gw.SENT] * 3
    assert server.connections == 3


def test_an_answer_without_a_length_is_read_until_the_server_closes(ctx: Context) -> None:
    def handle(server: Server, sock: socket.socket) -> None:
        if server.read_request(sock):
            sock.sendall(answer(201, created(f"SM{server.connections:032d}")))

    with serving(handle) as server:
        results = gateway(ctx, f"http://127.0.0.1:{server.port}").send_many(texts(2))
    assert [(r.outcome, r.external_id) for r in results] == [
        (gw.SENT, f"SM{n:032d}") for n in (1, 2)
    ]


def test_a_connection_the_server_closed_while_idle_is_not_written_to(ctx: Context) -> None:
    # Written into, it would have lost the request or left it unknown: each is a new one.
    def handle(server: Server, sock: socket.socket) -> None:
        if server.read_request(sock):
            body = created(f"SM{len(server.requests):032d}")
            sock.sendall(answer(201, body, f"Content-Length: {len(body)}"))
            time.sleep(0.05)  # Then closes it, with no word, as an idle timeout does.

    with serving(handle) as server:
        # Two in flight: each text of a sub-batch on a connection of its own.
        sending = gateway(ctx, f"http://127.0.0.1:{server.port}", concurrency=2)
        first = sending.send_many(texts(2))
        time.sleep(0.3)
        second = sending.send_many(texts(2, start=2))
    assert [r.outcome for r in first + second] == [gw.SENT] * 4
    assert server.connections == 4


def test_an_answer_that_is_not_http_is_unknown(ctx: Context) -> None:
    # The request was read: it may have been taken, so it is never sent again blindly.
    def handle(server: Server, sock: socket.socket) -> None:
        while server.read_request(sock):
            sock.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")

    with serving(handle) as server:
        results = gateway(ctx, f"http://127.0.0.1:{server.port}").send_many(texts(2))
    assert [r.outcome for r in results] == [gw.UNKNOWN] * 2
    assert all(r.error.startswith("no answer: ValueError") for r in results), results


def test_a_refused_connection_is_retried_by_both_transports(ctx: Context) -> None:
    with closing(socket.create_server(("127.0.0.1", 0))) as listener:
        port = int(listener.getsockname()[1])
    sending = gateway(ctx, f"http://127.0.0.1:{port}")
    results = [*sending.send_many(texts(2)), sending.send(texts(1)[0])]
    assert [r.outcome for r in results] == [gw.RETRY] * 3
    assert all(r.error.startswith("connection: ") for r in results), results


def _answer_created(server: Server, sock: socket.socket) -> None:
    while server.read_request(sock):
        body = created(f"SM{len(server.requests):032d}")
        sock.sendall(answer(201, body, f"Content-Length: {len(body)}"))


def test_tls_to_a_trusted_certificate_sends(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls, ca_file = server_context(tmp_path, "127.0.0.1")
    # OpenSSL's default verify paths, which both transports load, honour SSL_CERT_FILE.
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    with serving(_answer_created, tls=tls) as server:
        sending = gateway(ctx, f"https://127.0.0.1:{server.port}")
        results = [*sending.send_many(texts(2)), sending.send(texts(1, start=2)[0])]
    assert [r.outcome for r in results] == [gw.SENT] * 3
    assert len(server.requests) == 3


def test_tls_to_an_untrusted_certificate_sends_nothing_and_is_retried(
    ctx: Context, tmp_path: Path
) -> None:
    tls, _ = server_context(tmp_path, "127.0.0.1")
    with serving(_answer_created, tls=tls) as server:
        sending = gateway(ctx, f"https://127.0.0.1:{server.port}")
        results = [*sending.send_many(texts(2)), sending.send(texts(1, start=2)[0])]
    assert [r.outcome for r in results] == [gw.RETRY] * 3
    assert all("SSL" in r.error for r in results), results
    assert server.requests == []


class _Proxy(http.server.BaseHTTPRequestHandler):
    """A forward proxy for plain HTTP: the absolute URL in the request line, passed on."""

    seen: list[str]

    def do_POST(self) -> None:
        self.seen.append(self.path)
        target = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        upstream = http.client.HTTPConnection(target.netloc, timeout=10)
        with closing(upstream):
            headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
            upstream.request("POST", target.path, body, headers)
            reply = upstream.getresponse()
            data = reply.read()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.getheader("Content-Type", ""))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_proxy_from_the_environment_carries_every_request(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    handler = type("Proxy", (_Proxy,), {"seen": seen})
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.server_address[1]}")
    try:
        with twilio_sim.running() as sim:
            sim.callbacks = False
            sending = gateway(ctx, sim.url, concurrency=4)
            results = [*sending.send_many(texts(5)), sending.send(texts(1, start=5)[0])]
            taken = sorted(t.to for t in sim.taken)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert [r.outcome for r in results] == [gw.SENT] * 6
    assert taken == [t.to for t in texts(6)]
    assert len(seen) == 6 and all(path.startswith(sim.url) for path in seen)


def test_a_proxy_that_is_down_sends_nothing_and_is_retried(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    with closing(socket.create_server(("127.0.0.1", 0))) as listener:
        port = int(listener.getsockname()[1])
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")
    with twilio_sim.running() as sim:
        sending = gateway(ctx, sim.url)
        results = [*sending.send_many(texts(2)), sending.send(texts(1, start=2)[0])]
        assert sim.taken == []
    assert [r.outcome for r in results] == [gw.RETRY] * 3
