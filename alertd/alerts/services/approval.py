"""The second person: approving or rejecting a submitted alert or a proposed update."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import json_merge_patch

from alertd.actor import Actor
from alertd.alerts.content import expires_of, submission_problems
from alertd.alerts.models import (
    ACTIVE,
    DRAFT,
    PENDING,
    Alert,
    Proposal,
)
from alertd.alerts.services._common import (
    _apply_content,
    _audit,
    _changed,
    _check_second_person,
    _load,
    _parse,
    _people,
    _photo_id,
    _reason,
    _refusal,
    _require,
    _require_state,
)
from alertd.alerts.services.publication import _publish
from alertd.audit.digests import version_detail
from alertd.context import Context
from alertd.db import utcnow
from alertd.errors import Conflict, Invalid


def _check_text_length(
    ctx: Context, alert: Alert, kind: str, content: dict[str, Any], by: Actor, action: str
) -> None:
    """A channel that could not carry this content (an SMS past three segments) refuses the
    approval with its reason: nothing is published, so nothing is sent on any channel."""
    problems: dict[str, str] = {}
    for channel in ctx.channels.channels():
        problems.update(channel.approval_problems(ctx, kind, content, alert.public_id))
    if problems:
        first = next(iter(problems.items()))
        raise _refusal(
            Invalid,
            f"The message is too long for {first[0]}: {first[1]}. Shorten the names, vehicle "
            "or tip line.",
            by,
            action,
            alert,
            problems,
        )


def approve_alert(ctx: Context, alert_id: int, *, by: Actor) -> Alert:
    """Approve a submitted alert: it becomes active and its first version goes out at once.
    Approving an alert that is already active changes nothing."""
    with ctx.db.transaction() as session:
        alert = _load(session, alert_id)
        _require(by, "alert.approve", "alert.approve", alert)
        if alert.state == ACTIVE and alert.approved_by_id is not None:
            return alert
        _require_state(alert, PENDING, by, "alert.approve", "a submitted alert can be approved")
        raisers = _people(
            session,
            alert,
            {alert.created_by_id, alert.submitted_by_id},
            ("alert.create", "alert.submit"),
        )
        _check_second_person(by, raisers, "alert.approve", alert)
        now = utcnow()
        if alert.expires_by_default:
            # Counted from now: the officer asked for the default length of a live alert.
            until = now.replace(microsecond=0) + timedelta(
                minutes=ctx.settings.DEFAULT_ALERT_MINUTES
            )
            alert.content = dict(alert.content, expires_at=until.isoformat())
            alert.expires_at, alert.expires_by_default = until, False
        if alert.expires_at <= now:
            raise _refusal(
                Conflict,
                "The alert's expiry has passed; return it to the officer to set a new one.",
                by,
                "alert.approve",
                alert,
            )
        _check_text_length(ctx, alert, "alert", alert.content, by, "alert.approve")
        alert.state, alert.approved_by_id, alert.approved_at = ACTIVE, by.user_id, now
        version = _publish(ctx, session, alert, "alert", "Alert", by, now)
        _audit(
            session,
            by,
            "alert.approve",
            alert,
            before={"state": PENDING},
            after={"state": ACTIVE},
            **version_detail(version),
        )
        return alert


def reject_alert(ctx: Context, alert_id: int, reason: str, *, by: Actor) -> Alert:
    with ctx.db.transaction() as session:
        alert = _load(session, alert_id)
        _require(by, "alert.reject", "alert.reject", alert)
        _require_state(alert, PENDING, by, "alert.reject", "a submitted alert can be rejected")
        reason = _reason(reason, by, "alert.reject", alert)
        alert.state, alert.rejection_reason, alert.updated_at = DRAFT, reason, utcnow()
        _audit(
            session,
            by,
            "alert.reject",
            alert,
            before={"state": PENDING},
            after={"state": DRAFT},
            reason=reason,
        )
        return alert


def propose_update(
    ctx: Context,
    alert_id: int,
    raw: Any,
    *,
    by: Actor,
    photo: bytes | None = None,
    merge_patch: bool = False,
) -> Proposal:
    """Propose new content for a live alert. A newer proposal replaces a pending one.

    With `merge_patch`, `raw` is a JSON Merge Patch (RFC 7396) applied to the alert's current
    content under the row lock, so a dispatch system can send only what changed; the result is
    then checked exactly like a full body, with the same field messages.
    """
    with ctx.db.transaction() as session:
        alert = _load(session, alert_id)
        _require(by, "alert.propose_update", "alert.propose_update", alert)
        _require_state(alert, ACTIVE, by, "alert.propose_update", "an active alert can be updated")
        if merge_patch:
            raw = json_merge_patch.merge(copy.deepcopy(dict(alert.content)), raw)
        if isinstance(raw, dict) and not raw.get("expires_at"):
            # An update that says nothing about expiry keeps the alert's, not a fresh default.
            raw = dict(raw, expires_at=alert.expires_at.isoformat())
        content = _parse(ctx, raw, by, "alert.propose_update", alert)
        if content["status"] != alert.status:
            raise _refusal(
                Invalid,
                "An update cannot change the alert's status.",
                by,
                "alert.propose_update",
                alert,
                {"status": f"must stay {alert.status}"},
            )
        problems = submission_problems(content, ctx.rule_sets[content["jurisdiction"]])
        if problems:
            raise _refusal(
                Invalid,
                "The update does not meet the criteria for publication.",
                by,
                "alert.propose_update",
                alert,
                problems,
            )
        photo_id = _photo_id(ctx, session, photo, by, "alert.propose_update", alert)
        for old in alert.proposals:
            if old.state == PENDING:
                old.state, old.decided_at, old.reason = "replaced", utcnow(), "replaced"
        proposal = Proposal(
            alert=alert,
            content=content,
            expires_at=expires_of(content),
            base_expires_at=alert.expires_at,
            photo_id=photo_id or alert.photo_id,
            proposed_by_id=by.user_id,
        )
        session.add(proposal)
        session.flush()
        before, after = _changed(alert.content, content)
        _audit(
            session,
            by,
            "alert.propose_update",
            alert,
            before=before,
            after=after,
            proposal=proposal.id,
        )
        return proposal


def approve_update(ctx: Context, alert_id: int, *, by: Actor, proposal_id: object) -> Alert:
    """Approve the pending update the approver reviewed, named by ``proposal_id``: if another
    proposal replaced it meanwhile, nothing is published and the approver is told."""
    with ctx.db.transaction() as session:
        alert = _load(session, alert_id)
        _require(by, "alert.approve", "alert.approve_update", alert)
        proposal = alert.pending_proposal
        if alert.state != ACTIVE or proposal is None:
            raise _refusal(
                Conflict,
                "There is no pending update to approve.",
                by,
                "alert.approve_update",
                alert,
            )
        if str(proposal_id).strip() != str(proposal.id):
            raise _refusal(
                Conflict,
                "The update you reviewed is no longer the pending one; review the current "
                "proposal and approve that.",
                by,
                "alert.approve_update",
                alert,
                {"proposal_id": f"the pending update is {proposal.id}"},
            )
        proposers = _people(
            session, alert, {proposal.proposed_by_id}, ("alert.propose_update",), proposal.id
        )
        _check_second_person(by, proposers, "alert.approve_update", alert)
        now = utcnow()
        if proposal.expires_at <= now:
            raise _refusal(
                Conflict, "The proposed expiry has passed.", by, "alert.approve_update", alert
            )
        content = proposal.content
        _check_text_length(ctx, alert, "update", content, by, "alert.approve_update")
        if proposal.expires_at == proposal.base_expires_at:
            # The proposer left the expiry alone: an extension approved since then stands.
            content = dict(content, expires_at=alert.expires_at.isoformat())
        before, after = _changed(alert.content, content)
        _apply_content(alert, content)
        alert.photo_id = proposal.photo_id
        proposal.state, proposal.decided_by_id, proposal.decided_at = "approved", by.user_id, now
        version = _publish(ctx, session, alert, "update", "Update", by, now)
        _audit(
            session,
            by,
            "alert.approve_update",
            alert,
            before=before,
            after=after,
            proposal=proposal.id,
            **version_detail(version),
        )
        return alert


def reject_update(ctx: Context, alert_id: int, reason: str, *, by: Actor) -> Alert:
    with ctx.db.transaction() as session:
        alert = _load(session, alert_id)
        _require(by, "alert.reject", "alert.reject_update", alert)
        proposal = alert.pending_proposal
        if alert.state != ACTIVE or proposal is None:
            raise _refusal(
                Conflict, "There is no pending update to reject.", by, "alert.reject_update", alert
            )
        reason = _reason(reason, by, "alert.reject_update", alert)
        proposal.state, proposal.decided_by_id = "rejected", by.user_id
        proposal.decided_at, proposal.reason = utcnow(), reason
        _audit(session, by, "alert.reject_update", alert, proposal=proposal.id, reason=reason)
        return alert
