"""The segment counter against the GSM 03.38 tables and the UCS-2 limits."""

from __future__ import annotations

import gsm0338  # noqa: F401  # registers the "gsm03.38" codec: an independent check of the table
from hypothesis import given
from hypothesis import strategies as st

from alertd.channels.sms.segments import GSM7, GSM7_BASIC, GSM7_EXTENSION, UCS2, count_segments


def test_gsm7_limits() -> None:
    assert count_segments("").segments == 0
    assert count_segments("a" * 160).segments == 1
    assert count_segments("a" * 161).segments == 2
    assert count_segments("a" * 306).segments == 2
    assert count_segments("a" * 307).segments == 3
    one = count_segments("a" * 160)
    assert (one.encoding, one.characters, one.units) == (GSM7, 160, 160)


def test_two_slot_characters_count_twice_and_never_straddle_parts() -> None:
    assert count_segments("€" * 80).segments == 1
    assert count_segments("€" * 81).units == 162
    assert count_segments("€" * 81).segments == 2
    # 152 slots, then a two-slot character that does not fit the first part's 153.
    assert count_segments("a" * 152 + "{" + "a" * 10).segments == 2
    assert count_segments("a" * 152 + "{" + "a" * 152).segments == 3


def test_one_character_outside_gsm7_switches_the_whole_text_to_ucs2() -> None:
    assert count_segments("a" * 70).encoding == GSM7
    curly = count_segments("a" * 69 + "’")
    assert (curly.encoding, curly.segments) == (UCS2, 1)
    assert count_segments("a" * 70 + "È").segments == 2
    assert count_segments("a" * 133 + "È").segments == 2
    assert count_segments("a" * 134 + "È").segments == 3
    assert count_segments("😀" * 35).segments == 1
    assert count_segments("😀" * 36).units == 72
    # 33 emoji fill 66 units of a part; the 34th does not split, so it starts the next.
    assert count_segments("😀" * 34 + "a" * 3).segments == 2


@given(st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=400))
def test_gsm7_units_match_the_gsm0338_codec(text: str) -> None:
    assert count_segments(text).units == len(text.encode("gsm03.38"))
