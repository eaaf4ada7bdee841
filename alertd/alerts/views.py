"""The officers' and supervisors' console: list, raise, review and run alerts.

Every POST parses its input, calls one service function and redirects (post/redirect/get); a
refusal re-renders the page it came from with the reason, the fields at fault and what was typed.
Pages only hide actions a role may not take; the service layer is what enforces them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, cast

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import ngettext
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from alertd.accounts.models import User
from alertd.actor import Actor
from alertd.alerts import services
from alertd.alerts.content import STATUSES, ContentErrors, content_warnings, parse_content
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
from alertd.alerts.labels import path_sentence, worded
from alertd.alerts.models import ACTIVE, DRAFT, PENDING, STATES, Alert, Proposal, Version
from alertd.alerts.previews import channel_previews
from alertd.alerts.progress import alert_progress, channel_notes, version_notes
from alertd.alerts.review import readable_diff, stale_translations
from alertd.alerts.text import child_phrase, summary_text
from alertd.audit.services import timeline
from alertd.channels.dispatch import delivery_counts
from alertd.db import utcnow
from alertd.errors import Invalid, NotFound, ServiceError
from alertd.i18n import with_article
from alertd.idempotency import services as idempotency
from alertd.localtime import to_local
from alertd.web.auth import ctx, login_required
from alertd.web.filters import when

bp = Blueprint("alerts", __name__)

# Shown for an alert that is not real, on every page about it.
STATUS_BANNERS = {
    "Exercise": "EXERCISE — NOT A REAL ALERT",
    "Test": "TEST — NOT A REAL ALERT",
}


def _actor() -> Actor:
    actor: Actor = g.actor
    return actor


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


# Listing ---------------------------------------------------------------------------------------


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    try:
        state, limit, before = services.parse_page_args(request.args)
        with ctx().db.session() as db:
            page = services.list_alerts(db, state=state, limit=limit, before=before)
            rows = _list_rows(page.alerts)
            waiting = _waiting_for_approval(db) if _actor().can("alert.approve") else None
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


# The form shared by new, edit and update ------------------------------------------------------


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
    if not _actor().can(permission):
        abort(403, description=f"{with_article(_actor().role).capitalize()} may not do this.")


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
        alert = services.create_alert(ctx(), parsed.body, by=_actor(), photo=_photo(request.files))
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
        services.edit_alert(ctx(), alert_id, parsed.body, by=_actor(), photo=_photo(request.files))
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
            ctx(), alert_id, parsed.body, by=_actor(), photo=_photo(request.files)
        )
    except ServiceError as error:
        return _render_form(
            "update", values, alert=alert, error=error, parsed=parsed, status=error.status
        )
    flash("Update proposed. A supervisor must approve it before it goes out.", "ok")
    return redirect(url_for("alerts.show", alert_id=alert_id))


# The alert page -------------------------------------------------------------------------------


def _timeline_row(entry: Any) -> dict[str, Any]:
    detail: dict[str, Any] = entry.detail or {}
    notes = []
    for key in ("reason", "version", "proposal"):
        if detail.get(key):
            notes.append(f"{key}: {detail[key]}")
    changed = sorted((detail.get("after") or {}).keys())
    if changed:
        notes.append("changed: " + ", ".join(changed))
    if detail.get("fields"):
        notes.append("; ".join(f"{k} {v}" for k, v in detail["fields"].items()))
    return {
        "at": entry.at,
        "actor": entry.actor_name,
        "role": entry.role,
        "action": entry.action,
        "outcome": entry.outcome,
        "notes": " · ".join(notes),
    }


def _show_context(alert_id: int) -> dict[str, Any]:
    settings = ctx().settings
    actor = _actor()
    with ctx().db.session() as db:
        try:
            alert = services.get_alert(db, alert_id)
        except NotFound:
            abort(404, description=f"There is no alert {alert_id}.")
        user_ids = {alert.created_by_id, alert.submitted_by_id, alert.approved_by_id}
        proposal = alert.pending_proposal
        if proposal is not None:
            user_ids.add(proposal.proposed_by_id)
        names = {
            uid: name
            for uid, name in db.execute(
                select(User.id, User.username).where(
                    User.id.in_([i for i in user_ids if i is not None])
                )
            )
        }
        photo = alert.photo
        photo_name = f"{photo.sha256}.{photo.extension}" if photo else None
        # Each channel's word on each version (the CAP channel: its document, or why not).
        notes = version_notes(ctx(), db, alert.id)
        progress = alert_progress(db, alert.versions)
        went_out = {p.version_id: p.first_sent_at for p in progress}
        versions = [
            {
                "seq": v.seq,
                "identifier": v.identifier,
                "msg_type": v.msg_type,
                "kind": v.kind,
                "approved_at": v.approved_at or v.sent_at,
                # When the first message really left, on any channel; None until one has.
                "sent_at": went_out.get(v.id),
                "expires_at": v.expires_at,
                "references": [ref[1] for ref in v.references],
                "notes": notes.get(v.id, []),
            }
            for v in alert.versions
        ]
        counts = delivery_counts(db, alert.id)
        history = [_timeline_row(e) for e in timeline(db, "alert", alert.id)]
        proposal_view = None
        if proposal is not None:
            preview = Version(content=proposal.content, kind="update", status=alert.status)
            proposal_view = {
                "id": proposal.id,
                "by": names.get(proposal.proposed_by_id, "?"),
                "at": proposal.proposed_at,
                "changes": readable_diff(
                    alert.content,
                    proposal.content,
                    when,
                    ctx().rule_sets.get(alert.jurisdiction),
                ),
                "stale": stale_translations(alert.content, proposal.content),
                "text": summary_text(preview),
                "channels": channel_previews(
                    ctx(), proposal.content, kind="update", status=alert.status, alert_id=alert.id
                ),
                "photo_changed": proposal.photo_id != alert.photo_id,
                "own": proposal.proposed_by_id == actor.user_id,
            }
    rule_set = ctx().rule_sets.get(alert.jurisdiction)
    answers = alert.content.get("criteria") or {}
    criteria = [
        {"key": c.key, "label": c.label, "required": c.required, "met": bool(answers.get(c.key))}
        for c in (rule_set.criteria if rule_set else ())
    ]
    # A version that is never added to a session, only to word the preview as it would go out.
    preview_text = summary_text(Version(content=alert.content, kind="alert", status=alert.status))
    left = int((alert.expires_at - utcnow()).total_seconds() // 60)
    return {
        "alert": alert,
        "content": alert.content,
        "names": names,
        "photo_name": photo_name,
        "versions": versions,
        "counts": counts,
        "progress": progress,
        "progress_finished": all(p.finished for p in progress),
        "channel_notes": channel_notes(ctx(), actor, alert.versions),
        "history": history,
        "proposal": proposal_view,
        "criteria": criteria,
        "rule_set": rule_set,
        "preview_text": preview_text,
        "channel_previews": channel_previews(
            ctx(), alert.content, kind="alert", status=alert.status, alert_id=alert.id
        )
        if alert.state == PENDING
        else ([], []),
        "content_warnings": worded(
            dict(sorted(content_warnings(alert.content, ipaws=settings.CAP_IPAWS).items())),
            rule_set,
        ),
        "minutes_left": left,
        "near_expiry": alert.state == ACTIVE and left < settings.EXPIRY_WARNING_MINUTES,
        "extend_minutes": settings.EXTEND_MINUTES,
        "is_submitter": actor.user_id in (alert.created_by_id, alert.submitted_by_id),
        "is_author": actor.user_id == alert.created_by_id,
        "banner": STATUS_BANNERS.get(alert.status),
        "states": {"draft": DRAFT, "pending": PENDING, "active": ACTIVE},
    }


def _render_show(
    alert_id: int,
    *,
    status: int = 200,
    error: ServiceError | None = None,
    failed: str = "",
    form: Mapping[str, str] | None = None,
    done: str = "",
) -> ResponseReturnValue:
    context = _show_context(alert_id)
    return render_template(
        "alerts/show.html",
        error=error,
        field_errors=_field_errors(context, error.fields if error else {}),
        failed=failed,
        form=form or {},
        fields=error.fields if error else {},
        done=done,
        **context,
    ), status


def _field_errors(context: Mapping[str, Any], fields: Mapping[str, str]) -> list[tuple[str, str]]:
    """A refused action's field errors in officer words; on a draft the officer may edit, each
    links to its input on the edit form."""
    alert = context["alert"]
    editable = alert.state == DRAFT and _actor().can("alert.edit")
    found = []
    for path, message in fields.items():
        if path == "reason":
            continue  # Shown under the reason box itself.
        name = input_name_for(path) if editable else None
        link = f"{url_for('alerts.edit', alert_id=alert.id)}#{name}" if name else ""
        found.append((link, path_sentence(path, message, context["rule_set"])))
    return found


@bp.get("/alerts/<int:alert_id>/photo")
@login_required
def photo(alert_id: int) -> ResponseReturnValue:
    """The alert's current photo for staff, published or not (the public URL serves it only once
    published); never kept by a shared cache."""
    with ctx().db.session() as session:
        alert = services.get_alert(session, alert_id)
        if alert.photo is None:
            abort(404)
        return Response(
            alert.photo.data,
            mimetype=alert.photo.mime_type,
            headers={"Cache-Control": "private, no-store"},
        )


@bp.get("/alerts/<int:alert_id>")
@login_required
def show(alert_id: int) -> ResponseReturnValue:
    # The outcome of an action is named by its key, not flashed into the session: whichever of
    # a double-click's two responses the browser shows, the message appears once.
    key, user_id = request.args.get("done", ""), _actor().user_id
    stored = idempotency.stored_response(ctx(), user_id, key) if key and user_id else None
    message = str(stored.get("message", "")) if stored else ""
    return _render_show(alert_id, done=message)


@bp.get("/alerts/<int:alert_id>/progress")
@login_required
def progress(alert_id: int) -> ResponseReturnValue:
    """The progress section alone, for the page's script to swap in."""
    with ctx().db.session() as db:
        try:
            alert = services.get_alert(db, alert_id)
        except NotFound:
            abort(404, description=f"There is no alert {alert_id}.")
        found = alert_progress(db, alert.versions)
        notes = channel_notes(ctx(), g.actor, alert.versions)
    return render_template(
        "alerts/_progress.html",
        alert=alert,
        progress=found,
        progress_finished=all(p.finished for p in found),
        channel_notes=notes,
    )


def _act(alert_id: int, action: str, call: Callable[[], Any], done: str) -> ResponseReturnValue:
    """Run one service call for a button on the alert page; PRG on success, the page again with
    the refusal otherwise. With the page's idempotency key, a repeat of the same submission
    (a double-click, a resent form) does nothing and lands on the same result."""
    key = request.form.get("idempotency_key", "").strip()
    user_id = _actor().user_id
    assert user_id is not None  # A console session is always a user's.
    try:
        if key and idempotency.begin(ctx(), user_id, key, f"POST {request.path}") is not None:
            return redirect(url_for("alerts.show", alert_id=alert_id, done=key))
    except ServiceError as error:
        # The key itself is at fault, or the first request is still running: say so, and
        # leave that request's claim alone.
        return _render_show(alert_id, status=error.status, error=error, failed=action)
    try:
        call()
    except ServiceError as error:
        if key:
            idempotency.forget(ctx(), user_id, key)
        if isinstance(error, NotFound):
            abort(404, description=error.message)
        return _render_show(
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
        lambda: services.submit_alert(ctx(), alert_id, by=_actor()),
        "Submitted for approval. A second person must approve it.",
    )


@bp.post("/alerts/<int:alert_id>/discard")
@login_required
def discard(alert_id: int) -> ResponseReturnValue:
    return _act(
        alert_id,
        "discard",
        lambda: services.discard_draft(ctx(), alert_id, by=_actor()),
        "Draft discarded. It is kept for the record but will never be published.",
    )


@bp.post("/alerts/<int:alert_id>/approve")
@login_required
def approve(alert_id: int) -> ResponseReturnValue:
    return _act(
        alert_id,
        "approve",
        lambda: services.approve_alert(ctx(), alert_id, by=_actor()),
        "Approved. The alert is active and version 1 is going out.",
    )


@bp.post("/alerts/<int:alert_id>/reject")
@login_required
def reject(alert_id: int) -> ResponseReturnValue:
    return _act(
        alert_id,
        "reject",
        lambda: services.reject_alert(ctx(), alert_id, _reason(), by=_actor()),
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
        lambda: services.cancel_alert(ctx(), alert_id, _reason(), by=_actor()),
        "Cancelled.",
    )


@bp.post("/alerts/<int:alert_id>/resolve")
@login_required
def resolve(alert_id: int) -> ResponseReturnValue:
    return _act(
        alert_id,
        "resolve",
        lambda: services.resolve_alert(ctx(), alert_id, _reason(), by=_actor()),
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
        lambda: services.extend_alert(ctx(), alert_id, by=_actor(), minutes=raw),
        _extended_message(raw),
    )


@bp.post("/alerts/<int:alert_id>/update/approve")
@login_required
def approve_update(alert_id: int) -> ResponseReturnValue:
    return _act(
        alert_id,
        "approve_update",
        lambda: services.approve_update(
            ctx(), alert_id, by=_actor(), proposal_id=request.form.get("proposal_id", "")
        ),
        "Update approved and going out.",
    )


@bp.post("/alerts/<int:alert_id>/update/reject")
@login_required
def reject_update(alert_id: int) -> ResponseReturnValue:
    return _act(
        alert_id,
        "reject_update",
        lambda: services.reject_update(ctx(), alert_id, _reason(), by=_actor()),
        "Update rejected.",
    )
