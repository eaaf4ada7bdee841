"""The console's alert page: the alert as it stands, its versions and their delivery progress,
a pending update's changes for review, and its history; the page's progress section alone, for
its script to swap in; and the photo as staff see it.

The page's buttons are in ``console_actions``, which draws this page again with a refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response, abort, g, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from alertd.accounts.models import User
from alertd.alerts import services
from alertd.alerts.console import STATUS_BANNERS, bp, current_actor
from alertd.alerts.content import content_warnings
from alertd.alerts.forms import input_name_for
from alertd.alerts.labels import path_sentence, worded
from alertd.alerts.models import ACTIVE, DRAFT, PENDING, Version
from alertd.alerts.previews import channel_previews
from alertd.alerts.progress import alert_progress, channel_notes, version_notes
from alertd.alerts.review import readable_diff, stale_translations
from alertd.alerts.text import summary_text
from alertd.audit.services import timeline
from alertd.channels.dispatch import delivery_counts
from alertd.db import utcnow
from alertd.errors import NotFound, ServiceError
from alertd.idempotency import services as idempotency
from alertd.web.auth import ctx, login_required
from alertd.web.filters import when


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
    actor = current_actor()
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
        progress = alert_progress(db, alert.versions, ctx().settings.PROGRESS_CACHE_SECONDS)
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


def render_show(
    alert_id: int,
    *,
    status: int = 200,
    error: ServiceError | None = None,
    failed: str = "",
    form: Mapping[str, str] | None = None,
    done: str = "",
) -> ResponseReturnValue:
    """The alert page; after a refused action, with the refusal, its fields and what was typed."""
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
    editable = alert.state == DRAFT and current_actor().can("alert.edit")
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
    key, user_id = request.args.get("done", ""), current_actor().user_id
    stored = idempotency.stored_response(ctx(), user_id, key) if key and user_id else None
    message = str(stored.get("message", "")) if stored else ""
    return render_show(alert_id, done=message)


@bp.get("/alerts/<int:alert_id>/progress")
@login_required
def progress(alert_id: int) -> ResponseReturnValue:
    """The progress section alone, for the page's script to swap in."""
    with ctx().db.session() as db:
        try:
            alert = services.get_alert(db, alert_id)
        except NotFound:
            abort(404, description=f"There is no alert {alert_id}.")
        found = alert_progress(db, alert.versions, ctx().settings.PROGRESS_CACHE_SECONDS)
        notes = channel_notes(ctx(), g.actor, alert.versions)
    return render_template(
        "alerts/_progress.html",
        alert=alert,
        progress=found,
        progress_finished=all(p.finished for p in found),
        channel_notes=notes,
    )
