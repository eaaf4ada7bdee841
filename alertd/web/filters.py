"""Template helpers shared by every page."""

from __future__ import annotations

import secrets
from datetime import datetime

from flask import Flask

from alertd.db import utcnow


def when(value: datetime | str | None) -> str:
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M:%S %z").replace("+0000", "UTC")


def minutes_left(value: datetime) -> int:
    return int((value - utcnow()).total_seconds() // 60)


def new_idempotency_key() -> str:
    return secrets.token_urlsafe(18)


def register_filters(app: Flask) -> None:
    app.jinja_env.globals["new_idempotency_key"] = new_idempotency_key
    app.jinja_env.filters["when"] = when
    app.jinja_env.globals["minutes_left"] = minutes_left
    app.jinja_env.globals["now"] = utcnow
