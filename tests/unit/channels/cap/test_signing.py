from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from alertd.channels.cap.builder import build_cap
from alertd.channels.cap.message import CAP_NS, DSIG_NS, CapVersion, parse_cap_datetime
from alertd.channels.cap.signing import CapSignatureError, sign_cap, verify_cap
from alertd.channels.cap.validate import validate_cap

NS = {"cap": CAP_NS, "ds": DSIG_NS}
VersionFactory = Callable[..., CapVersion]
IPAWS_SIGNED = [
    "03-ipaws-LAE-police-search-photo-wea-signed.xml",
    "04-ipaws-cancel-signed.xml",
]


@pytest.fixture
def signed(make_version: VersionFactory, signing_identity: Any) -> bytes:
    return sign_cap(build_cap(make_version()), signing_identity.key_pem, signing_identity.cert_pem)


def test_signed_message_verifies_with_the_signer_certificate(
    signed: bytes, signing_identity: Any
) -> None:
    verify_cap(signed, signing_identity.cert_pem)


def test_signed_message_verifies_against_its_embedded_certificate(signed: bytes) -> None:
    verify_cap(signed)


def test_signed_message_is_still_valid_cap(signed: bytes) -> None:
    assert validate_cap(signed, strict=True) == []


def test_signature_follows_the_ipaws_profile(signed: bytes) -> None:
    alert = etree.fromstring(signed)

    signature = alert[-1]

    assert signature.tag == f"{{{DSIG_NS}}}Signature"
    assert signature.get("Id") is None
    algorithm = {
        name: signature.find(f"ds:SignedInfo/ds:{name}", NS).get("Algorithm")
        for name in ("CanonicalizationMethod", "SignatureMethod")
    }
    assert algorithm == {
        "CanonicalizationMethod": "http://www.w3.org/2001/10/xml-exc-c14n#",
        "SignatureMethod": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    }
    reference = signature.find("ds:SignedInfo/ds:Reference", NS)
    assert reference.get("URI") == ""
    digest = reference.find("ds:DigestMethod", NS).get("Algorithm")
    assert digest == "http://www.w3.org/2001/04/xmlenc#sha256"
    assert signature.find("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS) is not None


def test_changing_one_character_of_the_description_breaks_the_signature(
    signed: bytes, signing_identity: Any
) -> None:
    # given a signed message whose description loses one letter
    tampered = signed.replace(b"taken from the park", b"taken from the bark", 1)
    assert tampered != signed

    # then
    with pytest.raises(CapSignatureError, match="not valid"):
        verify_cap(tampered, signing_identity.cert_pem)
    with pytest.raises(CapSignatureError):
        verify_cap(tampered)


def test_another_certificate_is_refused(signed: bytes, other_identity: Any) -> None:
    with pytest.raises(CapSignatureError, match="not valid"):
        verify_cap(signed, other_identity.cert_pem)


def test_unsigned_message_is_refused(make_version: VersionFactory) -> None:
    with pytest.raises(CapSignatureError, match="not signed"):
        verify_cap(build_cap(make_version()))


def test_signing_twice_is_refused(signed: bytes, signing_identity: Any) -> None:
    with pytest.raises(CapSignatureError, match="already signed"):
        sign_cap(signed, signing_identity.key_pem, signing_identity.cert_pem)


def test_signature_not_last_is_refused(signed: bytes, signing_identity: Any) -> None:
    moved = etree.fromstring(signed)
    moved.find("cap:info", NS).addprevious(moved[-1])  # the signature now precedes the info

    with pytest.raises(CapSignatureError, match="last child"):
        verify_cap(etree.tostring(moved), signing_identity.cert_pem)


def test_expired_certificate_is_refused_now_but_accepted_at_sending_time(
    make_version: VersionFactory, self_signed: Callable[..., Any]
) -> None:
    # given a certificate that was valid only around the message's sending time
    version = make_version()
    identity = self_signed(
        not_before=version.sent - timedelta(days=1), not_after=version.sent + timedelta(days=1)
    )
    xml = sign_cap(build_cap(version), identity.key_pem, identity.cert_pem)

    # then
    with pytest.raises(CapSignatureError, match="expired"):
        verify_cap(xml, identity.cert_pem, at=datetime.now(UTC))
    verify_cap(xml, identity.cert_pem, at=version.sent)


@pytest.mark.parametrize("name", IPAWS_SIGNED)
def test_real_ipaws_signature_verifies_at_its_sending_time(examples_dir: Path, name: str) -> None:
    # The FEMA certificates in these messages expired in 2020 and 2022, so they are checked at
    # the time the message was sent; checking "now" must fail for exactly that reason.
    xml = (examples_dir / name).read_bytes()
    sent = parse_cap_datetime(etree.fromstring(xml).findtext("cap:sent", namespaces=NS))

    verify_cap(xml, at=sent)
    with pytest.raises(CapSignatureError, match="expired"):
        verify_cap(xml)


def test_real_ipaws_message_fails_once_altered(examples_dir: Path) -> None:
    xml = (examples_dir / IPAWS_SIGNED[0]).read_bytes()
    sent = parse_cap_datetime(etree.fromstring(xml).findtext("cap:sent", namespaces=NS))
    tampered = xml.replace(b"Call 911 if seen.", b"Call 912 if seen.", 1)
    assert tampered != xml

    with pytest.raises(CapSignatureError, match="not valid"):
        verify_cap(tampered, at=sent)


def test_canadian_message_with_two_sha1_signatures_is_refused(examples_dir: Path) -> None:
    # NAAD signs twice with RSA-SHA1; alertd expects exactly one SHA-2 signature.
    xml = (examples_dir / "06-canada-naad-cap-cp-update-signed.xml").read_bytes()

    with pytest.raises(CapSignatureError, match="expected one ds:Signature"):
        verify_cap(xml)
