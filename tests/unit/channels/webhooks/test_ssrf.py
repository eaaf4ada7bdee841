"""The SSRF guard refuses every way of naming an address that is not public, with a reason,
and lets through what is public or explicitly allowed. Names resolve through a fake resolver:
no test asks real DNS."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alertd.channels.webhooks.ssrf import UnsafeUrl, check_url, parse_networks, refusal

PUBLIC = "93.184.215.14"


def resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("Name or service not known")
        return table[host]

    return resolve


FAKE_DNS = resolver(
    {
        "partner.example": [PUBLIC],
        "evil.example": ["10.0.0.5"],
        "mixed.example": [PUBLIC, "127.0.0.1"],
        "metadata.example": ["169.254.169.254"],
        "v6.example": ["2606:4700::1111"],
        "localhost": ["127.0.0.1", "::1"],
    }
)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://partner.example/hook", "HTTPS"),
        ("ftp://partner.example/hook", "https://"),
        ("https://nowhere.example/hook", "does not resolve"),
        ("https://evil.example/hook", "private"),
        ("https://mixed.example/hook", "loopback"),
        ("https://metadata.example/latest", "link-local"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://2130706433/hook", "non-standard notation"),
        ("https://0177.0.0.1/hook", "non-standard notation"),
        ("https://0x7f.1/hook", "non-standard notation"),
        ("https://127.1/hook", "non-standard notation"),
        ("https://[::ffff:127.0.0.1]/hook", "inside IPv6"),
        ("https://[::ffff:7f00:1]/hook", "inside IPv6"),
        ("https://[::1]/hook", "loopback"),
        ("https://[2002:7f00:1::]/hook", "6to4"),
        ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook", "Teredo"),
        ("https://[64:ff9b::7f00:1]/hook", "NAT64"),
        ("https://localhost./hook", "loopback"),
        ("https://localhost/hook", "loopback"),
        ("https://224.0.0.1/hook", "multicast"),
        ("https://240.0.0.1/hook", "reserved"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://100.64.0.1/hook", "not a public address"),
        ("https://user:pw@partner.example/hook", "user name"),
        ("https://partner.example:99999/hook", "not a valid URL"),
    ],
)
def test_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl, match=reason):
        check_url(url, resolver=FAKE_DNS)


def test_public_name_passes_and_keeps_the_checked_addresses() -> None:
    target = check_url("https://partner.example/hook?x=1", resolver=FAKE_DNS)
    assert target.addresses == (PUBLIC,)
    assert (target.host, target.port, target.path) == ("partner.example", 443, "/hook?x=1")
    assert target.host_header == "partner.example"
    assert check_url("https://v6.example:8443/", resolver=FAKE_DNS).host_header == (
        "v6.example:8443"
    )


def test_allow_list_lets_a_named_network_through_and_nothing_else() -> None:
    allow = parse_networks("127.0.0.1/32")
    target = check_url("http://127.0.0.1:8080/x", allow=allow, https_only=False)
    assert target.addresses == ("127.0.0.1",)
    with pytest.raises(UnsafeUrl, match="loopback"):
        check_url("http://127.0.0.2/x", allow=allow, https_only=False)
    # The allowed IPv4 address hidden in IPv6 is still refused: it is not the form allowed.
    with pytest.raises(UnsafeUrl, match="inside IPv6"):
        check_url("http://[::ffff:127.0.0.1]/x", allow=allow, https_only=False)


def test_bad_allow_list_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="ALERTD_WEBHOOK_ALLOW"):
        parse_networks("127.0.0.1/33")


def test_every_embedded_form_names_the_ipv4_inside() -> None:
    reason = refusal(ipaddress.ip_address("::ffff:10.1.2.3"))
    assert reason is not None and "10.1.2.3" in reason
    assert refusal(ipaddress.ip_address(PUBLIC)) is None


def test_localhost_with_a_trailing_dot_through_the_system_resolver() -> None:
    # /etc/hosts answers; nothing leaves the machine.
    with pytest.raises(UnsafeUrl, match="loopback"):
        check_url("https://localhost./hook")


@given(st.ip_addresses(v=4))
def test_any_ipv4_hidden_in_ipv6_or_written_as_a_number_is_refused(
    address: ipaddress.IPv4Address,
) -> None:
    for url in (
        f"https://[::ffff:{address}]/",
        f"https://{int(address)}/",
        "https://0" + ".0".join(f"{int(b):o}" for b in address.packed) + "/",
    ):
        with pytest.raises(UnsafeUrl):
            check_url(url, resolver=FAKE_DNS)


@given(st.ip_addresses())
def test_a_literal_address_passes_only_when_global(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    host = f"[{address}]" if address.version == 6 else str(address)
    try:
        check_url(f"https://{host}/")
    except UnsafeUrl:
        assert refusal(address) is not None
    else:
        assert address.is_global and not address.is_multicast
