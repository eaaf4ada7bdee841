"""Whatever an operator types, the builder emits valid CAP or refuses with a clear message."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from alertd.channels.cap.builder import build_cap
from alertd.channels.cap.message import CAP_NS, CapVersion, check_xml_text
from alertd.channels.cap.validate import validate_cap
from alertd.channels.cap.wea import wea_length

NS = {"cap": CAP_NS}
VersionFactory = Callable[..., CapVersion]

FORBIDDEN_IN_XML = [chr(c) for c in range(0x20) if c not in (0x9, 0xA, 0xD)] + ["\ufffe", "\uffff"]
# Characters that have broken CAP producers: markup, CDATA end, quotes, emoji, right-to-left and
# bidi controls, combining marks, the XML-legal C1 controls and line/paragraph separators.
AWKWARD = [
    "<",
    ">",
    "&",
    "]]>",
    '"',
    "'",
    "&amp;",
    "😀",
    "👩🏽‍👧",
    "שלום",
    "مرحبا",
    "\u202e",
    "e\u0301",
    "\x85",
    "\u2028",
    "\t",
    "\r\n",
    "\r",
    "{{ x }}",
    "{% if %}",
]

xml_char = st.characters(exclude_categories=("Cs",), exclude_characters=FORBIDDEN_IN_XML)
xml_text = st.lists(
    st.one_of(st.text(xml_char, max_size=30), st.sampled_from(AWKWARD)), max_size=8
).map("".join)


@settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    name=xml_text,
    description=xml_text,
    place=xml_text,
    clothing=xml_text,
    suspect=xml_text,
    make=xml_text,
    area=xml_text,
    tip_line=xml_text,
    second_language=st.sampled_from(["fr-FR", "es-US", "de-DE"]),
)
def test_any_xml_legal_text_builds_valid_cap(
    make_version: VersionFactory,
    name: str,
    description: str,
    place: str,
    clothing: str,
    suspect: str,
    make: str,
    area: str,
    tip_line: str,
    second_language: str,
) -> None:
    # given an alert whose free text is arbitrary
    version = make_version(
        content_changes={
            "children": [{"name": name, "age": 7, "clothing": clothing}, {"name": name}],
            "suspects": [{"name": suspect, "description": description}],
            "vehicles": [{"make": make, "colour": place, "plate": name}],
            "last_seen_place": place,
            "direction_of_travel": description,
            "tip_line": tip_line,
            "description": description,
            "instruction": clothing,
            "areas": [{"description": area, "geocodes": {"SAME": "006037"}}],
            "languages": ["en-US", second_language],
            "translations": {second_language: {"description": suspect}},
        }
    )

    # when
    xml = build_cap(version)

    # then
    assert validate_cap(xml, strict=True) == []
    root = etree.fromstring(xml)
    # Text goes in and comes out unchanged: escaping is lxml's job, not the templates'.
    assert root.findtext("cap:info/cap:area/cap:areaDesc", namespaces=NS) == area
    for info in root.findall("cap:info", NS):
        values = {
            p.findtext("cap:valueName", namespaces=NS): p.findtext("cap:value", namespaces=NS)
            for p in info.findall("cap:parameter", NS)
        }
        assert wea_length(values["CMAMtext"]) <= 90  # counted as WEA counts it
        assert wea_length(values["CMAMlongtext"]) <= 360


@settings(max_examples=100, deadline=None, database=None)
@given(st.text(xml_char))
def test_check_xml_text_accepts_every_xml_character(value: str) -> None:
    check_xml_text(value)


@settings(max_examples=100, deadline=None, database=None)
@given(
    before=st.text(xml_char, max_size=10),
    bad=st.sampled_from([*FORBIDDEN_IN_XML, "\ud800", "\udfff"]),
    after=st.text(max_size=10),
)
def test_check_xml_text_names_the_first_forbidden_character(
    before: str, bad: str, after: str
) -> None:
    with pytest.raises(ValueError, match=f"U\\+{ord(bad):04X} at position {len(before)} "):
        check_xml_text(before + bad + after)


def test_check_xml_text_message_is_readable() -> None:
    with pytest.raises(ValueError) as caught:
        check_xml_text("Emma\x0bSmith")

    assert str(caught.value).startswith("character U+000B at position 4 cannot appear in an XML")


def test_check_xml_text_accepts_tab_newline_and_carriage_return() -> None:
    check_xml_text("line one\r\n\tline two")
