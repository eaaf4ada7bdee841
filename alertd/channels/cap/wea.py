"""Counting Wireless Emergency Alert text the way the phone network carries it.

WEA text goes out over cell broadcast, which encodes it in the GSM 03.38 7-bit alphabet when
every character is in it (characters of the extension table, such as `€ [ ] { } ~ ^ | \\`, take
an escape and so count twice), and otherwise in UCS-2, where a character outside the Basic
Multilingual Plane (most emoji) takes two units. The 90 and 360 limits count these units, not
Python's code points: "Café [Main St]" is 16 units, not 14.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import gsm0338  # noqa: F401  # registers the "gsm03.38" codec


def wea_length(text: str) -> int:
    """How many WEA characters `text` takes (NFC first: a handset composes "e" + accent)."""
    text = unicodedata.normalize("NFC", text)
    try:
        return len(text.encode("gsm03.38"))
    except UnicodeEncodeError:
        return len(text.encode("utf-16-le")) // 2


def fit_wea(text: str, limit: int, shorten: Callable[[str, int], str]) -> str:
    """`text` cut at a word boundary (by `shorten(text, n)`) until it takes at most `limit`."""
    if wea_length(text) <= limit:
        return text
    cut = text
    for size in range(min(len(text), limit), 0, -1):
        cut = shorten(text, size)
        if wea_length(cut) <= limit:
            return cut
    return ""
