"""The pinned-address request over real TLS on loopback: the connection goes to the address the
guard checked, while TLS (SNI and the certificate check) and the Host header see the name the
operator typed. A certificate for another name is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertd.channels.webhooks.http import Limits, request
from alertd.channels.webhooks.ssrf import check_url, parse_networks
from tests.support.tls import server_context
from tests.support.webhook_receivers import Receiver, running


def _resolve_to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


@pytest.mark.parametrize(
    ("certificate_for", "accepted"), [("partner.example", True), ("other.example", False)]
)
def test_tls_to_the_checked_address_with_the_typed_name(
    tmp_path: Path, certificate_for: str, accepted: bool
) -> None:
    context, ca_file = server_context(tmp_path, certificate_for)
    with running(Receiver(tls=context)) as receiver:
        target = check_url(
            f"https://partner.example:{receiver.port}/hook",
            allow=parse_networks("127.0.0.1/32"),
            resolver=_resolve_to_loopback,
        )
        answer = request(
            target,
            "POST",
            b"{}",
            {"Content-Type": "application/json"},
            Limits(1, 2, 3, 1024, ca_file),
        )
        assert receiver.server_names == ["partner.example"]
        if accepted:
            assert answer.status == 200
            [seen] = receiver.requests()
            assert seen.headers["Host"] == f"partner.example:{receiver.port}"
        else:
            assert answer.status is None and "partner.example" in answer.error
            assert receiver.requests() == []
