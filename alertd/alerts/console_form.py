"""The console's alert form, shared by raising a draft (new), editing it (edit) and proposing an
update to an active alert (update).

Every POST parses the form, calls one service function and redirects (post/redirect/get); a
refusal draws the form again with the reason, the fields at fault, what was typed and the photo
chosen. A redraw button (the plan's checklist, add or remove an entry) draws it again without
saving.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, cast

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from alertd.alerts import services
from alertd.alerts.console import STATUS_BANNERS, bp, current_actor
from alertd.alerts.content import STATUSES, ContentErrors, parse_content
from alertd.alerts.form_classes import ENTRY_HINTS, ENTRY_LIMITS, INPUT_MODES
from alertd.alerts.form_errors import error_summary
from alertd.alerts.forms import (
    REDRAW_BUTTONS,
    ParsedForm,
    alert_form,
    blank_values,
    form_values,
    input_name_for,
    offset_choices,
    parse_form,
    redrawn,
    values_from_request,
    zone_offset,
)
from alertd.alerts.models import ACTIVE, DRAFT, Alert
from alertd.db import utcnow
from alertd.errors import Invalid, NotFound, ServiceError
from alertd.i18n import with_article
from alertd.localtime import to_local
from alertd.web.auth import ctx, login_required


def _photo(request_files: Any) -> bytes | None:
    """The photo chosen now, else the one held from a refused attempt of the same form."""
    if "photo_bytes" in g:
        return cast(bytes | None, g.photo_bytes)
    upload = request_files.get("photo")
    data: bytes | None = None
    if upload is not None and upload.filename:
        # An empty file chosen by mistake is the service's to refuse, with its own message.
        data = upload.read()
    elif request.form.get("held_photo"):
        data = services.held_photo(ctx(), request.form["held_photo"][:100])
    g.photo_bytes = data
    return data


def _render_form(
    mode: str,
    values: Mapping[str, str],
    *,
    alert: Alert | None = None,
    error: ServiceError | None = None,
    parsed: ParsedForm | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    rule_sets = ctx().rule_sets
    errors: dict[str, str] = {}
    other: dict[str, str] = {}
    if parsed is not None:
        errors, other = parsed.input_errors(error.fields if error else {})
    elif error is not None:
        for path, message in error.fields.items():
            name = input_name_for(path)
            if name is None:
                other[path] = message
            else:
                errors[name] = message
    # A refused form keeps its photo: held server-side, named in a hidden field.
    photo = _photo(request.files) if request.method == "POST" else None
    held = services.hold_photo(ctx(), photo) if photo else None
    jurisdiction = values.get("jurisdiction") or ctx().settings.DEFAULT_JURISDICTION
    rule_set = rule_sets.get(jurisdiction) or rule_sets[ctx().settings.DEFAULT_JURISDICTION]
    summary = error_summary(errors, other, rule_set)
    targets = {
        "new": url_for("alerts.new"),
        "edit": url_for("alerts.edit", alert_id=alert.id) if alert else "",
        "update": url_for("alerts.update", alert_id=alert.id) if alert else "",
    }
    return render_template(
        "alerts/form.html",
        mode=mode,
        values=values,
        alert=alert,
        error=error,
        errors=errors,
        other_errors=other,
        summary=summary,
        rule_set=rule_set,
        rule_sets=rule_sets,
        statuses=STATUSES,
        form=alert_form(values),
        fresh=mode == "new" and request.method == "GET",
        entry_limits=ENTRY_LIMITS,
        entry_hints=ENTRY_HINTS,
        input_modes=INPUT_MODES,
        action=targets[mode],
        offsets={
            name: offset_choices(values.get(f"{name}_offset", ""))
            for name in ("last_seen_at", "expires_at")
        },
        banner=STATUS_BANNERS.get(values.get("status", "")),
        default_minutes=ctx().settings.DEFAULT_ALERT_MINUTES,
        held_photo=held,
        max_photo_bytes=ctx().settings.MAX_PHOTO_BYTES,
    ), status


def _form_refusal(parsed: ParsedForm) -> ServiceError:
    """What is wrong with a form we could not even split, plus everything content.py would
    say about the rest, so the officer sees all the problems at once. Nothing is saved, so the
    service is not called."""
    settings = ctx().settings
    fields: dict[str, str] = {}
    try:
        parse_content(
            parsed.body,
            rule_sets=ctx().rule_sets,
            default_jurisdiction=settings.DEFAULT_JURISDICTION,
            default_expires=utcnow() + timedelta(minutes=settings.DEFAULT_ALERT_MINUTES),
            max_hours=settings.MAX_ALERT_HOURS,
            phone_region=settings.SMS_DEFAULT_REGION,
        )
    except ContentErrors as errors:
        fields = errors.fields
    return Invalid("The alert has errors; nothing was saved.", fields=fields)


def _redraw_asked(form: Mapping[str, str]) -> bool:
    """A button that redraws the form without saving: the plan's checklist, add or remove."""
    return any(form.get(name) for name in REDRAW_BUTTONS)


def _load_alert(alert_id: int) -> Alert:
    with ctx().db.session() as db:
        try:
            return services.get_alert(db, alert_id)
        except NotFound:
            abort(404, description=f"There is no alert {alert_id}.")


def _may(permission: str) -> None:
    if not current_actor().can(permission):
        abort(
            403, description=f"{with_article(current_actor().role).capitalize()} may not do this."
        )


@bp.route("/alerts/new", methods=["GET", "POST"])
@login_required
def new() -> ResponseReturnValue:
    if request.method == "GET":
        _may("alert.create")
        settings = ctx().settings
        offset = zone_offset(to_local(utcnow(), settings))
        return _render_form("new", blank_values(settings.DEFAULT_JURISDICTION, offset))
    form: MultiDict[str, str] = request.form
    values = values_from_request(form)
    if _redraw_asked(form):
        _may("alert.create")
        return _render_form("new", redrawn(values))
    parsed = parse_form(form, ctx().rule_sets)
    if parsed.errors:
        return _render_form("new", values, parsed=parsed, error=_form_refusal(parsed), status=400)
    try:
        alert = services.create_alert(
            ctx(), parsed.body, by=current_actor(), photo=_photo(request.files)
        )
    except ServiceError as error:
        return _render_form("new", values, error=error, parsed=parsed, status=error.status)
    flash(f"Draft {alert.public_id} saved. Submit it for approval when it is ready.", "ok")
    return redirect(url_for("alerts.show", alert_id=alert.id))


@bp.route("/alerts/<int:alert_id>/edit", methods=["GET", "POST"])
@login_required
def edit(alert_id: int) -> ResponseReturnValue:
    alert = _load_alert(alert_id)
    if request.method == "GET":
        # A POST goes to the service, which refuses (and audits) the same things.
        _may("alert.edit")
        if alert.state != DRAFT:
            abort(
                409,
                description=f"Only a draft can be edited; this alert is "
                f"{alert.state}. Propose an update instead.",
            )
        values = form_values(alert.content)
        if alert.expires_by_default:
            values["expires_at"] = ""  # Still "the default, from approval", unless changed.
        return _render_form("edit", values, alert=alert)
    values = values_from_request(request.form)
    if _redraw_asked(request.form):
        _may("alert.edit")
        return _render_form("edit", redrawn(values), alert=alert)
    parsed = parse_form(request.form, ctx().rule_sets)
    if parsed.errors:
        return _render_form(
            "edit", values, alert=alert, parsed=parsed, error=_form_refusal(parsed), status=400
        )
    try:
        services.edit_alert(
            ctx(), alert_id, parsed.body, by=current_actor(), photo=_photo(request.files)
        )
    except ServiceError as error:
        return _render_form(
            "edit", values, alert=alert, error=error, parsed=parsed, status=error.status
        )
    flash("Draft saved.", "ok")
    return redirect(url_for("alerts.show", alert_id=alert_id))


@bp.route("/alerts/<int:alert_id>/update", methods=["GET", "POST"])
@login_required
def update(alert_id: int) -> ResponseReturnValue:
    alert = _load_alert(alert_id)
    if request.method == "GET":
        _may("alert.propose_update")
        if alert.state != ACTIVE:
            abort(
                409,
                description=f"Only an active alert can be updated; this alert is {alert.state}.",
            )
        # Start from a waiting proposal, since a new one replaces it.
        pending = alert.pending_proposal
        return _render_form(
            "update", form_values(pending.content if pending else alert.content), alert=alert
        )
    form = MultiDict(request.form)
    form["status"] = alert.status  # An update may not change the status; the form shows it.
    values = values_from_request(form)
    if _redraw_asked(form):
        _may("alert.propose_update")
        return _render_form("update", redrawn(values), alert=alert)
    parsed = parse_form(form, ctx().rule_sets)
    if parsed.errors:
        return _render_form(
            "update", values, alert=alert, parsed=parsed, error=_form_refusal(parsed), status=400
        )
    try:
        services.propose_update(
            ctx(), alert_id, parsed.body, by=current_actor(), photo=_photo(request.files)
        )
    except ServiceError as error:
        return _render_form(
            "update", values, alert=alert, error=error, parsed=parsed, status=error.status
        )
    flash("Update proposed. A supervisor must approve it before it goes out.", "ok")
    return redirect(url_for("alerts.show", alert_id=alert_id))
