"""What the CAP builder takes, plus the date-time and text rules builder and validator share."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"

# Which info values each kind of message carries. An ended alert keeps its info blocks so that
# broadcasters can read out "this alert is over" instead of silently dropping it.
ENDED_KINDS = frozenset({"resolve", "cancel", "expire"})
KINDS = frozenset({"alert", "update", "extend"}) | ENDED_KINDS
STATUSES = frozenset({"Actual", "Exercise", "Test"})
MSG_TYPES = frozenset({"Alert", "Update", "Cancel"})

CMAM_TEXT_LIMIT = 90
CMAM_LONG_TEXT_LIMIT = 360

_CAP_DATETIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})T(?P<time>\d{2}:\d{2}:\d{2})(?P<sign>[+-])(?P<hh>\d{2}):(?P<mm>\d{2})"
)


@dataclass(frozen=True)
class CapReference:
    sender: str
    identifier: str
    sent: datetime  # timezone-aware


@dataclass(frozen=True)
class CapPhoto:
    uri: str
    mime_type: str
    size: int
    sha1: str  # hex
    description: str = "Photo of the child"
    data: bytes | None = None  # given when small enough to inline as <derefUri>


@dataclass(frozen=True)
class CapVersion:
    identifier: str  # e.g. "alertd.A1B2C3D4.1"
    sender: str  # e.g. "alerts@police.example.org"
    sender_name: str  # e.g. "Example State Police"
    sent: datetime  # aware
    status: str  # Actual | Exercise | Test
    msg_type: str  # Alert | Update | Cancel
    kind: str  # alert | update | extend | resolve | cancel | expire
    references: tuple[CapReference, ...]
    expires: datetime  # aware
    content: Mapping[str, Any]  # the alert body
    web_url: str  # public alert page URL
    photo: CapPhoto | None = None
    jurisdiction_name: str = ""  # the rule set's public name, e.g. "AMBER Alert"
    source: str = ""  # <source>: the system or desk the message comes from
    ipaws: bool = False  # US IPAWS profile: <code>IPAWSv1.0</code>, EAS-ORG=CIV, one SAME code

    @property
    def ended(self) -> bool:
        return self.kind in ENDED_KINDS


def format_cap_datetime(dt: datetime) -> str:
    """Write `dt` as CAP wants it: `YYYY-MM-DDThh:mm:ss±hh:mm`, UTC as `-00:00`.

    Fractions of a second are dropped (truncated, never rounded up into the next second, so a
    message is never dated after it was made). Naive datetimes are refused because guessing a zone
    would put a wrong time on a public alert.
    """
    offset = dt.utcoffset()
    if offset is None:
        raise ValueError(f"CAP date-times must be timezone-aware, got naive {dt!r}")
    total = int(offset.total_seconds())
    if offset % timedelta(minutes=1):
        raise ValueError(f"CAP offsets are whole minutes; {dt.isoformat()} has {offset}")
    # CAP 1.2 section 3.3.2 writes UTC as -00:00; +00:00 is legal XML but peers choke on it.
    sign = "+" if total > 0 else "-"
    hours, minutes = divmod(abs(total) // 60, 60)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}"
        f"T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}{sign}{hours:02d}:{minutes:02d}"
    )


def parse_cap_datetime(value: str) -> datetime:
    """Read a strict CAP date-time; `Z`, fractions and missing offsets raise ValueError."""
    if not _CAP_DATETIME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a CAP date-time (YYYY-MM-DDThh:mm:ss±hh:mm, no Z, no fractions; "
            "UTC is written -00:00)"
        )
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a real date-time: {exc}") from None


def format_reference(ref: CapReference) -> str:
    return f"{ref.sender},{ref.identifier},{format_cap_datetime(ref.sent)}"


def _is_xml_char(code: int) -> bool:
    # The Char production of XML 1.0 (fifth edition), section 2.2.
    return (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


def check_xml_text(value: str) -> None:
    """Raise ValueError naming the first character XML 1.0 cannot carry.

    The input layer calls this on every free-text field so that an operator sees which character
    to remove, rather than a CAP build failing minutes later inside lxml.
    """
    for position, char in enumerate(value):
        code = ord(char)
        if not _is_xml_char(code):
            raise ValueError(
                f"character U+{code:04X} at position {position} cannot appear in an XML document "
                "(XML 1.0 forbids control characters other than tab, newline and carriage return, "
                "lone surrogates, U+FFFE and U+FFFF)"
            )
