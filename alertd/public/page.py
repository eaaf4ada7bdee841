"""The public alert page, ``/a/<public_id>``: what SMS and social posts link to.

It shows the latest published version in one of the alert's languages (the reader's, from
``?lang=`` or ``Accept-Language``), interface text and known values from the gettext catalogues
(alertd/i18n.py). On a phone's first screen: the banner and state, the child's name, age and
photo, the vehicle and plate, and a tap-to-call tip line; then each other fact once, labelled.
Everything an officer typed goes through Jinja's autoescape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from flask import Response, abort, render_template, request
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from alertd.alerts.models import ACTIVE, CANCELLED, EXPIRED, RESOLVED, Alert, Version
from alertd.alerts.text import child_phrase
from alertd.channels.base import PublicLink
from alertd.db import utcnow
from alertd.i18n import catalogue_language, primary_subtag, translations
from alertd.phones import dial_target
from alertd.public import facts
from alertd.public.links import base_url, public_page_path
from alertd.vocabulary import known_words, translate_value
from alertd.web.auth import ctx
from alertd.web.http_cache import conditional, strong_etag

PAGE_CACHE_CONTROL = "public, max-age=30"
LANGUAGE_NAMES = {"en": "English", "es": "Español", "fr": "Français"}


def state_text(state: str) -> str:
    """The line under the banner, in the page's locale."""
    texts: dict[str, str] = {
        "active": _("Active"),
        "updated": _("Active, updated"),
        "resolved": _("Resolved: the child has been found"),
        "cancelled": _("Cancelled"),
        "expired": _("Expired: this alert is no longer active"),
    }
    return texts[state]


def share_links(page_url: str, text: str) -> list[dict[str, str]]:
    """Plain links to share the page (no scripts, no trackers): each service's own share URL."""
    url, said = quote(page_url, safe=""), quote(text, safe="")
    return [
        {"name": "X", "href": f"https://x.com/intent/post?text={said}&url={url}"},
        {"name": "Facebook", "href": f"https://www.facebook.com/sharer/sharer.php?u={url}"},
        {"name": "WhatsApp", "href": f"https://wa.me/?text={quote(f'{text} {page_url}', safe='')}"},
        {"name": _("Email"), "href": f"mailto:?subject={said}&body={url}"},
    ]


@dataclass(frozen=True)
class OfficerText:
    description: str
    instruction: str


def choose_language(
    languages: Sequence[str], requested: str, accepted: Sequence[tuple[str, float]]
) -> str:
    """The alert language to show: an explicit ?lang= first, then Accept-Language in order of
    preference, matching a whole tag or, failing that, its primary subtag (``es`` -> ``es-US``)."""
    if not languages:
        return "en-US"
    wanted = [requested] if requested else []
    wanted += [tag for tag, quality in sorted(accepted, key=lambda a: -a[1]) if quality > 0]
    for tag in wanted:
        for language in languages:
            if language.lower() == tag.lower():
                return language
        for language in languages:
            if primary_subtag(language) == primary_subtag(tag):
                return language
    return languages[0]


def page_state(alert: Alert, latest: Version) -> str:
    if alert.state == RESOLVED:
        return "resolved"
    if alert.state == CANCELLED:
        return "cancelled"
    if alert.state == EXPIRED or (alert.state == ACTIVE and alert.expires_at <= utcnow()):
        return "expired"
    return "active" if latest.kind == "alert" else "updated"


def officer_text(content: Mapping[str, Any], language: str, first: bool) -> OfficerText:
    """What the officer wrote, in `language`: the page lists the facts itself, once each, so it
    does not show the CAP description, which repeats them for readers that only get text."""
    translated = (content.get("translations") or {}).get(language) or {}
    return OfficerText(
        *(
            str(translated.get(name) or (content.get(name) if first else "") or "")
            for name in ("description", "instruction")
        )
    )


def render_alert_page(public_id: str, requested_language: str) -> Response:
    context = ctx()
    with context.db.session() as session:
        alert = session.execute(
            select(Alert).where(Alert.public_id == public_id)
        ).scalar_one_or_none()
        # A draft or a submitted alert was never published: the page must not exist yet.
        if alert is None or not alert.versions:
            abort(404)
        latest = alert.versions[-1]
        # What the enabled channels publish about the alert (the CAP message), linked below.
        links: list[PublicLink] = [
            link
            for channel in context.channels.channels()
            for link in channel.public_links(context, session, alert.id)
        ]
        state = page_state(alert, latest)
        content = latest.content
        photo = latest.photo
        photo_path = f"/photos/{photo.sha256}.{photo.extension}" if photo else None
        sent_at: datetime = latest.sent_at
        alert_fields = {
            "state": state,
            "status": latest.status,
            "sent_at": sent_at,
            "photo_path": photo_path,
            "links": links,
            "program": _program(context.rule_sets, alert.jurisdiction),
        }

    languages = [str(lang) for lang in content.get("languages") or []] or ["en-US"]
    language = choose_language(languages, requested_language, list(request.accept_languages))
    text = officer_text(content, language, language == languages[0])
    with force_locale(catalogue_language(primary_subtag(language))):
        html = _render(public_id, alert_fields, content, text, language, languages)
    body = html.encode("utf-8")
    response = conditional(
        body,
        etag=strong_etag(body),
        last_modified=sent_at,
        content_type="text/html; charset=utf-8",
        cache_control=PAGE_CACHE_CONTROL,
    )
    response.headers["Content-Language"] = language
    # Caches must keep one copy per language, since the same URL answers in several.
    response.vary.add("Accept-Language")
    return response


def _program(rule_sets: Mapping[str, Any], jurisdiction: str) -> str:
    """The banner's name for the alert, the rule set's public name ("AMBER Alert")."""
    rule_set = rule_sets.get(jurisdiction)
    return str(rule_set.public_name) if rule_set is not None else ""


def _render(
    public_id: str,
    alert: Mapping[str, Any],
    content: Mapping[str, Any],
    text: OfficerText,
    language: str,
    languages: Sequence[str],
) -> str:
    catalogue = translations(language)
    state = alert["state"]
    program = translate_value(known_words(catalogue), "programme", alert["program"]) or _(
        "Child alert"
    )
    ended = state in ("resolved", "cancelled", "expired")
    # Ended alerts drop the photo, as the CAP message does: it should stop circulating.
    photo_path = alert["photo_path"] if not ended else None
    base = base_url(ctx().settings)
    page_url = base + public_page_path(public_id)
    # Who is missing, in words every language reads alike; the CAP headline repeats the vehicle
    # and plate the page shows just below, and the case reference is never the public's.
    headline = child_phrase(content) or _("Missing child")
    description = " ".join(text.description.split())[:300]
    tip_line = str(content.get("tip_line") or "")
    return render_template(
        "public/alert.html",
        lang=language,
        program=program,
        state=state,
        state_text=state_text(state),
        ended=ended,
        status=alert["status"],
        text=text,
        headline=headline,
        children=facts.children(catalogue, content),
        vehicles=facts.vehicles(catalogue, content),
        suspects=facts.suspects(catalogue, content),
        last_seen_at=content.get("last_seen_at"),
        last_seen_place=content.get("last_seen_place"),
        direction=content.get("direction_of_travel"),
        tip_line=tip_line,
        tip_dial=dial_target(tip_line) if tip_line else None,
        # Only a resolve note is public; versions cancelled before cancel reasons were kept out
        # of the content may still carry one, and the public sees the standard text instead.
        ending_note=content.get("ending_note") if state == "resolved" else None,
        photo_path=photo_path,
        og_image=base + photo_path if photo_path else None,
        og_title=f"{program}: {headline}" if headline else program,
        og_description=description,
        page_url=page_url,
        shares=[] if ended else share_links(page_url, f"{program.upper()}: {headline}"),
        links=alert["links"],
        sent_at=alert["sent_at"],
        others=[
            {
                "tag": other,
                "name": LANGUAGE_NAMES.get(primary_subtag(other), other),
                "href": f"{public_page_path(public_id)}?lang={other}",
            }
            for other in languages
            if other != language
        ],
    )
