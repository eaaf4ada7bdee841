"""The pinned-address request over real TLS on loopback: the connection goes to the address the
guard checked, while TLS (SNI and the certificate check) and the Host header see the name the
operator typed. A certificate for another name is refused."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from alertd.channels.webhooks.http import Limits, request
from alertd.channels.webhooks.ssrf import check_url, parse_networks
from tests.support.webhook_receivers import Receiver, running


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _tls(tmp_path: Path, host: str) -> tuple[ssl.SSLContext, str]:
    """A throwaway CA and a server certificate for ``host``; returns the server context and
    the CA file a client trusts."""
    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test CA"))
        .issuer_name(_name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = (tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, str(ca_file)


def _resolve_to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


@pytest.mark.parametrize(
    ("certificate_for", "accepted"), [("partner.example", True), ("other.example", False)]
)
def test_tls_to_the_checked_address_with_the_typed_name(
    tmp_path: Path, certificate_for: str, accepted: bool
) -> None:
    context, ca_file = _tls(tmp_path, certificate_for)
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
