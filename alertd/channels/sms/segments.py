"""How many SMS segments a text takes (DOMAIN.md section 5; 3GPP TS 23.038 and 23.040).

GSM-7 carries 160 characters in one segment, 153 per part when split; the characters of the
extension table (``^{}\\[~]|€`` and form feed) take two slots, and never straddle two parts. A
single character outside GSM-7 switches the whole text to UCS-2: 70 UTF-16 units in one segment,
67 per part, and a character outside the Basic Multilingual Plane (an emoji) takes two units that
are never split either.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7, UCS2 = "GSM-7", "UCS-2"
# (units in a single segment, units per part of a split text)
LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True)
class SegmentCount:
    encoding: str
    # Characters as a person counts them (code points).
    characters: int
    # Slots (GSM-7 septets) or UTF-16 units the text takes.
    units: int
    segments: int


def _units(text: str) -> tuple[str, list[int]]:
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        return GSM7, [2 if c in GSM7_EXTENSION else 1 for c in text]
    return UCS2, [2 if ord(c) > 0xFFFF else 1 for c in text]


def count_segments(text: str) -> SegmentCount:
    encoding, sizes = _units(text)
    single, part = LIMITS[encoding]
    total = sum(sizes)
    if total == 0:
        return SegmentCount(encoding, 0, 0, 0)
    if total <= single:
        return SegmentCount(encoding, len(text), total, 1)
    # Pack greedily: a two-unit character that does not fit starts the next part.
    segments, used = 1, 0
    for size in sizes:
        if used + size > part:
            segments, used = segments + 1, 0
        used += size
    return SegmentCount(encoding, len(text), total, segments)
