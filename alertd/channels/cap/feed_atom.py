"""The Atom feeds: the thin index of DOMAIN.md section 4 (``cap.atom``) and the same with each
CAP document embedded (``cap-full.atom``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from lxml import etree  # type: ignore[import-untyped]  # lxml ships no type information

from alertd.channels.cap.feed_summary import summarize
from alertd.channels.cap.feed_urls import document_url, feed_path, feed_title
from alertd.channels.cap.message import CAP_NS, format_cap_datetime
from alertd.channels.cap.models import CapDocument
from alertd.localtime import to_local
from alertd.public.links import base_url
from alertd.settings import Settings

ATOM_NS = "http://www.w3.org/2005/Atom"


def _rfc3339(moment: datetime) -> str:
    # Atom wants RFC 3339; "+00:00" rather than CAP's "-00:00", which RFC 3339 reads as
    # "offset unknown".
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _atom(name: str) -> str:
    return f"{{{ATOM_NS}}}{name}"


def _cap(name: str) -> str:
    return f"{{{CAP_NS}}}{name}"


def _text_element(parent: Any, tag: str, text: str, **attributes: str) -> Any:
    element = etree.SubElement(parent, tag, **attributes)
    element.text = text
    return element


def atom_feed(
    settings: Settings,
    scope: str,
    documents: Sequence[CapDocument],
    updated: datetime,
    *,
    full: bool = False,
) -> bytes:
    """The thin Atom index of DOMAIN.md section 4: one entry per live message whose id is the
    message's permanent URL, with the cap: summary pollers filter on before fetching it.

    `full=True` is the same feed with each entry's `content` the CAP document itself, for
    readers that do not follow links. It is written without re-indenting, so an embedded
    signed document keeps the exact bytes its signature covers.
    """
    self_url = base_url(settings) + feed_path(scope, "cap-full.atom" if full else "cap.atom")
    # The full feed declares cap: on each summary element, not on the root: lxml would otherwise
    # rewrite an embedded document's default namespace to that prefix, changing the bytes its
    # signature covers.
    feed = etree.Element(_atom("feed"), nsmap={None: ATOM_NS} if full else _ROOT_NSMAP)
    _text_element(feed, _atom("id"), self_url)
    _text_element(feed, _atom("title"), feed_title(settings, scope))
    _text_element(feed, _atom("updated"), _rfc3339(updated))
    author = etree.SubElement(feed, _atom("author"))
    _text_element(author, _atom("name"), settings.CAP_SENDER_NAME)
    etree.SubElement(feed, _atom("link"), rel="self", type="application/atom+xml", href=self_url)
    for document in documents:
        summary = document.summary
        url = document_url(settings, document.identifier)
        entry = etree.SubElement(feed, _atom("entry"))
        _text_element(entry, _atom("id"), url)
        _text_element(entry, _atom("title"), summary.get("headline") or document.identifier)
        _text_element(entry, _atom("updated"), _rfc3339(document.sent_at))
        _text_element(entry, _atom("published"), _rfc3339(document.sent_at))
        entry_author = etree.SubElement(entry, _atom("author"))
        _text_element(
            entry_author, _atom("name"), summary.get("sender_name") or settings.CAP_SENDER_NAME
        )
        etree.SubElement(
            entry, _atom("link"), rel="alternate", type="application/cap+xml", href=url
        )
        if summary.get("web"):
            etree.SubElement(
                entry, _atom("link"), rel="related", type="text/html", href=summary["web"]
            )
        _text_element(entry, _atom("summary"), summary.get("headline") or "")
        if full:
            content = etree.SubElement(entry, _atom("content"), type="application/cap+xml")
            content.append(etree.fromstring(document.xml, _PARSER))
        summary_elements = (
            ("identifier", document.identifier),
            ("event", summary.get("event", "")),
            # NWS-style readers read the category among the summary elements.
            ("category", _category(document)),
            ("status", document.status),
            ("msgType", document.msg_type),
            ("urgency", summary.get("urgency", "")),
            ("severity", summary.get("severity", "")),
            ("certainty", summary.get("certainty", "")),
            ("areaDesc", summary.get("area_desc", "")),
            ("sent", format_cap_datetime(to_local(document.sent_at, settings))),
            ("expires", format_cap_datetime(to_local(document.expires_at, settings))),
        )
        for name, value in summary_elements:
            element = etree.SubElement(entry, _cap(name), nsmap=_CAP_NSMAP if full else None)
            element.text = value
    body: bytes = etree.tostring(
        feed, xml_declaration=True, encoding="UTF-8", pretty_print=not full
    )
    return body


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)
_ROOT_NSMAP = {None: ATOM_NS, "cap": CAP_NS}
_CAP_NSMAP = {"cap": CAP_NS}


def _category(document: CapDocument) -> str:
    # Documents stored before the summary kept the category are read again for it.
    summary = document.summary
    if "category" not in summary:
        summary = summarize(document.xml)
    return str(summary.get("category") or "")
