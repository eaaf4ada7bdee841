"""The "dispatch is stalled" banner on every signed-in console page: while work has waited past
``ALERTD_STALL_SECONDS`` untaken (``alertd health``'s measure), a supervisor approving must know
the alert is not going out."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g

from alertd.context import Context
from alertd.health import backlog


def stalled_seconds() -> float | None:
    """Seconds the oldest untaken work has waited, when past the threshold; else None."""
    ctx: Context = current_app.extensions["alertd"]
    waited = backlog(ctx).oldest_untaken_seconds
    return waited if waited > ctx.settings.STALL_SECONDS else None


def register_stall_banner(app: Flask) -> None:
    @app.context_processor
    def _dispatch_stalled() -> dict[str, Any]:
        # Signed-in pages only: public pages are cached and their readers cannot act on it.
        if g.get("actor") is None:
            return {}
        return {"dispatch_stalled": stalled_seconds()}
