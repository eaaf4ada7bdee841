"""Console pages for SMS: subscribers (list with a phone filter, add, delete) for operators and
admins, and the texts the ``console`` backend kept instead of sending."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from alertd.actor import Actor
from alertd.channels.sms import queries, services
from alertd.channels.sms.models import ConsoleText
from alertd.errors import ServiceError
from alertd.web.auth import ctx, login_required

bp = Blueprint("sms", __name__, url_prefix="/sms")
TEXTS_PAGE = 200


def _actor() -> Actor:
    actor: Actor = g.actor
    if not actor.can(services.PERMISSION):
        abort(403)
    return actor


def _list_page(
    form: dict[str, str] | None = None, error: ServiceError | None = None
) -> ResponseReturnValue:
    phone = request.args.get("phone", "").strip()[:20]
    after = request.args.get("after", 0, type=int) or 0
    with ctx().db.session() as session:
        rows = queries.list_subscribers(session, phone=phone, after=after)
        areas = queries.areas_of(session, [s.id for s in rows])
        subscribers = [queries.subscriber_json(s, areas[s.id]) for s in rows]
    return render_template(
        "sms/subscribers.html",
        subscribers=subscribers,
        phone=phone,
        next_after=rows[-1].id if len(rows) == queries.PAGE else None,
        languages=services.LANGUAGES,
        form=form or {"language": "en"},
        error=error,
    ), (error.status if error else 200)


@bp.get("/subscribers")
@login_required
def subscribers() -> ResponseReturnValue:
    _actor()
    return _list_page()


@bp.post("/subscribers")
@login_required
def add() -> ResponseReturnValue:
    actor = _actor()
    form = {k: request.form.get(k, "") for k in ("phone", "language", "areas", "lat", "lon")}
    try:
        services.add_subscriber(
            ctx(),
            {
                "phone": form["phone"],
                "language": form["language"],
                "areas": form["areas"].split(),
                "lat": form["lat"] or None,
                "lon": form["lon"] or None,
            },
            by=actor,
        )
    except ServiceError as error:
        return _list_page(form, error)
    flash("Subscriber added.")
    return redirect(url_for("sms.subscribers"))


@bp.post("/subscribers/<int:subscriber_id>/delete")
@login_required
def delete(subscriber_id: int) -> ResponseReturnValue:
    actor = _actor()
    try:
        services.delete_subscriber(ctx(), subscriber_id, by=actor)
        flash(f"Subscriber {subscriber_id} deleted.")
    except ServiceError as error:
        flash(error.message, "error")
    return redirect(url_for("sms.subscribers"))


@bp.get("/texts")
@login_required
def texts() -> ResponseReturnValue:
    _actor()
    with ctx().db.session() as session:
        rows = list(
            session.execute(
                select(ConsoleText).order_by(ConsoleText.id.desc()).limit(TEXTS_PAGE)
            ).scalars()
        )
    return render_template("sms/texts.html", texts=rows, backend=ctx().settings.SMS_BACKEND)


@bp.get("/alerts/<int:alert_id>")
@login_required
def alert_status(alert_id: int) -> ResponseReturnValue:
    _actor()
    with ctx().db.session() as session:
        counts = queries.alert_counts(session, alert_id)
        rows = queries.troubled(session, alert_id)
    return render_template("sms/alert.html", alert_id=alert_id, counts=counts, rows=rows)


@bp.post("/deliveries/<int:delivery_id>/retry")
@login_required
def retry(delivery_id: int) -> ResponseReturnValue:
    actor = _actor()
    alert_id = request.form.get("alert_id", type=int) or 0
    try:
        services.retry_failed(ctx(), delivery_id, by=actor)
        flash(f"Delivery {delivery_id} queued again.")
    except ServiceError as error:
        flash(error.message, "error")
    return redirect(url_for("sms.alert_status", alert_id=alert_id))
