"""Operators' console pages for webhook endpoints: the list with each circuit, adding one (the
secret is shown once), disabling, rotating, the delivery log, and replaying dead letters."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from alertd.actor import Actor
from alertd.channels.webhooks import queries, services
from alertd.channels.webhooks.models import EVENTS, FORMATS
from alertd.errors import ServiceError
from alertd.web.auth import ctx, login_required

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


def _actor() -> Actor:
    actor: Actor = g.actor
    if not actor.can(services.PERMISSION):
        abort(403)
    return actor


def _list_page(
    form: dict[str, object] | None = None, error: ServiceError | None = None, secret: str = ""
) -> ResponseReturnValue:
    with ctx().db.session() as session:
        failed = queries.failed_counts(session)
        endpoints = [
            queries.endpoint_json(e, failed.get(e.id, 0)) for e in queries.list_endpoints(session)
        ]
    return render_template(
        "webhooks/list.html",
        endpoints=endpoints,
        events=EVENTS,
        formats=FORMATS,
        languages=services.LANGUAGES,
        form=form or {"events": list(EVENTS), "format": "standard", "language": "en"},
        error=error,
        secret=secret,
    ), (error.status if error else 200)


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    _actor()
    return _list_page()


@bp.post("/")
@login_required
def add() -> ResponseReturnValue:
    actor = _actor()
    form: dict[str, object] = {
        "url": request.form.get("url", ""),
        "description": request.form.get("description", ""),
        "events": request.form.getlist("events"),
        "language": request.form.get("language", "en"),
        "format": request.form.get("format", "standard"),
        "accepts_tests": request.form.get("accepts_tests") == "on",
        "token": request.form.get("token", ""),
        "chat_id": request.form.get("chat_id", ""),
    }
    try:
        new = services.add_endpoint(ctx(), form, by=actor)
    except ServiceError as error:
        form.pop("token")
        return _list_page(form, error)
    # Rendered, not redirected: the secret must not travel in a URL or a flash cookie.
    return _list_page(secret=new.secret)


@bp.get("/<int:endpoint_id>")
@login_required
def show(endpoint_id: int) -> ResponseReturnValue:
    _actor()
    with ctx().db.session() as session:
        endpoint = queries.endpoint_json(queries.get_endpoint(session, endpoint_id))
        attempts = [
            queries.attempt_json(a) for a in queries.attempts(session, endpoint_id=endpoint_id)
        ]
        dead = queries.dead_letters(session, endpoint_id)
    return render_template(
        "webhooks/show.html", endpoint=endpoint, attempts=attempts, dead=dead, secret=""
    )


@bp.get("/alerts/<int:alert_id>")
@login_required
def alert_log(alert_id: int) -> ResponseReturnValue:
    _actor()
    with ctx().db.session() as session:
        attempts = [queries.attempt_json(a) for a in queries.attempts(session, alert_id=alert_id)]
    return render_template("webhooks/alert_log.html", alert_id=alert_id, attempts=attempts)


@bp.post("/<int:endpoint_id>/<action>")
@login_required
def act(endpoint_id: int, action: str) -> ResponseReturnValue:
    actor = _actor()
    try:
        if action == "disable":
            services.set_enabled(ctx(), endpoint_id, False, by=actor)
            flash("Endpoint disabled.")
        elif action == "enable":
            services.set_enabled(ctx(), endpoint_id, True, by=actor)
            flash("Endpoint enabled.")
        elif action == "replay":
            count = services.replay(ctx(), by=actor, endpoint_id=endpoint_id)
            flash(f"{count} failed deliveries queued again.")
        elif action == "rotate":
            new = services.rotate_secret(ctx(), endpoint_id, by=actor)
            with ctx().db.session() as session:
                endpoint = queries.endpoint_json(queries.get_endpoint(session, endpoint_id))
                attempts = [
                    queries.attempt_json(a)
                    for a in queries.attempts(session, endpoint_id=endpoint_id)
                ]
                dead = queries.dead_letters(session, endpoint_id)
            return render_template(
                "webhooks/show.html",
                endpoint=endpoint,
                attempts=attempts,
                dead=dead,
                secret=new.secret,
            )
        else:
            abort(404)
    except ServiceError as error:
        flash(error.message, "error")
    return redirect(url_for("webhooks.show", endpoint_id=endpoint_id))


@bp.post("/deliveries/<int:delivery_id>/replay")
@login_required
def replay_one(delivery_id: int) -> ResponseReturnValue:
    actor = _actor()
    endpoint_id = request.form.get("endpoint_id", type=int)
    try:
        services.replay(ctx(), by=actor, delivery_id=delivery_id)
        flash(f"Delivery {delivery_id} queued again.")
    except ServiceError as error:
        flash(error.message, "error")
    if endpoint_id is None:
        return redirect(url_for("webhooks.index"))
    return redirect(url_for("webhooks.show", endpoint_id=endpoint_id))
