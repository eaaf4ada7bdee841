"""`alertd cap verify FILE`: level by level, in order, with an exit code naming the level."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from alertd.channels.cap.builder import build_cap
from alertd.channels.cap.signing import sign_cap
from alertd.channels.cap.validate import SCHEMA_PATH
from alertd.channels.cap.verify import EXIT_CODES, LEVELS
from alertd.cli import main
from tests.unit.channels.cap.conftest import SigningIdentity, VersionFactory
from tests.unit.channels.cap.test_examples import EXAMPLES

# What `cap verify --at-sent` says of each real message's signature, by name: signed or not, and
# whether the signature verifies at the message's sent time (the certificates have expired since).
SIGNATURES = {
    EXAMPLES[0]: ("unsigned", "skipped"),
    EXAMPLES[1]: ("unsigned", "skipped"),
    EXAMPLES[2]: ("signed", "ok"),  # FEMA IPAWS, RSA-SHA256
    EXAMPLES[3]: ("signed", "ok"),
    EXAMPLES[4]: ("signed", "FAIL"),  # the signature body was elided when it was published
    EXAMPLES[5]: ("signed", "FAIL"),  # NAAD signs twice with RSA-SHA1; alertd expects one SHA-2
}


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["cap", "verify", *args])
    out = capsys.readouterr().out
    return code, [line for line in out.splitlines() if line.split(":")[0] in LEVELS]


def levels_of(lines: list[str], status: str) -> list[str]:
    return [line.split(":")[0] for line in lines if line.split(": ")[1] == status]


@pytest.mark.parametrize("name", EXAMPLES)
def test_cap_verify_agrees_with_xmllint_on_the_real_examples_and_reports_their_signatures(
    examples_dir: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    xmllint = shutil.which("xmllint")
    assert xmllint, "xmllint is not installed (Debian: libxml2-utils)"
    path = examples_dir / name
    lint = subprocess.run(
        [xmllint, "--noout", "--nonet", "--schema", str(SCHEMA_PATH), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )

    code, lines = run(["--at-sent", str(path)], capsys)

    ours = "FAIL" not in [line.split(": ")[1] for line in lines if line.startswith("schema:")]
    assert ours == (lint.returncode == 0), (lines, lint.stderr)
    signed, verdict = SIGNATURES[name]
    signature = [line for line in lines if line.startswith("signature:")]
    assert len(signature) == 1 and signature[0].startswith(f"signature: {verdict}:")
    assert ("not signed" in signature[0]) == (signed == "unsigned")
    if verdict == "ok":
        assert "at its sent time" in signature[0]
    # Levels are reported in order, the signature last, and the exit code is the first failure.
    order = [LEVELS.index(line.split(":")[0]) for line in lines]
    assert order == sorted(order) and order[-1] == LEVELS.index("signature")
    failed = levels_of(lines, "FAIL")
    assert code == (EXIT_CODES[failed[0]] if failed else 0)


def test_the_real_ipaws_signatures_fail_now_because_their_certificates_expired(
    examples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run([str(examples_dir / EXAMPLES[2])], capsys)
    assert code == EXIT_CODES["signature"]
    assert re.search(r"signature: FAIL: .*expired", "\n".join(lines))


def write(tmp_path: Path, name: str, xml: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(xml)
    return str(path)


def test_each_level_has_its_own_exit_code_and_line(
    make_version: VersionFactory,
    signing_identity: SigningIdentity,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = build_cap(make_version())
    unclosed = re.sub(rb"(<polygon>[^<]*) [^ <]+</polygon>", rb"\1</polygon>", good)
    assert unclosed != good
    signed = sign_cap(good, *signing_identity)
    cases: dict[str, tuple[bytes, list[str], int, str]] = {
        "malformed": (good[:-20], [], 3, "xml"),
        "schema": (good.replace(b"<urgency>Immediate", b"<urgency>Soon"), [], 4, "schema"),
        "rules": (unclosed, [], 5, "cap"),
        # The fixture's sent time is -05:00; a zero offset breaks only the IPAWS profile.
        "ipaws": (good.replace(b"-05:00<", b"-00:00<"), [], 6, "ipaws"),
        "tampered": (signed.replace(b"from the park", b"from the bark", 1), [], 7, "signature"),
        "unsigned-required": (good, ["--require-signature"], 7, "signature"),
    }
    for name, (xml, flags, exit_code, level) in cases.items():
        code, lines = run([*flags, write(tmp_path, f"{name}.xml", xml)], capsys)
        assert code == exit_code, (name, lines)
        assert levels_of(lines, "FAIL")[0] == level, (name, lines)

    assert run([write(tmp_path, "unsigned.xml", good)], capsys)[0] == 0
    code, lines = run(["--require-signature", write(tmp_path, "signed.xml", signed)], capsys)
    assert code == 0 and lines[-1].startswith("signature: ok:")
    cert = write(tmp_path, "cert.pem", signing_identity.cert_pem)
    assert run(["--cert", cert, str(tmp_path / "signed.xml")], capsys)[0] == 0


def test_at_sent_accepts_a_certificate_that_has_expired_since(
    make_version: VersionFactory,
    self_signed: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    version = make_version()
    identity = self_signed(
        not_before=version.sent - timedelta(days=1), not_after=version.sent + timedelta(days=1)
    )
    path = write(tmp_path, "old.xml", sign_cap(build_cap(version), *identity))
    assert run([path], capsys)[0] == EXIT_CODES["signature"]
    assert run(["--at-sent", path], capsys)[0] == 0


def test_an_unreadable_file_is_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cap", "verify", str(tmp_path / "missing.xml")]) == 1
    assert "error:" in capsys.readouterr().err
