from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from lxml import etree

from alertd.channels.cap.builder import build_cap
from alertd.channels.cap.message import CAP_NS, CapReference, CapVersion
from alertd.channels.cap.validate import (
    CapValidationError,
    check_references_complete,
    ensure_valid_cap,
    validate_cap,
)

NS = {"cap": CAP_NS}
VersionFactory = Callable[..., CapVersion]
Mutation = Callable[[Any], None]


@pytest.fixture
def valid_xml(make_version: VersionFactory) -> bytes:
    # An Update in two languages, so that every rule has something to break.
    base = make_version()
    earlier = CapReference(base.sender, "alertd.A1B2C3D4.1", base.sent - timedelta(minutes=30))
    version = make_version(
        identifier="alertd.A1B2C3D4.2",
        msg_type="Update",
        kind="update",
        references=(earlier,),
        content_changes={"languages": ["en-US", "fr-FR"]},
    )
    return build_cap(version)


def mutated(xml: bytes, mutation: Mutation) -> bytes:
    root = etree.fromstring(xml)
    mutation(root)
    return bytes(etree.tostring(root))


def set_text(path: str, value: str) -> Mutation:
    def mutation(root: Any) -> None:
        for element in root.findall(path, NS):
            element.text = value

    return mutation


def remove(path: str) -> Mutation:
    def mutation(root: Any) -> None:
        for element in root.findall(path, NS):
            element.getparent().remove(element)

    return mutation


def set_parameter(name: str, value: str) -> Mutation:
    def mutation(root: Any) -> None:
        for parameter in root.findall("cap:info/cap:parameter", NS):
            if parameter.findtext("cap:valueName", namespaces=NS) == name:
                parameter.find("cap:value", NS).text = value

    return mutation


def add_same_code(root: Any) -> None:
    for info in root.findall("cap:info", NS):
        code = etree.Element(f"{{{CAP_NS}}}eventCode")
        etree.SubElement(code, f"{{{CAP_NS}}}valueName").text = "SAME"
        etree.SubElement(code, f"{{{CAP_NS}}}value").text = "CDW"
        info.find("cap:eventCode", NS).addnext(code)


def first_info_category(root: Any) -> None:
    root.find("cap:info/cap:category", NS).text = "Safety"


def to_alert_without_info(root: Any) -> None:
    root.find("cap:msgType", NS).text = "Alert"
    remove("cap:references")(root)
    remove("cap:info")(root)


def self_reference(root: Any) -> None:
    identifier = root.findtext("cap:identifier", namespaces=NS)
    root.find(
        "cap:references", NS
    ).text = f"alerts@police.example.org,{identifier},2025-03-01T14:00:00-05:00"


BROKEN: list[tuple[str, Mutation, str]] = [
    (
        "Z time in sent",
        set_text("cap:sent", "2025-03-01T20:00:00Z"),
        "sent: '2025-03-01T20:00:00Z'",
    ),
    (
        "fraction in expires",
        set_text("cap:info/cap:expires", "2025-03-01T18:00:00.5-05:00"),
        "expires",
    ),
    ("comma as offset sign", set_text("cap:sent", "2025-03-01T15:00:00,05:00"), "sent:"),
    ("space in identifier", set_text("cap:identifier", "alertd 2"), "identifier 'alertd 2'"),
    ("comma in sender", set_text("cap:sender", "a,b"), "sender 'a,b' contains ','"),
    ("reference pair", set_text("cap:references", "alerts@x,alertd.1"), "not a sender,identifier"),
    (
        "reference with Z time",
        set_text("cap:references", "alerts@x,alertd.1,2025-03-01T14:00:00Z"),
        "not a CAP date-time",
    ),
    ("reference to itself", self_reference, "points at this message itself"),
    ("update without references", remove("cap:references"), "must reference"),
    ("alert without info", to_alert_without_info, "needs at least one <info>"),
    (
        "open polygon",
        set_text("cap:info/cap:area/cap:polygon", "34,-118 34.1,-118 34.1,-118.1 34.2,-118"),
        "not closed",
    ),
    ("three-point polygon", set_text("cap:info/cap:area/cap:polygon", "1,1 2,2 1,1"), "at least 4"),
    (
        "latitude out of range",
        set_text("cap:info/cap:area/cap:polygon", "91,-118 34.1,-118 34.1,-118.1 91,-118"),
        "outside lat",
    ),
    ("polygon garbage", set_text("cap:info/cap:area/cap:polygon", "north of town"), "not lat,lon"),
    ("circle without radius", set_text("cap:info/cap:area/cap:circle", "34.05,-118.05"), "circle"),
    ("circle with nan", set_text("cap:info/cap:area/cap:circle", "nan,-118 5"), "circle"),
    ("categories differ", first_info_category, "disagree on category"),
    ("two SAME codes under IPAWS", add_same_code, "one SAME eventCode, found 2"),
    (
        "expires before sent",
        set_text("cap:info/cap:expires", "2025-03-01T14:00:00-05:00"),
        "before sent",
    ),
    ("IPAWS without expires", remove("cap:info/cap:expires"), "IPAWS needs <expires>"),
    ("IPAWS without area", remove("cap:info/cap:area"), "IPAWS needs at least one <area>"),
    ("CMAMtext of 91", set_parameter("CMAMtext", "x" * 91), "CMAMtext is 91 WEA characters"),
    ("CMAMlongtext of 361", set_parameter("CMAMlongtext", "x" * 361), "CMAMlongtext is 361"),
]


def test_built_message_is_valid(valid_xml: bytes) -> None:
    assert validate_cap(valid_xml) == []
    assert validate_cap(valid_xml, strict=True) == []


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [pytest.param(mutation, expected, id=name) for name, mutation, expected in BROKEN],
)
def test_each_broken_rule_is_reported(valid_xml: bytes, mutation: Mutation, expected: str) -> None:
    errors = validate_cap(mutated(valid_xml, mutation))

    assert errors, "the broken document was accepted"
    assert any(expected in error for error in errors), errors


def test_event_codes_that_differ_between_languages_are_reported(valid_xml: bytes) -> None:
    def second_info_other_code(root: Any) -> None:
        root.findall("cap:info", NS)[1].find("cap:eventCode/cap:value", NS).text = "CDW"

    errors = validate_cap(mutated(valid_xml, second_info_other_code))

    assert any("disagree on eventCode" in error for error in errors), errors


def test_missing_same_code_under_ipaws_is_an_error_only_when_strict(valid_xml: bytes) -> None:
    xml = mutated(valid_xml, remove("cap:info/cap:eventCode"))

    assert validate_cap(xml) == []
    assert any("exactly one SAME" in error for error in validate_cap(xml, strict=True))


def test_expires_equal_to_sent_is_allowed(valid_xml: bytes) -> None:
    sent = etree.fromstring(valid_xml).findtext("cap:sent", namespaces=NS)

    assert validate_cap(mutated(valid_xml, set_text("cap:info/cap:expires", sent))) == []


def test_schema_errors_are_reported_with_a_line(valid_xml: bytes) -> None:
    errors = validate_cap(mutated(valid_xml, set_text("cap:status", "Maybe")))

    assert any(error.startswith("schema: line") and "status" in error for error in errors), errors


def test_not_well_formed_and_not_cap_are_reported() -> None:
    assert validate_cap(b"<alert>")[0].startswith("not well-formed XML")
    assert "expected {urn:oasis" in validate_cap(b"<feed/>")[0]


def test_doctype_and_entities_are_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&e;</identifier></alert>'
    )

    assert validate_cap(bomb) == ["a DOCTYPE is not allowed in a CAP message"]


def test_ensure_valid_cap_raises_with_every_error(valid_xml: bytes) -> None:
    broken = mutated(valid_xml, set_text("cap:identifier", "a b"))
    broken = mutated(broken, remove("cap:references"))

    with pytest.raises(CapValidationError) as caught:
        ensure_valid_cap(broken)

    assert len(caught.value.errors) == 2
    assert isinstance(caught.value, ValueError)


def test_references_compare_instants_not_spellings(valid_xml: bytes) -> None:
    xml = mutated(
        valid_xml,
        set_text("cap:references", "alerts@x,alertd.1,2025-03-01T20:00:00-00:00"),
    )

    assert (
        check_references_complete(xml, [("alerts@x", "alertd.1", "2025-03-01T15:00:00-05:00")])
        == []
    )
    assert check_references_complete(xml, [("alerts@x", "alertd.0", "2025-03-01T15:00:00-05:00")])
