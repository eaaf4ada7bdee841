"""The validator against real CAP traffic (/work/shared/cap/examples, see its SOURCES.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from alertd.channels.cap.message import CAP_NS
from alertd.channels.cap.validate import validate_cap

NS = {"cap": CAP_NS}
EXAMPLES = [
    "01-oasis-cap12-A4-amber-child-abduction-multilingual.xml",
    "02-oasis-cap12-A3-earthquake-update-references.xml",
    "03-ipaws-LAE-police-search-photo-wea-signed.xml",
    "04-ipaws-cancel-signed.xml",
    "05-ntwc-tsunami-cancellation-update-ipaws.xml",
    "06-canada-naad-cap-cp-update-signed.xml",
]
UPDATES_AND_CANCELS = [EXAMPLES[1], EXAMPLES[3], EXAMPLES[4], EXAMPLES[5]]


def broken_copy(path: Path, change: Callable[[Any], None]) -> bytes:
    root = etree.fromstring(path.read_bytes())
    change(root)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def test_every_shared_example_is_listed(examples_dir: Path) -> None:
    # A new example dropped into the folder should be added here, not silently ignored.
    assert sorted(p.name for p in examples_dir.glob("*.xml")) == EXAMPLES


@pytest.mark.parametrize("name", EXAMPLES)
def test_real_cap_messages_are_accepted(examples_dir: Path, name: str) -> None:
    # 05's signature body is elided; validate_cap does not check signatures, only schema + rules.
    assert validate_cap((examples_dir / name).read_bytes()) == []


def test_unclosed_polygon_is_rejected(examples_dir: Path) -> None:
    def drop_last_point(root: Any) -> None:
        polygon = root.find("cap:info/cap:area/cap:polygon", NS)
        polygon.text = " ".join(polygon.text.split()[:-1])

    xml = broken_copy(examples_dir / EXAMPLES[2], drop_last_point)

    assert any("polygon is not closed" in error for error in validate_cap(xml))


@pytest.mark.parametrize("name", [EXAMPLES[0], EXAMPLES[3]])
def test_z_time_in_sent_is_rejected(examples_dir: Path, name: str) -> None:
    def zulu(root: Any) -> None:
        root.find("cap:sent", NS).text = "2019-04-19T17:46:20Z"

    errors = validate_cap(broken_copy(examples_dir / name, zulu))

    assert any(
        error.startswith("sent: '2019-04-19T17:46:20Z' is not a CAP date-time") for error in errors
    )
    # The schema's pattern catches it too; both messages are kept so the cause is plain.
    assert any(error.startswith("schema:") for error in errors)


@pytest.mark.parametrize("name", UPDATES_AND_CANCELS)
def test_update_or_cancel_without_references_is_rejected(examples_dir: Path, name: str) -> None:
    def drop_references(root: Any) -> None:
        references = root.find("cap:references", NS)
        root.remove(references)

    errors = validate_cap(broken_copy(examples_dir / name, drop_references))

    assert any("must reference the earlier messages" in error for error in errors), errors
