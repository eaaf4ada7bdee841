"""Fixtures for the CAP message layer: a typical alert, a signing identity, the shared examples."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from alertd.channels.cap.message import CapPhoto, CapVersion

# Byte-for-byte copies of the shared reference messages (examples/SOURCES.md says where each is
# from), kept in the repository so that a clean clone in CI runs every test against them.
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"

EASTERN = timezone(timedelta(hours=-5))
SENT = datetime(2025, 3, 1, 15, 0, tzinfo=EASTERN)

VersionFactory = Callable[..., CapVersion]


class SigningIdentity(NamedTuple):
    key_pem: bytes
    cert_pem: bytes


def make_self_signed(
    common_name: str = "alertd test signer",
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> SigningIdentity:
    """A throwaway RSA-2048 key and a self-signed certificate for it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return SigningIdentity(key_pem, cert.public_bytes(serialization.Encoding.PEM))


@pytest.fixture(scope="session")
def signing_identity() -> SigningIdentity:
    # Session scope: RSA key generation is the slowest step in this test folder.
    return make_self_signed()


@pytest.fixture(scope="session")
def other_identity() -> SigningIdentity:
    return make_self_signed("someone else")


@pytest.fixture(scope="session")
def self_signed() -> Callable[..., SigningIdentity]:
    return make_self_signed


def base_content() -> dict[str, Any]:
    return {
        "status": "approved",
        "jurisdiction": "Springfield County",
        "criteria": {"minor": True, "abduction": True, "risk": True, "description": True},
        "case_reference": "NCIC-2025-0001",
        "children": [
            {
                "name": "Emma Smith",
                "age": 7,
                "sex": "female",
                "height_cm": 120,
                "weight_kg": 25,
                "hair": "brown",
                "eyes": "blue",
                "clothing": "red coat, white trainers",
                "marks": "scar on left cheek",
            }
        ],
        "suspects": [{"name": "John Doe", "description": "man in his 40s, grey beard"}],
        "vehicles": [
            {
                "make": "Ford",
                "model": "Focus",
                "colour": "red",
                "year": 2012,
                "plate": "ABC123",
                "plate_region": "CA",
            }
        ],
        "last_seen_at": "2025-03-01T14:30:00-05:00",
        "last_seen_place": "Main Street park, Springfield",
        "direction_of_travel": "north on I-5",
        "tip_line": "1-800-555-0100",
        "description": "Emma was taken from the park by a man she does not know.",
        "instruction": None,
        "areas": [
            {
                "description": "Springfield County",
                "geocodes": {"SAME": "006037"},
                "polygon": [[34.0, -118.0], [34.1, -118.0], [34.1, -118.1], [34.0, -118.0]],
                "circle": {"lat": 34.05, "lon": -118.05, "radius_km": 10},
            }
        ],
        "languages": ["en-US"],
        "translations": {},
    }


def _make_version(**changes: Any) -> CapVersion:
    content_changes = changes.pop("content_changes", {})
    version = CapVersion(
        identifier="alertd.A1B2C3D4.1",
        sender="alerts@police.example.org",
        sender_name="Example State Police",
        sent=SENT,
        status="Actual",
        msg_type="Alert",
        kind="alert",
        references=(),
        expires=SENT + timedelta(hours=3),
        content={**base_content(), **content_changes},
        web_url="https://alerts.example.org/a/A1B2C3D4",
        photo=CapPhoto(
            uri="https://alerts.example.org/photos/A1B2C3D4.jpg",
            mime_type="image/jpeg",
            size=48213,
            sha1="3f786850e387550fdab836ed7e6dc881de23001b",
        ),
        ipaws=True,
    )
    return dataclasses.replace(version, **changes)


@pytest.fixture(scope="session")
def make_version() -> VersionFactory:
    """Build a CapVersion; keyword arguments replace fields, `content_changes` merges content.

    Session scope so Hypothesis tests can use it (it holds no state).
    """
    return _make_version


@pytest.fixture
def examples_dir() -> Path:
    return EXAMPLES_DIR
