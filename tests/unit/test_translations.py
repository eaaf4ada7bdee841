"""The gettext catalogues are the one source of translated text: every string the code and
templates mark is in each catalogue, translated, with the same placeholders; they compile; and
the plural and article helpers say "1 minute", "2 minutes", "an operator"."""

from __future__ import annotations

import ipaddress
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from flask import Flask
from flask_babel import force_locale, ngettext

from alertd.alerts.content import ContentErrors, parse_content
from alertd.alerts.criteria import load_rule_sets
from alertd.channels.webhooks.ssrf import refusal
from alertd.i18n import CATALOGUES, TRANSLATIONS, compile_catalogues, with_article
from alertd.settings import REPO_ROOT
from tests.support.factories import alert_body

_PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]")


def _extracted() -> set[tuple[str | None, str]]:
    with (REPO_ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = set()
    for _file, _line, message, _comments, context in extract_from_dir(
        str(REPO_ROOT), method_map, options_map
    ):
        singular = message[0] if isinstance(message, tuple) else message
        found.add((context, singular))
    return found


@pytest.mark.parametrize("language", CATALOGUES)
def test_every_marked_string_is_translated_with_its_placeholders(language: str) -> None:
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po)
    entries = {
        (m.context, m.id[0] if isinstance(m.id, tuple) else m.id): m for m in catalog if m.id
    }

    missing = _extracted() - set(entries)
    assert not missing, f"run python3 dev.py translations, then translate: {sorted(missing)}"
    for key, message in entries.items():
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings) and not message.fuzzy, f"{language}: {key} is not translated"
        wanted = set(_PLACEHOLDER.findall(ids[-1]))
        for string in strings:
            assert set(_PLACEHOLDER.findall(string)) <= wanted | set(
                _PLACEHOLDER.findall(ids[0])
            ), (language, key, string)


def test_catalogues_compile_when_missing_or_stale(tmp_path: Path) -> None:
    copy = tmp_path / "translations"
    shutil.copytree(TRANSLATIONS, copy, ignore=shutil.ignore_patterns("*.mo"))

    written = compile_catalogues(copy)

    assert sorted(p.parent.parent.name for p in written) == sorted(CATALOGUES)
    assert compile_catalogues(copy) == []  # Up to date: nothing rewritten.


@pytest.mark.parametrize(
    ("language", "n", "expected"),
    [
        ("en", 1, "1 minute"),
        ("en", 2, "2 minutes"),
        ("en", 0, "0 minutes"),
        ("es", 1, "1 minuto"),
        ("es", 5, "5 minutos"),
        ("fr", 1, "1 minute"),
        ("fr", 3, "3 minutes"),
    ],
)
def test_plurals_come_from_the_catalogue(app: Flask, language: str, n: int, expected: str) -> None:
    with app.test_request_context(), force_locale(language):
        assert ngettext("%(num)d minute", "%(num)d minutes", n) == expected


def test_roles_take_their_article() -> None:
    assert [with_article(r) for r in ("officer", "supervisor", "operator", "admin")] == [
        "an officer",
        "a supervisor",
        "an operator",
        "an admin",
    ]


def test_console_texts_with_a_count_or_a_noun_read_right_in_the_singular(app: Flask) -> None:
    """The plurals and articles that used to be written by hand (issue 11 item 7)."""
    now = datetime.now(UTC)
    with app.app_context():
        one_hour = parse_errors(max_hours=1, expires_at=now + timedelta(hours=5))
    assert one_hour["expires_at"] == "must be within 1 hour; extend the alert later instead"
    unspecified = ipaddress.ip_address("0.0.0.0")  # noqa: S104 - refused, never bound
    assert refusal(unspecified) == "0.0.0.0 is an unspecified address"
    assert refusal(ipaddress.ip_address("127.0.0.1")) == "127.0.0.1 is a loopback address"
    page = app.jinja_env.from_string(
        "{{ ngettext('%(num)d failure in a row', '%(num)d failures in a row', n) }}"
    )
    with app.test_request_context():
        assert page.render(n=1) == "1 failure in a row"
        assert page.render(n=2) == "2 failures in a row"


def parse_errors(max_hours: int, expires_at: datetime) -> dict[str, str]:
    try:
        parse_content(
            alert_body(expires_at=expires_at.isoformat()),
            rule_sets=load_rule_sets(REPO_ROOT / "config" / "criteria"),
            default_jurisdiction="us-doj",
            default_expires=expires_at,
            max_hours=max_hours,
        )
    except ContentErrors as errors:
        return errors.fields
    return {}
