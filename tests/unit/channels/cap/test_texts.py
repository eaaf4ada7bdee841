"""Texts a person would write: no "Call Call 911", no internal keys, limits counted as WEA
counts them, and a warning for text that looks like HTML."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.content import content_warnings
from alertd.alerts.models import Version
from alertd.alerts.text import call_phrase, summary_text
from alertd.channels.cap.builder import build_cap
from alertd.channels.cap.channel import build_document, cap_version_for
from alertd.channels.cap.message import CAP_NS
from alertd.channels.cap.validate import validate_cap
from alertd.channels.cap.wea import wea_length
from alertd.context import Context
from tests.support.factories import alert_body
from tests.unit.channels.cap.conftest import VersionFactory

NS = {"cap": CAP_NS}
THREE = {"languages": ["en-US", "es-US", "fr-FR"]}


def public_texts(xml: bytes) -> str:
    return " ".join(etree.fromstring(xml).itertext())


def parameters(info: Any) -> dict[str, str]:
    return {
        p.findtext("cap:valueName", namespaces=NS): p.findtext("cap:value", namespaces=NS)
        for p in info.findall("cap:parameter", NS)
    }


@pytest.mark.parametrize(
    ("tip_line", "expected"),
    [
        ("Call 911", {"en": "Call 911", "es": "Call 911", "fr": "Call 911"}),
        ("text TIPS to 55555", {"en": "Text TIPS to 55555", "es": "Text TIPS", "fr": "Text TIPS"}),
        ("Llame al 911.", {"es": "Llame al 911"}),
        (
            "1-800-555-0100",
            {"en": "Call 1-800-555-0100", "es": "Llame al 1-800", "fr": "Appelez le"},
        ),
    ],
)
def test_a_tip_line_that_starts_with_a_verb_is_not_prefixed_with_call(
    make_version: VersionFactory, tip_line: str, expected: dict[str, str]
) -> None:
    xml = build_cap(make_version(content_changes={**THREE, "tip_line": tip_line}))
    assert validate_cap(xml, strict=True) == []
    words = public_texts(xml).casefold()
    for doubled in ("call call", "call text", "llame al call", "appelez le call", "call llame"):
        assert doubled not in words
    for info in etree.fromstring(xml).findall("cap:info", NS):
        language = info.findtext("cap:language", namespaces=NS)[:2]
        cmam = parameters(info)["CMAMtext"]
        if language in expected:
            assert expected[language] in cmam, (language, cmam)


def test_call_phrase_follows_the_case_of_its_place_in_the_sentence() -> None:
    assert call_phrase("911", "Call") == "Call 911"
    assert call_phrase("Call 911.", "call") == "call 911"
    assert call_phrase("phone the tip line", "Call") == "Phone the tip line"
    # A place name that happens to start the tip line is not a verb.
    assert call_phrase("Springfield PD 555-0100", "Call") == "Call Springfield PD 555-0100"


def test_the_plain_text_summary_does_not_double_the_verb(ctx: Context, officer: Actor) -> None:
    # Tip lines are numbers since they were checked on entry; an older alert's may be words.
    alert = services.create_alert(ctx, alert_body(), by=officer)
    version = Version(
        content={**alert.content, "tip_line": "Call 911"}, kind="alert", status="Actual"
    )
    assert "Call 911" in summary_text(version)
    assert "Call Call" not in summary_text(version)


def test_no_internal_rule_set_key_reaches_public_text(
    ctx: Context, officer: Actor, supervisor: Actor
) -> None:
    alert = services.create_alert(
        ctx, alert_body(languages=["en-US", "es-US", "fr-FR"]), by=officer
    )
    services.submit_alert(ctx, alert.id, by=officer)
    services.approve_alert(ctx, alert.id, by=supervisor)
    with ctx.db.session() as session:
        version = session.query(Version).filter_by(alert_id=alert.id).one()
        cap_version = cap_version_for(ctx.settings, version, version.alert)
        xml = build_document(ctx.settings, cap_version)
        summary = summary_text(version)
    assert alert.jurisdiction == "us-doj"
    assert "us-doj" not in xml.decode() and "us-doj" not in summary
    longs = [parameters(i)["CMAMlongtext"] for i in etree.fromstring(xml).findall("cap:info", NS)]
    assert all("(AMBER Alert)" in text for text in longs), longs


def test_wea_limits_count_gsm_escapes_and_ucs2_units() -> None:
    assert wea_length("Plate ABC123") == 12
    assert wea_length("€5 [x]") == 9  # €, [ and ] each take an escape in GSM 03.38
    assert wea_length("á") == 1 and wea_length("a\u0301") == 1  # UCS-2, composed first
    assert wea_length("🙂") == 2  # outside the BMP: a surrogate pair in UCS-2


def test_phone_texts_fit_wea_limits_when_counted_in_wea_units(
    make_version: VersionFactory,
) -> None:
    # Brackets and euro signs take two units each, so a code-point count would overfill the phone.
    children = [{"name": "[Jane] {Doe} €" * 4, "age": 7}]
    vehicles = [{"make": "[Nissan]", "model": "{Versa}", "plate": "[6WCU986]"}]
    xml = build_cap(
        make_version(content_changes={**THREE, "children": children, "vehicles": vehicles})
    )
    assert validate_cap(xml, strict=True) == []
    for info in etree.fromstring(xml).findall("cap:info", NS):
        params = parameters(info)
        assert wea_length(params["CMAMtext"]) <= 90
        assert wea_length(params["CMAMlongtext"]) <= 360


def test_validation_counts_wea_units(make_version: VersionFactory) -> None:
    xml = build_cap(make_version())
    root = etree.fromstring(xml)
    for parameter in root.iterfind("cap:info/cap:parameter", NS):
        if parameter.findtext("cap:valueName", namespaces=NS) == "CMAMtext":
            parameter.find("cap:value", NS).text = "[" * 46  # 46 code points, 92 WEA units
    errors = validate_cap(etree.tostring(root))
    assert any("CMAMtext is 92 WEA characters" in e for e in errors), errors


def test_text_that_looks_like_html_is_warned_about() -> None:
    content = {
        "description": "Jane wore a <b>red</b> coat",
        "children": [{"name": "Jane &amp; Joe"}],
        "instruction": "Call if seen; age < 10 and > 5 is not a tag",
        "translations": {"es-US": {"description": "<script>x</script>"}},
        "areas": [{"description": "County", "polygon": [[1, 1]], "geocodes": {}}],
    }
    warnings = content_warnings(content, ipaws=False)
    assert set(warnings) == {"description", "children[0].name", "translations.es-US.description"}
    ipaws = content_warnings(content, ipaws=True)
    assert "areas[0].geocodes.SAME" in ipaws


def test_each_info_carries_known_values_in_its_own_language(
    make_version: VersionFactory,
) -> None:
    # given: a child with brown hair and green eyes, a blue car, in three languages
    content = {
        **THREE,
        "children": [
            {"name": "Jane Doe", "age": 7, "sex": "female", "hair": "brown", "eyes": "green"}
        ],
        "vehicles": [{"make": "Nissan", "model": "Versa", "colour": "blue", "plate": "6WCU986"}],
    }

    # when
    root = etree.fromstring(build_cap(make_version(content_changes=content)))

    # then: the same catalogues as the public page give each info its words
    text = {
        str(info.findtext("cap:language", namespaces=NS))[:2]: str(
            info.findtext("cap:description", namespaces=NS)
        )
        for info in root.findall("cap:info", NS)
    }
    assert "brown hair" in text["en"] and "blue" in text["en"]
    assert "cabello castaño" in text["es"] and "ojos verdes" in text["es"]
    assert "femenino" in text["es"] and "Nissan Versa azul" in text["es"]
    assert "blue" not in text["es"] and "brown" not in text["es"]
    assert "châtains" in text["fr"] and "bleue" in text["fr"]
