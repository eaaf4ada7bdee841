"""The Twilio simulator itself, over raw HTTP and through our gateway: every behaviour the tests
and the benchmark rely on (Twilio's JSON, the list's filters, the error table, 429 with
Retry-After, 500, garbage, a hang, a request read then dropped, a request cut short, keep-alive,
signed callbacks), and the gateway's own read timeout against a hang."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from twilio.request_validator import RequestValidator

from alertd.channels.sms import gateway as gw
from alertd.channels.sms import transport as sms_transport
from alertd.context import Context
from tests.support import twilio_sim
from tests.support.webhook_receivers import Receiver, running

MESSAGES = f"/2010-04-01/Accounts/{twilio_sim.ACCOUNT_SID}/Messages.json"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
TWILIO = {
    "TWILIO_ACCOUNT_SID": twilio_sim.ACCOUNT_SID,
    "TWILIO_AUTH_TOKEN": twilio_sim.AUTH_TOKEN,
    "TWILIO_FROM_NUMBER": "+15005550006",
}


@pytest.fixture
def sim() -> Iterator[twilio_sim.Simulator]:
    with twilio_sim.running() as simulator:
        yield simulator


Connect = Callable[..., http.client.HTTPConnection]


@pytest.fixture
def connect(sim: twilio_sim.Simulator) -> Iterator[Connect]:
    """Connections to the simulator, closed at the end of the test."""
    made: list[http.client.HTTPConnection] = []

    def make(timeout: float = 10) -> http.client.HTTPConnection:
        port = int(sim.url.rsplit(":", 1)[1])
        made.append(http.client.HTTPConnection("127.0.0.1", port, timeout=timeout))
        return made[-1]

    yield make
    for connection in made:
        connection.close()


def _post(
    connection: http.client.HTTPConnection, to: str, **extra: str
) -> tuple[int, dict[str, str], Any]:
    form = {"To": to, "From": "+15005550006", "Body": "Hello & good-bye", **extra}
    connection.request("POST", MESSAGES, urllib.parse.urlencode(form), FORM)
    answer = connection.getresponse()
    data = answer.read()
    kind = answer.getheader("Content-Type", "")
    return answer.status, dict(answer.getheaders()), json.loads(data) if "json" in kind else data


def test_create_answers_twilio_json_on_a_kept_alive_connection(
    sim: twilio_sim.Simulator,
    connect: Connect,
) -> None:
    connection = connect()
    status, _, first = _post(connection, "+14155550101", ValidityPeriod="600")
    # The same connection again: kept alive.
    status2, _, second = _post(connection, "+14155550102", StatusCallback="http://a.test/s/1")
    assert (status, status2) == (201, 201)
    assert first["sid"].startswith("SM") and len(first["sid"]) == 34
    assert first["sid"] != second["sid"]
    assert first["status"] == "queued" and first["date_sent"] is None
    assert first["to"] == "+14155550101" and first["body"] == "Hello & good-bye"
    assert first["from"] == "+15005550006" and first["messaging_service_sid"] is None
    assert first["account_sid"] == twilio_sim.ACCOUNT_SID
    assert first["uri"] == MESSAGES.replace(".json", f"/{first['sid']}.json")
    assert datetime.strptime(first["date_created"], "%a, %d %b %Y %H:%M:%S %z")
    # As message_json words it, but for date_sent: a queued message has not been sent.
    assert first == {**twilio_sim.message_json(sim.taken[0]), "date_sent": None}
    assert [(t.to, t.validity_period, t.status_callback) for t in sim.taken] == [
        ("+14155550101", 600, ""),
        ("+14155550102", None, "http://a.test/s/1"),
    ]
    service = {"To": "+14155550103", "MessagingServiceSid": "MG1", "Body": "x"}
    connection.request("POST", MESSAGES, urllib.parse.urlencode(service), FORM)
    by_service = json.loads(connection.getresponse().read())
    assert by_service["from"] is None and by_service["messaging_service_sid"] == "MG1"


def test_list_filters_by_number_and_date_sent(sim: twilio_sim.Simulator, connect: Connect) -> None:
    connection = connect()
    for to in ("+14155550101", "+14155550102", "+14155550101"):
        _post(connection, to)
    sim.taken[0].at -= timedelta(hours=1)
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    query = urllib.parse.urlencode({"To": "+14155550101", "DateSent>": since})
    connection.request("GET", f"{MESSAGES}?{query}")
    page = json.loads(connection.getresponse().read())
    assert [m["sid"] for m in page["messages"]] == [sim.taken[2].sid]
    assert page["messages"][0]["status"] == "sent" and page["messages"][0]["date_sent"]
    connection.request("GET", f"{MESSAGES}?To=%2B14155550101")
    page = json.loads(connection.getresponse().read())
    assert [m["sid"] for m in page["messages"]] == [sim.taken[2].sid, sim.taken[0].sid]


def test_error_table_throttling_and_server_errors(
    sim: twilio_sim.Simulator, connect: Connect
) -> None:
    sim.retry_after = 7
    sim.script = {"+14155550101": [21610, 21211, 21614, "429", "500", "garbage"]}
    connection = connect()
    answers = [_post(connection, "+14155550101") for _ in range(7)]
    codes = [
        (status, body.get("code") if isinstance(body, dict) else body)
        for status, _, body in answers
    ]
    assert codes[:5] == [(400, 21610), (400, 21211), (400, 21614), (429, 20429), (500, 20500)]
    assert "+14155550101" in answers[1][2]["message"]  # As Twilio words 21211.
    assert answers[3][1]["Retry-After"] == "7"
    # Garbage with its true length: the next answer on the connection is read whole.
    assert codes[5] == (502, b"<html>Bad Gateway</html>")
    assert codes[6][0] == 201
    assert sim.requests["+14155550101"] == 7 and len(sim.taken) == 1


def test_drop_takes_the_text_and_closes_without_an_answer(
    sim: twilio_sim.Simulator, connect: Connect
) -> None:
    sim.script = {"+14155550101": ["drop"]}
    connection = connect()
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        _post(connection, "+14155550101")
    assert [t.to for t in sim.taken] == ["+14155550101"]


def test_hang_never_answers(sim: twilio_sim.Simulator, connect: Connect) -> None:
    sim.script = {"+14155550101": ["hang"]}
    sim.hang_seconds = 60
    connection = connect(timeout=0.5)
    with pytest.raises(TimeoutError):
        _post(connection, "+14155550101")
    assert sim.requests["+14155550101"] == 1 and sim.taken == []


def test_a_request_cut_short_is_not_taken(sim: twilio_sim.Simulator, connect: Connect) -> None:
    form = urllib.parse.urlencode({"To": "+14155550101", "Body": "cut"}).encode()
    with socket.create_connection(("127.0.0.1", int(sim.url.rsplit(":", 1)[1]))) as raw:
        head = f"POST {MESSAGES} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(form) + 10}\r\n\r\n"
        raw.sendall(head.encode() + form)
    # A whole request after it, on another connection, is answered: the cut one was dropped.
    assert _post(connect(), "+14155550102")[0] == 201
    assert [t.to for t in sim.taken] == ["+14155550102"]


def test_status_callbacks_are_signed_duplicated_and_out_of_order() -> None:
    with running(Receiver()) as receiver:
        public = "http://alertd.test/twilio/status/42"
        simulator = twilio_sim.Simulator(
            callbacks=True, duplicate_callbacks=True, callback_host=receiver.url
        )
        with twilio_sim.running(simulator) as sim:
            port = int(sim.url.rsplit(":", 1)[1])
            with closing(http.client.HTTPConnection("127.0.0.1", port)) as connection:
                assert _post(connection, "+14155550101", StatusCallback=public)[0] == 201
            deadline = time.monotonic() + 30
            while len(receiver.requests()) < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
        seen = receiver.requests()
    validator = RequestValidator(twilio_sim.AUTH_TOKEN)
    forms = [dict(urllib.parse.parse_qsl(s.body.decode())) for s in seen]
    assert [s.path for s in seen] == ["/twilio/status/42"] * 4
    assert [f["MessageStatus"] for f in forms] == ["delivered", "sent", "delivered", "queued"]
    assert {f["MessageSid"] for f in forms} == {sim.taken[0].sid}
    # Signed for the public URL, as Twilio signs them.
    assert all(
        validator.validate(public, f, s.headers["X-Twilio-Signature"])
        for f, s in zip(forms, seen, strict=True)
    )


def test_the_gateway_gives_up_on_a_hang_after_its_read_timeout(
    ctx: Context, sim: twilio_sim.Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK names no timeout; both transports once passed that on as none at all, so a hung
    gateway held a sub-batch until it closed the connection (here a minute)."""
    monkeypatch.setattr(sms_transport, "READ_SECONDS", 0.5)
    sim.hang_seconds = 60
    ctx.settings = ctx.settings.with_overrides(SMS_BACKEND="twilio", TWILIO_API_BASE=sim.url)
    gateway = gw.TwilioGateway(ctx, environ=TWILIO)
    texts = [gw.Text(1, 1, to, "x", "http://a.test/s/1", 600) for to in ("+1415555", "+1416555")]
    sim.script = {"+1415555": ["hang"]}
    many = gateway.send_many([*texts, gw.Text(2, 1, "+1417555", "x", "http://a.test/s/2", 600)])
    sim.script = {"+1415555": ["hang"]}
    one = gateway.send(texts[0])
    assert [r.outcome for r in many] == [gw.UNKNOWN, gw.SENT, gw.SENT]
    assert "Timeout" in many[0].error, many[0].error
    assert one.outcome == gw.UNKNOWN and "Timeout" in one.error, one.error
