"""The post texts a reviewer checks before approval: the short (280) and long (500) posts in
each language the content is published in that has post templates, worded by the same
templates that word the posts."""

from __future__ import annotations

from datetime import datetime, timedelta

from alertd.alerts.models import Version
from alertd.channels.base import PreviewText
from alertd.channels.webhooks.formats import (
    LONG_LIMIT,
    SHORT_LIMIT,
    build_message,
)
from alertd.db import utcnow
from alertd.settings import REPO_ROOT, Settings

_MSG_TYPES = {"alert": "Alert", "resolve": "Cancel", "cancel": "Cancel", "expire": "Cancel"}


def _post_languages(content_languages: list[str]) -> list[str]:
    available = {p.name for p in (REPO_ROOT / "templates" / "webhooks").iterdir() if p.is_dir()}
    wanted = [lang.split("-")[0] for lang in content_languages] or ["en"]
    found = [lang for lang in dict.fromkeys(wanted) if lang in available]
    return found or ["en"]


def post_preview_texts(settings: Settings, version: Version, public_id: str) -> list[PreviewText]:
    now = utcnow()
    expires = version.content.get("expires_at")
    # A copy with the fields approval would give it; never added to a session.
    draft = Version(
        content=version.content,
        kind=version.kind,
        status=version.status,
        alert_id=version.alert_id,
        seq=0,
        identifier="alertd.PREVIEW.0",
        msg_type=_MSG_TYPES.get(version.kind, "Update"),
        sent_at=now,
        expires_at=datetime.fromisoformat(expires) if expires else now + timedelta(hours=1),
    )
    texts: list[PreviewText] = []
    for language in _post_languages(list(version.content.get("languages") or [])):
        message = build_message(settings, draft, public_id or "PREVIEW", language, None, None)
        texts.append(
            PreviewText(
                language,
                "short post",
                message.short_text,
                len(message.short_text),
                limit=SHORT_LIMIT,
            )
        )
        texts.append(
            PreviewText(
                language, "long post", message.long_text, len(message.long_text), limit=LONG_LIMIT
            )
        )
    return texts
