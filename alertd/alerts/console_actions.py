"""The alert page's buttons, one service call each: submit and discard a draft; approve or
reject an alert or its pending update (a supervisor's review); cancel, resolve and extend an
active alert.

Each is post/redirect/get, with the page's idempotency key so a repeated submission acts once;
a refusal draws the alert page again with the reason (``console_page.render_show``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import ngettext

from alertd.alerts import services
from alertd.alerts.console import bp, current_actor
from alertd.alerts.console_page import render_show
from alertd.alerts.forms import values_from_request
from alertd.errors import NotFound, ServiceError
from alertd.idempotency import services as idempotency
from alertd.web.auth import ctx, login_required


def _act(alert_id: int, action: str, call: Callable[[], Any], done: str) -> ResponseReturnValue:
    """Run one service call for a button on the alert page; PRG on success, the page again with
    the refusal otherwise. With the page's idempotency key, a repeat of the same submission
    (a double-click, a resent form) does nothing and lands on the same result."""
    key = request.form.get("idempotency_key", "").strip()
    user_id = current_actor().user_id
    assert user_id is not None  # A console session is always a user's.
    try:
        if key and idempotency.begin(ctx(), user_id, key, f"POST {request.path}") is not None:
            return redirect(url_for("alerts.show", alert_id=alert_id, done=key))
    except ServiceError as error:
        # The key itself is at fault, or the first request is still running: say so, and
        # leave that request's claim alone.
        return render_show(alert_id, status=error.status, error=error, failed=action)
    try:
        call()
    except ServiceError as error:
        if key:
            idempotency.forget(ctx(), user_id, key)
        if isinstance(error, NotFound):
            abort(404, description=error.message)
        return render_show(
            alert_id,
            status=error.status,
            error=error,
            failed=action,
            form=values_from_request(request.form),
        )
    if not key:
        flash(done, "ok")
        return redirect(url_for("alerts.show", alert_id=alert_id))
    idempotency.finish(ctx(), user_id, key, 303, {"message": done})
    return redirect(url_for("alerts.show", alert_id=alert_id, done=key))


def _reason() -> str:
    return request.form.get("reason", "")


@bp.post("/alerts/<int:alert_id>/submit")
@login_required
def submit(alert_id: int) -> ResponseReturnValue:
    return _act(
        alert_id,
        "submit",
        lambda: services.submit_alert(ctx(), alert_id, by=current_actor()),
        "Submitted for approval. A second person must approve it.",
    )


@bp.post("/alerts/<int:alert_id>/discard")
@login_required
def discard(alert_id: int) -> ResponseReturnValue:
    return _act(
        alert_id,
        "discard",
        lambda: services.discard_draft(ctx(), alert_id, by=current_actor()),
        "Draft discarded. It is kept for the record but will never be published.",
    )


@bp.post("/alerts/<int:alert_id>/approve")
@login_required
def approve(alert_id: int) -> ResponseReturnValue:
    return _act(
        alert_id,
        "approve",
        lambda: services.approve_alert(ctx(), alert_id, by=current_actor()),
        "Approved. The alert is active and version 1 is going out.",
    )


@bp.post("/alerts/<int:alert_id>/reject")
@login_required
def reject(alert_id: int) -> ResponseReturnValue:
    return _act(
        alert_id,
        "reject",
        lambda: services.reject_alert(ctx(), alert_id, _reason(), by=current_actor()),
        "Rejected. The alert is back with the officer as a draft.",
    )


@bp.post("/alerts/<int:alert_id>/cancel")
@login_required
def cancel(alert_id: int) -> ResponseReturnValue:
    # The reason is the confirmation step of a one-click cancel; the service requires it, after
    # the role check, so an officer is refused as an officer whatever was typed.
    return _act(
        alert_id,
        "cancel",
        lambda: services.cancel_alert(ctx(), alert_id, _reason(), by=current_actor()),
        "Cancelled.",
    )


@bp.post("/alerts/<int:alert_id>/resolve")
@login_required
def resolve(alert_id: int) -> ResponseReturnValue:
    return _act(
        alert_id,
        "resolve",
        lambda: services.resolve_alert(ctx(), alert_id, _reason(), by=current_actor()),
        "Resolved: the public is being told the child was found.",
    )


def _extended_message(raw: object) -> str:
    minutes = int(str(raw)) if str(raw).isdigit() else 0
    if not minutes:  # Refused by the service before this is shown.
        return "Extended; an update is going out."
    return str(
        ngettext(
            "Extended by %(num)d minute; an update is going out.",
            "Extended by %(num)d minutes; an update is going out.",
            minutes,
        )
    )


@bp.post("/alerts/<int:alert_id>/extend")
@login_required
def extend(alert_id: int) -> ResponseReturnValue:
    # The service checks the raw minutes after the role, so a refusal is audited as such.
    raw = request.form.get("minutes", "").strip() or ctx().settings.EXTEND_MINUTES
    return _act(
        alert_id,
        "extend",
        lambda: services.extend_alert(ctx(), alert_id, by=current_actor(), minutes=raw),
        _extended_message(raw),
    )


@bp.post("/alerts/<int:alert_id>/update/approve")
@login_required
def approve_update(alert_id: int) -> ResponseReturnValue:
    return _act(
        alert_id,
        "approve_update",
        lambda: services.approve_update(
            ctx(), alert_id, by=current_actor(), proposal_id=request.form.get("proposal_id", "")
        ),
        "Update approved and going out.",
    )


@bp.post("/alerts/<int:alert_id>/update/reject")
@login_required
def reject_update(alert_id: int) -> ResponseReturnValue:
    return _act(
        alert_id,
        "reject_update",
        lambda: services.reject_update(ctx(), alert_id, _reason(), by=current_actor()),
        "Update rejected.",
    )
