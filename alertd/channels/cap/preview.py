"""The CAP texts a reviewer checks before approval, per language: the headline and the two
Wireless Emergency Alert texts, counted as the phone network counts them (90 and 360). Built
from content not yet published, so the message is worded exactly as the builder will word it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from lxml import etree  # type: ignore[import-untyped]  # lxml ships no type information

from alertd.channels.base import PreviewText
from alertd.channels.cap.builder import HEADLINE_LIMIT, build_cap
from alertd.channels.cap.message import (
    CMAM_LONG_TEXT_LIMIT,
    CMAM_TEXT_LIMIT,
    CapReference,
    CapVersion,
)
from alertd.channels.cap.wea import wea_length
from alertd.db import utcnow
from alertd.localtime import to_local
from alertd.settings import Settings

_NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
_MSG_TYPES = {"alert": "Alert", "resolve": "Cancel", "cancel": "Cancel", "expire": "Cancel"}
# A stand-in for the identifier the version gets on approval; never published.
_PREVIEW_ID = "alertd.PREVIEW.0"


def cap_preview_texts(
    settings: Settings,
    content: Mapping[str, Any],
    *,
    kind: str,
    status: str,
    web_url: str,
    jurisdiction_name: str,
) -> list[PreviewText]:
    now = to_local(utcnow(), settings)
    expires = content.get("expires_at")
    sender = settings.CAP_SENDER
    version = CapVersion(
        identifier=_PREVIEW_ID,
        sender=sender,
        sender_name=settings.CAP_SENDER_NAME,
        sent=now,
        status=status,
        msg_type=_MSG_TYPES.get(kind, "Update"),
        kind=kind,
        # An Update must reference the message it updates; the real ones are filled on approval.
        references=() if kind == "alert" else (CapReference(sender, "alertd.PREVIEW.1", now),),
        expires=max(datetime.fromisoformat(expires), now) if expires else now + timedelta(hours=1),
        content=content,
        web_url=web_url,
        jurisdiction_name=jurisdiction_name,
        source=settings.CAP_SOURCE,
        ipaws=settings.CAP_IPAWS,
    )
    root = etree.fromstring(build_cap(version))
    texts: list[PreviewText] = []
    for info in root.findall("cap:info", _NS):
        language = info.findtext("cap:language", "", _NS)
        headline = info.findtext("cap:headline", "", _NS)
        texts.append(
            PreviewText(language, "CAP headline", headline, len(headline), limit=HEADLINE_LIMIT)
        )
        params = {
            p.findtext("cap:valueName", "", _NS): p.findtext("cap:value", "", _NS)
            for p in info.findall("cap:parameter", _NS)
        }
        for name, label, limit in (
            ("CMAMtext", "WEA text", CMAM_TEXT_LIMIT),
            ("CMAMlongtext", "WEA long text", CMAM_LONG_TEXT_LIMIT),
        ):
            if name in params:
                text = params[name]
                texts.append(PreviewText(language, label, text, wea_length(text), limit=limit))
    return texts
