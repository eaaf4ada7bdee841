"""The SSRF guard (DOMAIN.md section 6): an operator-typed URL must not make the server call
into its own network.

Why not a library: ``advocate`` (the best known) has had no release since 2020 and wraps an old
requests/urllib3 API; ``requests-hardened`` filters private addresses at connect time but is
all-or-nothing (no allow-list of networks, which operators and our tests need) and resolves the
name itself, so the check at save time could not share the code or be tested with a fake
resolver. What is needed is small: resolve once, check every address with ``ipaddress``, then
connect to a checked address (no second lookup), giving the original host to TLS (SNI and
certificate check) and to the ``Host`` header. urllib3 supports exactly that with
``server_hostname``/``assert_hostname``; this module does the rest, and its tests cover each
trick listed in the issue.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from alertd.i18n import with_article

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> the addresses the name resolves to.
Resolver = Callable[[str, int], list[str]]

# IPv6 forms that carry an IPv4 address inside; the IPv4 address is what would be reached.
_EMBEDDING = {
    "6to4": ipaddress.ip_network("2002::/16"),
    "Teredo": ipaddress.ip_network("2001::/32"),
    "NAT64": ipaddress.ip_network("64:ff9b::/96"),
    "local NAT64": ipaddress.ip_network("64:ff9b:1::/48"),
}
# A host written only with digits, dots and 0x: some other notation of an IPv4 address
# (decimal 2130706433, octal 0177.0.0.1, hex 0x7f.1) that resolvers accept but people misread.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]*|[0-9]*))*\.?$", re.IGNORECASE)


class UnsafeUrl(ValueError):
    """The URL may not be called; the message says why, for the operator."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    # Path and query, as sent on the request line.
    path: str
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_networks(spec: str) -> tuple[Network, ...]:
    """``ALERTD_WEBHOOK_ALLOW``: comma-separated networks, e.g. ``127.0.0.1/32,10.1.0.0/16``."""
    try:
        return tuple(ipaddress.ip_network(p.strip()) for p in spec.split(",") if p.strip())
    except ValueError as exc:
        raise ValueError(f"ALERTD_WEBHOOK_ALLOW is not a list of networks: {exc}") from exc


def refusal(address: IPAddress, allow: Sequence[Network] = ()) -> str | None:
    """Why this address may not be reached, or None."""
    if any(address in net for net in allow if net.version == address.version):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"{address} is an IPv4 address ({address.ipv4_mapped}) inside IPv6"
        for name, net in _EMBEDDING.items():
            if address in net:
                return f"{address} is {with_article(name)} address, which carries an IPv4 address"
    # The most specific name first: Python also counts loopback and link-local as private.
    for label, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    ):
        if flag:
            return f"{address} is {with_article(label)} address"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


def check_url(
    url: str,
    *,
    allow: Sequence[Network] = (),
    https_only: bool = True,
    resolver: Resolver | None = None,
) -> Target:
    """Resolve and check; raise UnsafeUrl with the reason. The Target carries the addresses
    that were checked, and only those are ever connected to."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UnsafeUrl("the URL must start with https://")
    if scheme == "http" and https_only:
        raise UnsafeUrl("the URL must use HTTPS")
    if parts.username or parts.password:
        raise UnsafeUrl("the URL must not carry a user name or password")
    host = (parts.hostname or "").lower()
    if not host:
        raise UnsafeUrl("the URL has no host")
    port = port or (443 if scheme == "https" else 80)
    literal = _literal(host)
    if literal is None and _NUMERIC_HOST.match(host):
        raise UnsafeUrl(f"{host} is an IPv4 address in a non-standard notation")
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = (resolver or system_resolver)(host.rstrip("."), port)
        except (OSError, UnicodeError) as exc:
            raise UnsafeUrl(f"{host} does not resolve: {exc}") from None
        if not addresses:
            raise UnsafeUrl(f"{host} does not resolve")
    for address in addresses:
        reason = refusal(ipaddress.ip_address(address.split("%")[0]), allow)
        if reason is not None:
            raise UnsafeUrl(f"{host} resolves to a refused address: {reason}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, host, port, path, tuple(addresses))


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
