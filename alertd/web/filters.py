"""Template helpers shared by every page."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from flask import Flask, current_app
from markupsafe import Markup, escape

from alertd.db import utcnow
from alertd.i18n import with_article
from alertd.localtime import to_local
from alertd.phones import dial_target

# What a time looks like on a page: local date and time, the zone's name and, away from UTC,
# its offset (abbreviations are ambiguous: IST is India's and Ireland's).
TIME_FORMAT = "%Y-%m-%d %H:%M:%S %Z"
OFFSET_FORMAT = " %z"


def _moment(value: datetime | str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def when(value: datetime | str | None) -> str:
    """A time in ALERTD_TIMEZONE, named: "2026-11-29 08:15:00 CST -0600", "... 14:15:00 UTC"."""
    moment = _moment(value)
    if moment is None:
        return ""
    settings: Any = current_app.extensions["alertd"].settings
    local = to_local(moment, settings)
    shown = local.strftime(TIME_FORMAT)
    return shown if local.tzname() == "UTC" else shown + local.strftime(OFFSET_FORMAT)


def when_tag(value: datetime | str | None) -> Markup:
    """The same, marked up so the console's script can show it in the browser's own zone."""
    moment = _moment(value)
    if moment is None:
        return Markup("")
    stamp = moment.astimezone(UTC).isoformat()
    return Markup('<time datetime="{}" data-local>{}</time>').format(stamp, escape(when(moment)))


def minutes_left(value: datetime) -> int:
    return int((value - utcnow()).total_seconds() // 60)


def new_idempotency_key() -> str:
    return secrets.token_urlsafe(18)


def register_filters(app: Flask) -> None:
    app.jinja_env.globals["new_idempotency_key"] = new_idempotency_key
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["when_tag"] = when_tag
    app.jinja_env.filters["with_article"] = with_article
    app.jinja_env.filters["tel_target"] = dial_target
    app.jinja_env.globals["minutes_left"] = minutes_left
    app.jinja_env.globals["now"] = utcnow
