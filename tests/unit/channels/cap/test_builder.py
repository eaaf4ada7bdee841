from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from alertd.channels.cap.builder import (
    TEMPLATES_DIR,
    build_cap,
    format_cap_datetime,
    parse_cap_datetime,
    shorten,
)
from alertd.channels.cap.message import CAP_NS, CapReference, CapVersion
from alertd.channels.cap.validate import (
    CapValidationError,
    check_references_complete,
    validate_cap,
)

NS = {"cap": CAP_NS}
# Fixtures come from this folder's conftest.py; importing it as a module would clash with other
# folders' conftest files, so only the type is repeated here.
VersionFactory = Callable[..., CapVersion]


def parse(xml: bytes) -> Any:
    return etree.fromstring(xml)


def text(node: Any, path: str) -> str:
    found = node.find(path, NS)
    assert found is not None, f"{path} missing"
    return str(found.text)


def parameters(info: Any) -> dict[str, str]:
    return {
        text(p, "cap:valueName"): text(p, "cap:value") for p in info.findall("cap:parameter", NS)
    }


def earlier(make_version: VersionFactory, number: int, minutes: int) -> CapReference:
    version = make_version()
    return CapReference(
        version.sender, f"alertd.A1B2C3D4.{number}", version.sent - timedelta(minutes=minutes)
    )


def test_alert_carries_the_child_abduction_values(make_version: VersionFactory) -> None:
    # given
    version = make_version()

    # when
    xml = build_cap(version)

    # then
    assert validate_cap(xml, strict=True) == []
    alert = parse(xml)
    assert text(alert, "cap:identifier") == "alertd.A1B2C3D4.1"
    assert text(alert, "cap:sent") == "2025-03-01T15:00:00-05:00"
    assert text(alert, "cap:msgType") == "Alert"
    assert text(alert, "cap:scope") == "Public"
    assert text(alert, "cap:code") == "IPAWSv1.0"
    assert alert.find("cap:references", NS) is None
    (info,) = alert.findall("cap:info", NS)
    assert text(info, "cap:category") == "Rescue"
    assert text(info, "cap:event") == "Child Abduction Emergency"
    values = [
        text(info, f"cap:{name}") for name in ("responseType", "urgency", "severity", "certainty")
    ]
    assert values == ["Monitor", "Immediate", "Severe", "Likely"]
    assert text(info, "cap:eventCode/cap:valueName") == "SAME"
    assert text(info, "cap:eventCode/cap:value") == "CAE"
    assert text(info, "cap:expires") == "2025-03-01T18:00:00-05:00"
    assert text(info, "cap:contact") == "1-800-555-0100"
    assert text(info, "cap:web") == "https://alerts.example.org/a/A1B2C3D4"
    assert parameters(info)["EAS-ORG"] == "CIV"


def test_phone_text_names_the_child_vehicle_and_tip_line(make_version: VersionFactory) -> None:
    info = parse(build_cap(make_version())).find("cap:info", NS)

    cmam = parameters(info)["CMAMtext"]

    assert cmam.startswith("Child abduction alert")
    for fact in ("Emma Smith", "7", "Red", "Ford", "ABC123", "1-800-555-0100"):
        assert fact in cmam
    assert "Main Street park" in parameters(info)["CMAMlongtext"]


def test_non_ipaws_message_has_no_ipaws_code_or_eas_org(make_version: VersionFactory) -> None:
    xml = build_cap(make_version(ipaws=False))

    alert = parse(xml)
    assert alert.find("cap:code", NS) is None
    assert "EAS-ORG" not in parameters(alert.find("cap:info", NS))
    assert validate_cap(xml) == []


def test_update_references_every_earlier_message(make_version: VersionFactory) -> None:
    # given two earlier messages, one of them sent in UTC
    first = earlier(make_version, 1, 60)
    second = CapReference(
        first.sender, "alertd.A1B2C3D4.2", datetime(2025, 3, 1, 19, 30, tzinfo=UTC)
    )
    version = make_version(
        identifier="alertd.A1B2C3D4.3", msg_type="Update", kind="update", references=(first, second)
    )

    # when
    xml = build_cap(version)

    # then
    assert validate_cap(xml, strict=True) == []
    assert text(parse(xml), "cap:references") == (
        "alerts@police.example.org,alertd.A1B2C3D4.1,2025-03-01T14:00:00-05:00 "
        "alerts@police.example.org,alertd.A1B2C3D4.2,2025-03-01T19:30:00-00:00"
    )
    expected = [(r.sender, r.identifier, format_cap_datetime(r.sent)) for r in (first, second)]
    assert check_references_complete(xml, expected) == []


def test_check_references_complete_names_a_forgotten_message(make_version: VersionFactory) -> None:
    first = earlier(make_version, 1, 60)
    xml = build_cap(
        make_version(identifier="x.3", msg_type="Update", kind="update", references=(first,))
    )

    missing = ("alerts@police.example.org", "alertd.A1B2C3D4.2", "2025-03-01T14:30:00-05:00")
    problems = check_references_complete(xml, [missing])

    assert problems == [
        "references is missing "
        "alerts@police.example.org,alertd.A1B2C3D4.2,2025-03-01T14:30:00-05:00"
    ]


def test_resolve_is_an_all_clear_without_the_photo(make_version: VersionFactory) -> None:
    version = make_version(
        identifier="alertd.A1B2C3D4.2",
        msg_type="Update",
        kind="resolve",
        references=(earlier(make_version, 1, 30),),
    )

    xml = build_cap(version)

    assert validate_cap(xml, strict=True) == []
    info = parse(xml).find("cap:info", NS)
    values = [
        text(info, f"cap:{name}") for name in ("responseType", "urgency", "severity", "certainty")
    ]
    assert values == ["AllClear", "Past", "Minor", "Observed"]
    assert info.find("cap:resource", NS) is None
    assert "found" in text(info, "cap:headline")
    assert "found" in parameters(info)["CMAMtext"]


@pytest.mark.parametrize(("kind", "word"), [("cancel", "cancelled"), ("expire", "expired")])
def test_cancel_keeps_an_info_per_language_saying_it_ended(
    make_version: VersionFactory, kind: str, word: str
) -> None:
    # given a Cancel in two languages
    version = make_version(
        identifier="alertd.A1B2C3D4.2",
        msg_type="Cancel",
        kind=kind,
        references=(earlier(make_version, 1, 30),),
        content_changes={"languages": ["en-US", "es-US"]},
    )

    # when
    xml = build_cap(version)

    # then
    assert validate_cap(xml, strict=True) == []
    english, spanish = parse(xml).findall("cap:info", NS)
    assert text(english, "cap:responseType") == "None"
    assert text(english, "cap:urgency") == "Past"
    assert word in text(english, "cap:headline")
    assert word in parameters(english)["CMAMtext"]
    assert text(spanish, "cap:language") == "es-US"
    assert "secuestro" in text(spanish, "cap:headline")


def test_each_language_gets_one_info_with_the_same_category_and_event_code(
    make_version: VersionFactory,
) -> None:
    # given English, French and Spanish, with a French translation of the free text
    version = make_version(
        content_changes={
            "languages": ["en-US", "fr-FR", "es-US"],
            "translations": {"fr-FR": {"description": "Emma a été enlevée au parc."}},
        }
    )

    # when
    xml = build_cap(version)

    # then
    assert validate_cap(xml, strict=True) == []
    infos = parse(xml).findall("cap:info", NS)
    assert [text(i, "cap:language") for i in infos] == ["en-US", "fr-FR", "es-US"]
    assert {text(i, "cap:category") for i in infos} == {"Rescue"}
    assert {text(i, "cap:eventCode/cap:value") for i in infos} == {"CAE"}
    english, french, spanish = infos
    assert "taken from the park" in text(english, "cap:description")
    assert "enlevée au parc" in text(french, "cap:description")
    assert text(french, "cap:event") == "Alerte enlèvement d'enfant"
    assert parameters(french)["CMAMtext"].startswith("Alerte enlèvement")
    # No translation: Spanish gets the facts in Spanish, never the English paragraph.
    assert "taken from the park" not in text(spanish, "cap:description")
    assert "Menor: Emma Smith" in text(spanish, "cap:description")


def test_language_without_templates_falls_back_to_english(make_version: VersionFactory) -> None:
    xml = build_cap(make_version(content_changes={"languages": ["de-DE"]}))

    info = parse(xml).find("cap:info", NS)
    assert text(info, "cap:language") == "de-DE"
    assert text(info, "cap:headline").startswith("Child abduction alert")


def test_phone_texts_fit_their_limits_even_with_very_long_names(
    make_version: VersionFactory,
) -> None:
    # given three children with absurdly long names and a verbose vehicle
    long_name = "Maximiliana-Josefina " * 20
    children = [{"name": f"{long_name}{n}", "age": 5 + n, "clothing": "x " * 200} for n in range(3)]
    vehicles = [{"make": "Mercedes-Benz " * 10, "model": "Sprinter " * 10, "plate": "P" * 40}]
    version = make_version(
        content_changes={
            "children": children,
            "vehicles": vehicles,
            "last_seen_place": "somewhere " * 80,
            "languages": ["en-US", "fr-FR", "es-US"],
        }
    )

    # when
    xml = build_cap(version)

    # then
    assert validate_cap(xml, strict=True) == []
    for info in parse(xml).findall("cap:info", NS):
        params = parameters(info)
        assert len(params["CMAMtext"]) <= 90
        assert len(params["CMAMlongtext"]) <= 360
        # The tip line survives: names are shortened before anything is cut off the end.
        assert "1-800-555-0100" in params["CMAMtext"]
        assert "1-800-555-0100" in params["CMAMlongtext"]
        assert len(text(info, "cap:headline")) <= 160


def test_photo_resource_has_size_uri_and_digest(make_version: VersionFactory) -> None:
    info = parse(build_cap(make_version())).find("cap:info", NS)

    resource = info.find("cap:resource", NS)

    assert [etree.QName(child).localname for child in resource] == [
        "resourceDesc",
        "mimeType",
        "size",
        "uri",
        "digest",
    ]
    assert text(resource, "cap:size") == "48213"
    assert text(resource, "cap:digest") == "3f786850e387550fdab836ed7e6dc881de23001b"


def test_area_polygon_is_closed_and_written_in_fixed_notation(make_version: VersionFactory) -> None:
    area = {
        "description": "Tiny triangle",
        "polygon": [[0.00001, -118.0], [34.1, -118.0], [34.1, -118.1]],
        "circle": {"lat": 34.05, "lon": -118.05, "radius_km": 2.5},
        "geocodes": {"SAME": ["006037", "006059"]},
    }
    xml = build_cap(make_version(content_changes={"areas": [area]}))

    element = parse(xml).find("cap:info/cap:area", NS)

    assert text(element, "cap:polygon") == "0.00001,-118 34.1,-118 34.1,-118.1 0.00001,-118"
    assert text(element, "cap:circle") == "34.05,-118.05 2.5"
    assert [text(g, "cap:value") for g in element.findall("cap:geocode", NS)] == [
        "006037",
        "006059",
    ]


def test_xml_special_characters_survive_a_round_trip(make_version: VersionFactory) -> None:
    name = 'Ann <b>&amp; "Bo" ]]> O\'Neil'
    xml = build_cap(
        make_version(content_changes={"children": [{"name": name, "age": 9}], "vehicles": []})
    )

    assert validate_cap(xml, strict=True) == []
    info = parse(xml).find("cap:info", NS)
    assert name in text(info, "cap:description")


def test_exercise_is_labelled_in_the_phone_text(make_version: VersionFactory) -> None:
    xml = build_cap(make_version(status="Exercise"))

    info = parse(xml).find("cap:info", NS)
    assert parameters(info)["CMAMtext"].startswith("EXERCISE: ")
    assert text(info, "cap:headline").startswith("EXERCISE: ")


def test_inconsistent_kind_and_message_type_is_refused(make_version: VersionFactory) -> None:
    with pytest.raises(ValueError, match="does not go with msgType"):
        build_cap(make_version(kind="resolve", msg_type="Alert"))


def test_identifier_with_a_space_is_refused(make_version: VersionFactory) -> None:
    with pytest.raises(CapValidationError) as caught:
        build_cap(make_version(identifier="alertd 1"))
    assert any("identifier" in error for error in caught.value.errors)


def test_update_without_references_is_refused(make_version: VersionFactory) -> None:
    with pytest.raises(CapValidationError, match="must reference"):
        build_cap(make_version(msg_type="Update", kind="update"))


def test_forbidden_control_character_is_refused_by_name(make_version: VersionFactory) -> None:
    with pytest.raises(ValueError, match=r"U\+0007 at position 4"):
        build_cap(make_version(content_changes={"last_seen_place": "park\x07"}))


@pytest.mark.parametrize(
    ("moment", "written"),
    [
        (datetime(2025, 3, 1, 20, 0, 0, 999_999, tzinfo=UTC), "2025-03-01T20:00:00-00:00"),
        (
            datetime(2025, 3, 1, 21, 0, tzinfo=timezone(timedelta(hours=1))),
            "2025-03-01T21:00:00+01:00",
        ),
        (
            datetime(2025, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
            "2025-03-01T09:30:00-09:30",
        ),
    ],
)
def test_cap_datetime_has_offset_no_fraction_and_utc_as_minus_zero(
    moment: datetime, written: str
) -> None:
    assert format_cap_datetime(moment) == written
    assert parse_cap_datetime(written) == moment.replace(microsecond=0)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_cap_datetime(datetime(2025, 3, 1, 12, 0))  # naive on purpose


@pytest.mark.parametrize(
    "value",
    [
        "2025-03-01T20:00:00Z",
        "2025-03-01T20:00:00.5-00:00",
        "2025-03-01T20:00:00,00:00",
        "2025-03-01",
    ],
)
def test_parse_cap_datetime_refuses_what_cap_forbids(value: str) -> None:
    with pytest.raises(ValueError, match="not a CAP date-time"):
        parse_cap_datetime(value)


@pytest.mark.parametrize(
    ("source", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("Emma Smith and Liam Smith", 16, "Emma Smith and…"),
        ("Emma Smith, Liam", 12, "Emma Smith…"),
        ("Supercalifragilistic", 8, "Superca…"),
        ("Zoe\u0301 Zoe\u0301", 5, "Zoe\u0301…"),
        ("abcd\u0301e", 5, "abc…"),
    ],
)
def test_shorten_cuts_between_words_and_adds_an_ellipsis(
    source: str, limit: int, expected: str
) -> None:
    result = shorten(source, limit)

    assert result == expected
    assert len(result) <= limit


def test_minimal_content_builds_valid_cap(make_version: VersionFactory) -> None:
    version = make_version(ipaws=False, photo=None, content={"languages": ["en-US"]})

    xml = build_cap(version)

    assert validate_cap(xml, strict=True) == []
    info = parse(xml).find("cap:info", NS)
    assert parameters(info)["CMAMtext"] == "Child abduction alert. Call police"


def test_ipaws_message_without_area_is_refused(make_version: VersionFactory) -> None:
    with pytest.raises(CapValidationError, match="IPAWS needs at least one <area>"):
        build_cap(make_version(content_changes={"areas": []}))


@pytest.mark.parametrize("kind", ["update", "extend"])
def test_update_and_extend_are_live_updates(make_version: VersionFactory, kind: str) -> None:
    version = make_version(
        identifier="alertd.A1B2C3D4.2",
        msg_type="Update",
        kind=kind,
        references=(earlier(make_version, 1, 30),),
    )

    info = parse(build_cap(version)).find("cap:info", NS)

    assert text(info, "cap:responseType") == "Monitor"
    assert text(info, "cap:headline").startswith("Child abduction alert update: Emma Smith")
    assert info.find("cap:resource", NS) is not None


def test_templates_dir_can_be_overridden(make_version: VersionFactory, tmp_path: Path) -> None:
    # given a template folder with only an English headline of its own
    shipped = TEMPLATES_DIR / "cap" / "en"
    custom = tmp_path / "cap" / "en"
    custom.mkdir(parents=True)
    for template in shipped.glob("*.txt.j2"):
        (custom / template.name).write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
    (custom / "headline.txt.j2").write_text("Custom: {{ children[0].name }}", encoding="utf-8")

    # when
    xml = build_cap(make_version(), templates_dir=tmp_path)

    # then
    assert text(parse(xml).find("cap:info", NS), "cap:headline") == "Custom: Emma Smith"


@pytest.mark.parametrize("kind", ["resolve", "cancel", "expire"])
def test_an_ending_speaks_with_one_voice_in_every_language(
    make_version: VersionFactory, kind: str
) -> None:
    # given an alert in three languages whose live texts, in every language, say to call 911
    live = {
        "instruction": "Call 911 if you see Emma.",
        "description": "Emma was taken from the park.",
        "tip_line": "911",
        "languages": ["en-US", "es-US", "fr-FR"],
        "translations": {
            "es-US": {"description": "Emma fue llevada.", "instruction": "Llame al 911 si la ve."},
            "fr-FR": {"description": "Emma a été enlevée.", "instruction": "Appelez le 911."},
        },
    }
    version = make_version(
        identifier="alertd.A1B2C3D4.2",
        msg_type="Update" if kind == "resolve" else "Cancel",
        kind=kind,
        references=(earlier(make_version, 1, 30),),
        content_changes=live,
    )

    # when it ends
    xml = build_cap(version)

    # then each language says the ended text, and none tells anyone to call
    assert validate_cap(xml, strict=True) == []
    ended = {
        "en": "No action is needed. Thank you.",
        "es": "No es necesario hacer nada. Gracias.",
        "fr": "Aucune action n'est nécessaire. Merci.",
    }
    infos = parse(xml).findall("cap:info", NS)
    assert [text(i, "cap:language")[:2] for i in infos] == ["en", "es", "fr"]
    for info in infos:
        language = text(info, "cap:language")[:2]
        assert text(info, "cap:responseType") == ("AllClear" if kind == "resolve" else "None")
        assert text(info, "cap:instruction") == ended[language]
        assert info.find("cap:contact", NS) is None
        words = " ".join(info.itertext())
        assert "911" not in words, (language, words)
        assert "Emma fue llevada" not in words and "a été enlevée." not in words
