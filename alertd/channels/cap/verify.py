"""`alertd cap verify FILE`: what is wrong with a CAP document, level by level.

The levels come in the order a reader should fix them: XML well-formedness, the OASIS schema, the
CAP 1.2 rules the schema misses, the IPAWS v1.0 profile (only when `<code>` says IPAWSv1.0), and
last the signature (only when one is present, or when it is required). Each level has its own
exit code, so a script can tell "not CAP" from "CAP, but the signature is false".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alertd.channels.cap.message import CAP_NS, DSIG_NS, parse_cap_datetime
from alertd.channels.cap.signing import CapSignatureError, verify_cap
from alertd.channels.cap.validate import (
    check_levels,
    ipaws_recommendations,
    parse_untrusted,
)

LEVELS = ("xml", "schema", "cap", "ipaws", "signature")
# 1 is left to "cannot read the file" and 2 to usage errors, as argparse uses it.
EXIT_CODES = {"xml": 3, "schema": 4, "cap": 5, "ipaws": 6, "signature": 7}


@dataclass(frozen=True)
class Finding:
    level: str  # one of LEVELS
    status: str  # ok | FAIL | warning | skipped
    message: str

    @property
    def line(self) -> str:
        return f"{self.level}: {self.status}: {self.message}"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    signed: bool = False

    def add(self, level: str, status: str, message: str) -> None:
        self.findings.append(Finding(level, status, message))

    @property
    def failed_level(self) -> str | None:
        failed = [f.level for f in self.findings if f.status == "FAIL"]
        return min(failed, key=LEVELS.index) if failed else None

    @property
    def exit_code(self) -> int:
        level = self.failed_level
        return 0 if level is None else EXIT_CODES[level]

    def passed(self, level: str) -> bool:
        return not any(f.level == level and f.status == "FAIL" for f in self.findings)


def verify_document(
    xml: bytes,
    *,
    cert_pem: bytes | None = None,
    at_sent: bool = False,
    require_signature: bool = False,
    now: datetime | None = None,
) -> Report:
    """Check `xml` at every level; see the module docstring for the order."""
    report = Report()
    try:
        root = parse_untrusted(xml)
    except ValueError as exc:
        report.add("xml", "FAIL", str(exc))
        return report  # Nothing further can be read from a document that does not parse.
    report.add("xml", "ok", "well-formed")

    levels = check_levels(root)
    for level, label in (("schema", "valid against the OASIS CAP 1.2 schema"), ("cap", "")):
        errors = levels.get(level, [])
        for error in errors:
            report.add(level, "FAIL", error)
        if not errors:
            report.add(level, "ok", label or "follows the CAP 1.2 rules the schema cannot express")
    if "ipaws" in levels:
        for error in levels["ipaws"]:
            report.add("ipaws", "FAIL", error)
        if not levels["ipaws"]:
            report.add("ipaws", "ok", "follows the IPAWS v1.0 profile")
        for advice in ipaws_recommendations(root):
            report.add("ipaws", "warning", advice)
    elif root.tag == f"{{{CAP_NS}}}alert":
        report.add("ipaws", "skipped", "no <code>IPAWSv1.0</code>, so the profile does not apply")

    _check_signature(report, xml, root, cert_pem, at_sent, require_signature, now)
    return report


def _check_signature(
    report: Report,
    xml: bytes,
    root: Any,
    cert_pem: bytes | None,
    at_sent: bool,
    require_signature: bool,
    now: datetime | None,
) -> None:
    signatures = root.findall(f"{{{DSIG_NS}}}Signature")
    report.signed = bool(signatures)
    if not signatures:
        if require_signature:
            report.add("signature", "FAIL", "not signed, and --require-signature was given")
        else:
            report.add("signature", "skipped", "not signed (valid unsigned CAP)")
        return
    at = now
    when = "now"
    if at_sent:
        sent_text = (root.findtext(f"{{{CAP_NS}}}sent") or "").strip()
        try:
            at = parse_cap_datetime(sent_text)
        except ValueError as exc:
            report.add("signature", "FAIL", f"cannot read <sent> for --at-sent: {exc}")
            return
        when = f"at its sent time {sent_text}"
    try:
        verify_cap(xml, cert_pem, at=at)
    except CapSignatureError as exc:
        report.add("signature", "FAIL", f"{exc} (checked {when})")
        return
    signer = "the given certificate" if cert_pem else "the certificate embedded in the message"
    report.add("signature", "ok", f"verifies against {signer} (checked {when})")
