"""alertd's CAP output checked by validators the project did not write: xmllint with the OASIS
schema, xmlsec1 for signatures, and capvalidator, which strips blank text before verifying."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from capvalidator.validate import Validator
from lxml import etree

from alertd.channels.cap.builder import build_cap
from alertd.channels.cap.message import CapReference
from alertd.channels.cap.signing import sign_cap
from alertd.channels.cap.validate import SCHEMA_PATH
from tests.unit.channels.cap.conftest import SENT, VersionFactory


def tool(name: str) -> str:
    # Not a skip: CI installs these (.ci/run), and a validator that silently did not run proves
    # nothing.
    path = shutil.which(name)
    assert path, f"{name} is not installed (Debian: xmlsec1, libxml2-utils)"
    return path


def xmllint_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("xmllint"), "--noout", "--nonet", "--schema", str(SCHEMA_PATH), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def xmlsec1_verify(path: Path, cert: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("xmlsec1"), "--verify", "--pubkey-cert-pem", str(cert), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def documents(make_version: VersionFactory) -> dict[str, bytes]:
    first = CapReference("alerts@police.example.org", "alertd.A1B2C3D4.1", SENT)
    translated = {"es-US": {"description": "Emma fue llevada del parque.", "instruction": ""}}
    return {
        "alert": build_cap(make_version()),
        "multilingual": build_cap(
            make_version(
                content_changes={"languages": ["en-US", "es-US"], "translations": translated}
            )
        ),
        "update": build_cap(
            make_version(
                identifier="alertd.A1B2C3D4.2",
                msg_type="Update",
                kind="update",
                references=(first,),
            )
        ),
        "resolve": build_cap(
            make_version(
                identifier="alertd.A1B2C3D4.3",
                msg_type="Cancel",
                kind="resolve",
                references=(first,),
            )
        ),
    }


def test_xmllint_accepts_every_kind_of_message_alertd_builds(
    make_version: VersionFactory, signing_identity: Any, tmp_path: Path
) -> None:
    built = documents(make_version)
    built["signed"] = sign_cap(built["alert"], *signing_identity)
    for name, xml in built.items():
        path = tmp_path / f"{name}.xml"
        path.write_bytes(xml)
        result = xmllint_schema(path)
        assert result.returncode == 0, (name, result.stderr)
        assert "validates" in result.stderr


def test_xmllint_is_a_real_check_it_refuses_a_broken_message(
    make_version: VersionFactory, tmp_path: Path
) -> None:
    path = tmp_path / "broken.xml"
    path.write_bytes(build_cap(make_version()).replace(b"<urgency>Immediate", b"<urgency>Soon"))
    assert xmllint_schema(path).returncode != 0


def test_the_document_is_compact_no_whitespace_only_text_between_elements(
    make_version: VersionFactory, signing_identity: Any
) -> None:
    for xml in [
        *documents(make_version).values(),
        sign_cap(build_cap(make_version()), *signing_identity),
    ]:
        root = etree.fromstring(xml)
        blank = [
            e.tag
            for e in root.iter()
            if (e.text is not None and len(e) and not e.text.strip())
            or (e.tail is not None and not e.tail.strip())
        ]
        assert blank == []


def test_xmlsec1_verifies_alertd_signatures_and_refuses_a_tampered_copy(
    make_version: VersionFactory, signing_identity: Any, tmp_path: Path
) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_bytes(signing_identity.cert_pem)
    signed = sign_cap(build_cap(make_version()), *signing_identity)
    good = tmp_path / "signed.xml"
    good.write_bytes(signed)
    result = xmlsec1_verify(good, cert)
    assert result.returncode == 0 and "OK" in result.stderr, result.stderr

    bad = tmp_path / "tampered.xml"
    bad.write_bytes(signed.replace(b"taken from the park", b"taken from the bark", 1))
    assert xmlsec1_verify(bad, cert).returncode != 0


def test_a_whitespace_stripping_verifier_accepts_alertd_signatures(
    make_version: VersionFactory, signing_identity: Any
) -> None:
    # capvalidator parses with remove_blank_text=True, then verifies with signxml.
    for xml in documents(make_version).values():
        signed = sign_cap(xml, *signing_identity)
        assert Validator(signed).signature() == (True, "CAP alert signature is valid.")
        assert Validator(signed).schema()[0] is True


def test_the_stripping_verifier_would_reject_a_pretty_printed_signed_document(
    make_version: VersionFactory, signing_identity: Any
) -> None:
    # Why compact matters: indentation is signed content, and stripping it breaks the digest.
    pretty = etree.tostring(
        etree.fromstring(build_cap(make_version())),
        xml_declaration=True,
        encoding="UTF-8",
        pretty_print=True,
    )
    signed = sign_cap(pretty, *signing_identity)
    assert Validator(signed).signature()[0] is False
