"""Enveloped XML signatures on CAP documents, as IPAWS exchanges them.

Profile (docs/DOMAIN.md section 3): the `ds:Signature` is the last child of `<alert>`, signs the
whole document (`Reference URI=""`), exclusive c14n, RSA-SHA256, SHA-256 digest, and carries the
signer's X.509 certificate in KeyInfo. The CAP schema admits any element of the xmldsig namespace
after the info blocks, so a signed document stays schema-valid.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from lxml import etree  # type: ignore[import-untyped]  # lxml ships no type information
from signxml.algorithms import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConstructionMethod,
    SignatureMethod,
)
from signxml.exceptions import SignXMLException
from signxml.signer import XMLSigner
from signxml.verifier import SignatureConfiguration, XMLVerifier

from alertd.channels.cap.message import CAP_NS, DSIG_NS
from alertd.channels.cap.validate import parse_untrusted, secure_parser

_EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
_SIGNATURE = f"{{{DSIG_NS}}}Signature"


class CapSignatureError(Exception):
    """The document is unsigned, signed in a way we do not accept, or its signature is false."""


def sign_cap(xml: bytes, key_pem: bytes, cert_pem: bytes) -> bytes:
    """Return `xml` with an enveloped signature appended as the last child of `<alert>`.

    The bytes of the signed content are kept exactly as given (no re-indenting), since any
    whitespace change after signing would break the digest.
    """
    root = _parse_alert(xml)
    if root.find(_SIGNATURE) is not None:
        raise CapSignatureError("document is already signed; sign the unsigned build instead")
    signer = XMLSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=_EXC_C14N,
    )
    try:
        signed = signer.sign(root, key=key_pem, cert=cert_pem.decode("ascii"))
    except (SignXMLException, ValueError) as exc:
        raise CapSignatureError(f"cannot sign: {exc}") from exc
    result: bytes = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
    return result


def verify_cap(xml: bytes, cert_pem: bytes | None = None, *, at: datetime | None = None) -> None:
    """Raise CapSignatureError unless `xml` carries one valid enveloped signature over all of it.

    With `cert_pem`, the signature must come from that certificate: this is the check that
    establishes who sent the message. With `cert_pem=None` the certificate embedded in KeyInfo is
    used; that proves only that the document was not altered since that certificate's key signed
    it, not who holds the key (used by `alertd cap verify FILE` to inspect a message).

    `at` is when the certificate must have been valid (default: now). Pass the message's `sent`
    time to check an archived message whose certificate has since expired.
    """
    root = _parse_alert(xml)
    signatures = root.findall(_SIGNATURE)
    if not signatures:
        raise CapSignatureError("document is not signed (no ds:Signature under <alert>)")
    if len(signatures) > 1:
        raise CapSignatureError(f"expected one ds:Signature under <alert>, found {len(signatures)}")
    signature = signatures[0]
    elements = [child for child in root if isinstance(child.tag, str)]  # skip comments and PIs
    if elements[-1] is not signature:
        raise CapSignatureError("ds:Signature must be the last child of <alert>")
    references = signature.findall(f"{{{DSIG_NS}}}SignedInfo/{{{DSIG_NS}}}Reference")
    # A reference to a fragment would leave the rest of the alert unsigned ("see what is signed").
    if [ref.get("URI") for ref in references] != [""]:
        raise CapSignatureError('the signature must have one Reference with URI="" (whole alert)')

    cert = _load_cert(cert_pem) if cert_pem is not None else _embedded_cert(signature)
    config = SignatureConfiguration(
        location="./",
        expect_references=1,
        verification_time=at,
        # IPAWS signers list only the enveloped-signature transform; their c14n is exclusive.
        default_reference_c14n_method=_EXC_C14N,
    )
    try:
        XMLVerifier().verify(xml, x509_cert=cert, expect_config=config, parser=secure_parser())
    except (SignXMLException, InvalidSignature, ValueError) as exc:
        raise CapSignatureError(f"signature is not valid: {exc}") from exc


def _parse_alert(xml: bytes) -> Any:
    try:
        root = parse_untrusted(xml)
    except ValueError as exc:
        raise CapSignatureError(str(exc)) from exc
    if root.tag != f"{{{CAP_NS}}}alert":
        raise CapSignatureError(f"root element is {root.tag!r}, not a CAP 1.2 alert")
    return root


def _load_cert(cert_pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise CapSignatureError(f"cannot read the PEM certificate: {exc}") from exc


def _embedded_cert(signature: Any) -> x509.Certificate:
    path = f"{{{DSIG_NS}}}KeyInfo/{{{DSIG_NS}}}X509Data/{{{DSIG_NS}}}X509Certificate"
    found = signature.findall(path)
    if not found:
        raise CapSignatureError("no X509Certificate in KeyInfo to verify against")
    # The first certificate is the signer's; any others are its chain.
    text = "".join(str(found[0].text or "").split())
    try:
        return x509.load_der_x509_certificate(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise CapSignatureError(f"cannot read the embedded certificate: {exc}") from exc
