"""The console's list of alerts, newest first, a page at a time, with what waits for a
supervisor's decision."""

from __future__ import annotations

from typing import Any

from flask import abort, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from alertd.alerts import services
from alertd.alerts.console import bp, current_actor
from alertd.alerts.models import ACTIVE, PENDING, STATES, Alert, Proposal
from alertd.alerts.text import child_phrase
from alertd.db import utcnow
from alertd.errors import Invalid
from alertd.web.auth import ctx, login_required


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    try:
        state, limit, before = services.parse_page_args(request.args)
        with ctx().db.session() as db:
            page = services.list_alerts(db, state=state, limit=limit, before=before)
            rows = _list_rows(page.alerts)
            waiting = _waiting_for_approval(db) if current_actor().can("alert.approve") else None
    except Invalid as error:
        abort(400, error.message)
    older = (
        None
        if page.next_before is None
        else url_for("alerts.index", state=state, limit=limit, cursor=page.next_before)
    )
    newest = url_for("alerts.index", state=state) if before is not None else None
    return render_template(
        "alerts/list.html",
        rows=rows,
        state=state or "",
        states=STATES,
        older=older,
        newest=newest,
        waiting=waiting,
        expiry_warning=ctx().settings.EXPIRY_WARNING_MINUTES,
    )


def _waiting_for_approval(db: Any) -> dict[str, int]:
    """What a supervisor has to decide: submitted alerts and proposed updates."""
    alerts = db.execute(select(func.count()).select_from(Alert).where(Alert.state == PENDING))
    updates = db.execute(
        select(func.count()).select_from(Proposal).where(Proposal.state == PENDING)
    )
    return {"alerts": int(alerts.scalar_one()), "updates": int(updates.scalar_one())}


def _minutes_until(moment: Any) -> int:
    return int((moment - utcnow()).total_seconds() // 60)


def _list_rows(alerts: list[Alert]) -> list[dict[str, Any]]:
    return [
        {
            "id": a.id,
            "public_id": a.public_id,
            "state": a.state,
            "status": a.status,
            "children": child_phrase(a.content) or "—",
            "expires_at": a.expires_at,
            "minutes_left": _minutes_until(a.expires_at) if a.state == ACTIVE else None,
            "jurisdiction": a.jurisdiction,
            "updated_at": a.updated_at,
        }
        for a in alerts
    ]
