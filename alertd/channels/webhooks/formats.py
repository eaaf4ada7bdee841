"""What each endpoint receives, rendered from the Jinja2 templates in ``templates/webhooks/``:
per-language post texts sized for short-post (280) and long-post (500) platforms, and one JSON
template per chat format. The result is the exact bytes sent (and signed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from alertd.alerts.models import Version
from alertd.channels.webhooks.models import EVENT_OF_KIND
from alertd.settings import REPO_ROOT, Settings
from alertd.vocabulary import records_in_language

SHORT_LIMIT, LONG_LIMIT = 280, 500
# Telegram's caption limit; a longer caption is refused by the Bot API.
CAPTION_LIMIT = 1024
ELLIPSIS = "…"
_DETAIL_LEVELS = (2, 1, 0)
ENDED_KINDS = ("resolve", "cancel", "expire")


@dataclass(frozen=True)
class PhotoFile:
    data: bytes
    mime_type: str
    filename: str


@dataclass(frozen=True)
class Message:
    """One version, ready for one endpoint's language."""

    event: str
    kind: str
    context: dict[str, Any]
    short_text: str
    long_text: str
    photo_alt: str
    # Ended alerts carry no photo: a found child's picture should stop circulating.
    photo: PhotoFile | None


@cache
def _environment(root: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(root),
        # Plain text and JSON: values reach JSON through |tojson, never raw.
        autoescape=False,  # noqa: S701
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def _env() -> jinja2.Environment:
    return _environment(REPO_ROOT / "templates" / "webhooks")


def shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ELLIPSIS)]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:.") + ELLIPSIS


def _tidy(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line).strip()


def fitted_text(language: str, context: dict[str, Any], limit: int) -> str:
    """The most detailed text that fits; the link at the end is kept whole when cutting."""
    template = _env().get_template(f"{language}/post.txt.j2")
    text = ""
    for detail in _DETAIL_LEVELS:
        text = _tidy(template.render({**context, "detail": detail}))
        if len(text) <= limit:
            return text
    url = str(context["page_url"])
    body = text.removesuffix(url).rstrip()
    return shorten(body, limit - len(url) - 1) + "\n" + url


def public_urls(settings: Settings, public_id: str, identifier: str) -> dict[str, str]:
    base = settings.PUBLIC_URL.rstrip("/")
    return {"page_url": f"{base}/a/{public_id}", "cap_url": f"{base}/cap/{identifier}.xml"}


def build_message(
    settings: Settings,
    version: Version,
    public_id: str,
    language: str,
    photo: PhotoFile | None,
    photo_name: str | None,
) -> Message:
    content = version.content
    names = ", ".join(c.get("name") or "" for c in content.get("children") or [] if c.get("name"))
    ended = version.kind in ENDED_KINDS
    base = settings.PUBLIC_URL.rstrip("/")
    context: dict[str, Any] = {
        "event": EVENT_OF_KIND[version.kind],
        "kind": version.kind,
        "status": version.status,
        "msg_type": version.msg_type,
        "seq": version.seq,
        "identifier": version.identifier,
        "public_id": public_id,
        "sent_at": version.sent_at.isoformat(),
        "expires_at": version.expires_at.isoformat(),
        "fields": {k: v for k, v in content.items() if k != "criteria"},
        "language": language,
        "names": names,
        # The texts' words; "fields" above keeps the values as typed for machines.
        "children": records_in_language(content.get("children") or [], language),
        "vehicles": records_in_language(content.get("vehicles") or [], language),
        "last_seen_place": content.get("last_seen_place") or "",
        "direction_of_travel": content.get("direction_of_travel") or "",
        "tip_line": content.get("tip_line") or "",
        "photo_url": f"{base}/photos/{photo_name}" if photo_name and not ended else None,
        **public_urls(settings, public_id, version.identifier),
    }
    context["photo_alt"] = _tidy(_env().get_template(f"{language}/alt.txt.j2").render(context))
    context["short_text"] = fitted_text(language, context, SHORT_LIMIT)
    context["long_text"] = fitted_text(language, context, LONG_LIMIT)
    return Message(
        event=context["event"],
        kind=version.kind,
        context=context,
        short_text=context["short_text"],
        long_text=context["long_text"],
        photo_alt=context["photo_alt"],
        photo=None if ended else photo,
    )


def render_json(fmt: str, message: Message) -> bytes:
    """The body for a JSON format, as compact UTF-8: exactly these bytes are sent and signed."""
    rendered = _env().get_template(f"formats/{fmt}.json.j2").render(message.context)
    return json.dumps(json.loads(rendered), ensure_ascii=False, separators=(",", ":")).encode()
