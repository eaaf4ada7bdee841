"""Interface text in the reader's language, from gettext catalogues (Flask-Babel).

The catalogues are the one source of every translated word: ``alertd/translations/<lang>/
LC_MESSAGES/messages.po``, extracted from the code and templates by ``pybabel`` with
``babel.cfg`` (``python3 dev.py translations``). The compiled ``.mo`` files are not committed:
the app compiles any that is missing or older than its ``.po`` when it starts, so a fresh clone
serves every language without a build step. The console speaks English; the public page speaks
the alert's language when a catalogue exists for it.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from flask import Flask
from flask_babel import Babel

TRANSLATIONS = Path(__file__).parent / "translations"
DEFAULT_LANGUAGE = "en"
# Languages with a catalogue, besides English, which the code and templates are written in.
CATALOGUES = ("es", "fr")


def primary_subtag(language: str) -> str:
    """`fr-FR` -> `fr`: picks a catalogue or a template folder."""
    return language.split("-", 1)[0].lower()


def N_(message: str) -> str:  # noqa: N802 - the name pybabel extracts by default
    """Marks an English message for extraction where it cannot be translated yet (no reader's
    language is known there); it is translated where it is shown."""
    return message


def catalogue_language(primary_subtag: str) -> str:
    """The interface language for an alert language's primary subtag: its own when a
    catalogue exists, else English."""
    return primary_subtag if primary_subtag in CATALOGUES else DEFAULT_LANGUAGE


def compile_catalogues(root: Path = TRANSLATIONS) -> list[Path]:
    """Compile every ``.po`` whose ``.mo`` is missing or older; return those written. Each is
    written beside and renamed into place, so a second process starting at the same moment
    reads either the old file or the new one, never half of one."""
    written = []
    for po in sorted(root.glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source)
        partial = mo.with_name(f"{mo.name}.{os.getpid()}.partial")
        with partial.open("wb") as target:
            write_mo(target, catalog)
        partial.replace(mo)
        written.append(mo)
    return written


@cache
def translations(language: str) -> NullTranslations:
    """The catalogue for a language tag (``es-US`` reads ``es``), outside any request: CAP and
    SMS texts are built by workers. English, or a language without a catalogue, gets the
    code's own words."""
    chosen = catalogue_language(language.split("-")[0].lower())
    if chosen == DEFAULT_LANGUAGE:
        return NullTranslations()
    compile_catalogues()
    return Translations.load(str(TRANSLATIONS), [chosen])


def init_i18n(app: Flask) -> None:
    compile_catalogues()
    # The console is English; the public page picks its language with force_locale.
    Babel(
        app,
        default_locale=DEFAULT_LANGUAGE,
        default_translation_directories=str(TRANSLATIONS),
        locale_selector=lambda: DEFAULT_LANGUAGE,
    )


def with_article(noun: str) -> str:
    """``noun`` after its English indefinite article: "an operator", "an admin", "a supervisor".
    The console's nouns (roles, kinds of thing) start with a vowel letter exactly when they
    start with a vowel sound."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
