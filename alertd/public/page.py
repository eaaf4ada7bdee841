"""The public alert page, ``/a/<public_id>``: what SMS and social posts link to.

It shows what the latest published CAP message says, in the reader's language (from
``Accept-Language``, or ``?lang=``), with the photo while the search is on, the vehicle, the tip
line, and the alert's state first. Everything an officer typed goes through Jinja's autoescape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Response, abort, render_template, request
from sqlalchemy import select

from alertd.alerts.models import ACTIVE, CANCELLED, EXPIRED, RESOLVED, Alert, Version
from alertd.alerts.text import child_phrase
from alertd.channels.cap.feeds import strong_etag
from alertd.channels.cap.message import CAP_NS, primary_subtag
from alertd.channels.cap.models import CapDocument
from alertd.channels.cap.validate import parse_untrusted
from alertd.db import utcnow
from alertd.public.links import base_url, public_page_path
from alertd.web.auth import ctx

PAGE_CACHE_CONTROL = "public, max-age=30"

# Interface text per primary language; English fills any gap.
LABELS: dict[str, dict[str, str]] = {
    "en": {
        "active": "ACTIVE ALERT",
        "updated": "ACTIVE ALERT (UPDATED)",
        "resolved": "RESOLVED: the child has been found",
        "cancelled": "CANCELLED",
        "expired": "EXPIRED: this alert is no longer active",
        "ended_note": "This alert has ended. Please stop sharing it.",
        "child": "Child",
        "age": "Age",
        "suspect": "Suspect",
        "vehicle": "Vehicle",
        "last_seen": "Last seen",
        "direction": "Direction of travel",
        "tip_line": "Tip line",
        "call": "If you see the child or the vehicle, call",
        "instruction": "What to do",
        "languages": "Other languages",
        "photo": "Photo of the child",
        "exercise": "EXERCISE",
        "test": "TEST MESSAGE",
        "not_real": "This is not a real alert.",
        "updated_at": "Last updated",
        "cap": "CAP message",
    },
    "es": {
        "active": "ALERTA ACTIVA",
        "updated": "ALERTA ACTIVA (ACTUALIZADA)",
        "resolved": "RESUELTA: el menor ha sido encontrado",
        "cancelled": "CANCELADA",
        "expired": "EXPIRADA: esta alerta ya no está activa",
        "ended_note": "Esta alerta ha terminado. Por favor, deje de compartirla.",
        "child": "Menor",
        "age": "Edad",
        "suspect": "Sospechoso",
        "vehicle": "Vehículo",
        "last_seen": "Visto por última vez",
        "direction": "Dirección",
        "tip_line": "Línea de información",
        "call": "Si ve al menor o el vehículo, llame al",
        "instruction": "Qué hacer",
        "languages": "Otros idiomas",
        "photo": "Foto del menor",
        "exercise": "SIMULACRO",
        "test": "MENSAJE DE PRUEBA",
        "not_real": "Esta no es una alerta real.",
        "updated_at": "Última actualización",
        "cap": "Mensaje CAP",
    },
    "fr": {
        "active": "ALERTE EN COURS",
        "updated": "ALERTE EN COURS (MISE À JOUR)",
        "resolved": "TERMINÉE : l'enfant a été retrouvé",
        "cancelled": "ANNULÉE",
        "expired": "EXPIRÉE : cette alerte n'est plus active",
        "ended_note": "Cette alerte est terminée. Merci de ne plus la partager.",
        "child": "Enfant",
        "age": "Âge",
        "suspect": "Suspect",
        "vehicle": "Véhicule",
        "last_seen": "Vu pour la dernière fois",
        "direction": "Direction",
        "tip_line": "Numéro à appeler",
        "call": "Si vous voyez l'enfant ou le véhicule, appelez le",
        "instruction": "Que faire",
        "languages": "Autres langues",
        "photo": "Photo de l'enfant",
        "exercise": "EXERCICE",
        "test": "MESSAGE DE TEST",
        "not_real": "Ceci n'est pas une vraie alerte.",
        "updated_at": "Dernière mise à jour",
        "cap": "Message CAP",
    },
}
LANGUAGE_NAMES = {"en": "English", "es": "Español", "fr": "Français"}


@dataclass(frozen=True)
class InfoText:
    headline: str
    description: str
    instruction: str
    contact: str


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


def info_text(xml: bytes | None, language: str) -> InfoText | None:
    """The headline, description, instruction and contact of the message's info block in
    `language`: the page says what the broadcasters received."""
    if xml is None:
        return None
    ns = {"cap": CAP_NS}
    root = parse_untrusted(xml)
    for info in root.findall("cap:info", ns):
        if (info.findtext("cap:language", "", ns) or "").strip() != language:
            continue
        return InfoText(
            *(
                (info.findtext(f"cap:{name}", "", ns) or "").strip()
                for name in ("headline", "description", "instruction", "contact")
            )
        )
    return None


def _fallback_text(content: Mapping[str, Any], language: str, first: bool) -> InfoText:
    translated = (content.get("translations") or {}).get(language) or {}
    return InfoText(
        # Who is missing; never the case reference, which is the police's, not the public's.
        headline=child_phrase(content),
        description=str(
            translated.get("description") or (content.get("description") if first else "") or ""
        ),
        instruction=str(
            translated.get("instruction") or (content.get("instruction") if first else "") or ""
        ),
        contact=str(content.get("tip_line") or ""),
    )


# Numbers on the page carry their unit; a bare "120, 23" helps nobody.
_UNITS = {"height_cm": " cm", "weight_kg": " kg"}


def _describe(record: Mapping[str, Any], fields: Sequence[str]) -> str:
    return ", ".join(
        f"{record[f]}{_UNITS.get(f, '')}" for f in fields if record.get(f) not in (None, "")
    )


def render_alert_page(public_id: str, requested_language: str) -> Response:
    # views imports this module for its route, so the helper is fetched at call time.
    from alertd.channels.cap.views import conditional

    context = ctx()
    settings = context.settings
    with context.db.session() as session:
        alert = session.execute(
            select(Alert).where(Alert.public_id == public_id)
        ).scalar_one_or_none()
        # A draft or a submitted alert was never published: the page must not exist yet.
        if alert is None or not alert.versions:
            abort(404)
        latest = alert.versions[-1]
        document = session.execute(
            select(CapDocument)
            .where(CapDocument.alert_id == alert.id)
            .order_by(CapDocument.version_id.desc())
            .limit(1)
        ).scalar_one_or_none()
        state = page_state(alert, latest)
        content = latest.content
        photo = latest.photo
        photo_path = f"/photos/{photo.sha256}.{photo.extension}" if photo else None
        sent_at: datetime = latest.sent_at
        status = latest.status

    languages = [str(lang) for lang in content.get("languages") or []] or ["en-US"]
    language = choose_language(languages, requested_language, list(request.accept_languages))
    labels = {**LABELS["en"], **LABELS.get(primary_subtag(language), {})}
    text = info_text(document.xml if document else None, language) or _fallback_text(
        content, language, language == languages[0]
    )
    ended = state in ("resolved", "cancelled", "expired")
    # Ended alerts drop the photo, as the CAP message does: it should stop circulating.
    show_photo = photo_path if photo_path and not ended else None
    page_url = base_url(settings) + public_page_path(public_id)
    children = [
        {
            "name": c.get("name") or "",
            "age": c.get("age"),
            "details": _describe(
                c, ("sex", "height_cm", "weight_kg", "hair", "eyes", "clothing", "marks")
            ),
        }
        for c in content.get("children") or []
    ]
    vehicles = [
        _describe(v, ("colour", "year", "make", "model", "plate", "plate_region"))
        for v in content.get("vehicles") or []
    ]
    suspects = [_describe(s, ("name", "description")) for s in content.get("suspects") or []]
    og_description = " ".join(text.description.split())[:300]
    html = render_template(
        "public/alert.html",
        lang=language,
        labels=labels,
        state=state,
        state_text=labels[state],
        ended=ended,
        status=status,
        text=text,
        children=children,
        vehicles=[v for v in vehicles if v],
        suspects=[s for s in suspects if s],
        last_seen_at=content.get("last_seen_at"),
        last_seen_place=content.get("last_seen_place"),
        direction=content.get("direction_of_travel"),
        tip_line=content.get("tip_line"),
        # Only a resolve note is public; versions cancelled before cancel reasons were kept out
        # of the content may still carry one, and the public sees the standard text instead.
        ending_note=content.get("ending_note") if state == "resolved" else None,
        photo_path=show_photo,
        og_image=base_url(settings) + show_photo if show_photo else None,
        og_title=text.headline or labels[state],
        og_description=og_description,
        page_url=page_url,
        cap_path=f"/cap/{document.identifier}.xml" if document else None,
        sent_at=sent_at,
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
