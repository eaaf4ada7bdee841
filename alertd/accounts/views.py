"""Console sign-in, sign-out and user administration, plus the error pages every console
route shares."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alertd.accounts.models import ApiToken
from alertd.accounts.services import (
    authenticate,
    change_password,
    create_token,
    create_user,
    known_throttled,
    list_tokens,
    list_users,
    record_logout,
    revoke_token,
    set_active,
)
from alertd.actor import ROLES, Actor
from alertd.errors import ServiceError, TooManyRequests, Unauthenticated
from alertd.i18n import with_article
from alertd.web.auth import client_address, ctx, load_session_actor, login_required
from alertd.web.http_cache import is_public_request

bp = Blueprint("accounts", __name__)
THROTTLED = "Too many failed logins. Wait a few minutes and try again."


@bp.before_app_request
def _load_actor() -> None:
    # API requests authenticate with bearer tokens in their own blueprint, never a cookie.
    # Public documents, feeds and pages are the same for everyone and never read the cookie.
    if not request.path.startswith("/api/") and not is_public_request():
        load_session_actor()


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {"actor": g.get("actor"), "roles": ROLES}


def safe_next(target: str | None) -> str:
    """Only a path on this site, never another host (``//evil``, ``/\\evil``) or scheme."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or any(ord(ch) < 32 for ch in target)
    ):
        return url_for("alerts.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    next_url = request.values.get("next", "")
    if request.method == "GET":
        if g.get("actor") is not None:
            return redirect(safe_next(next_url))
        return render_template("accounts/login.html", next=next_url, username="", error=None)
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    settings = ctx().settings
    memo = current_app.extensions.setdefault("alertd.throttle_memo", {})
    if known_throttled(memo, username, client_address()):
        # Refused from memory: a flood must not queue for the database beside approvals.
        return render_template(
            "accounts/login.html", next=next_url, username=username, error=THROTTLED
        ), 429
    try:
        user = authenticate(
            ctx().db,
            username,
            password,
            address=client_address(),
            user_agent=request.headers.get("User-Agent", "")[:500],
            max_failures=settings.LOGIN_MAX_FAILURES,
            window_seconds=settings.LOGIN_WINDOW_SECONDS,
            memo=memo,
        )
    except (Unauthenticated, TooManyRequests) as refusal:
        return render_template(
            "accounts/login.html", next=next_url, username=username, error=refusal.message
        ), refusal.status
    # A fresh session on sign-in, so a cookie planted before it carries nothing over.
    session.clear()
    session["user_id"] = user.id
    session["epoch"] = user.session_epoch
    session.permanent = True
    return redirect(safe_next(next_url))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    actor: Actor | None = g.get("actor")
    if actor is not None:
        with ctx().db.transaction() as db:
            record_logout(db, actor)
    session.clear()
    flash("You are signed out.", "ok")
    return redirect(url_for("accounts.login"))


def _token_rows(db: Session, actor: Actor, *, own_only: bool = False) -> list[dict[str, Any]]:
    return [
        {
            "id": t.id,
            "name": t.name,
            "prefix": t.prefix,
            "owner": t.user.username,
            "created_at": t.created_at,
            "last_used_at": t.last_used_at,
            "revoked_at": t.revoked_at,
        }
        for t in list_tokens(db, by=actor, own_only=own_only)
    ]


def _users_page(
    status: int = 200,
    *,
    error: ServiceError | None = None,
    form: dict[str, str] | None = None,
) -> ResponseReturnValue:
    with ctx().db.session() as db:
        counts = {
            uid: n
            for uid, n in db.execute(
                select(ApiToken.user_id, func.count())
                .where(ApiToken.revoked_at.is_(None))
                .group_by(ApiToken.user_id)
            )
        }
        users = [
            {
                "username": u.username,
                "display_name": u.display_name,
                "role": u.role,
                "active": u.active,
                "created_at": u.created_at,
                "tokens": counts.get(u.id, 0),
            }
            for u in list_users(db)
        ]
        tokens = _token_rows(db, g.actor)
    return render_template(
        "accounts/users.html",
        users=users,
        tokens=tokens,
        error=error,
        fields=error.fields if error else {},
        form=form or {},
    ), status


def _forbidden(message: str) -> ResponseReturnValue:
    return render_template("errors/error.html", status=403, title="Forbidden", message=message), 403


def _admin_only() -> ResponseReturnValue | None:
    actor: Actor = g.actor
    if not actor.can("users.manage"):
        return _forbidden("Only an admin manages users and tokens.")
    return None


@bp.get("/users")
@login_required
def users() -> ResponseReturnValue:
    return _admin_only() or _users_page()


@bp.post("/users")
@login_required
def create_user_view() -> ResponseReturnValue:
    form = {k: request.form.get(k, "") for k in ("username", "display_name", "role")}
    try:
        with ctx().db.transaction() as db:
            create_user(
                db,
                form["username"],
                form["role"],
                request.form.get("password", ""),
                by=g.actor,
                display_name=form["display_name"].strip()[:120],
            )
    except ServiceError as error:
        if error.status == 403:
            return _forbidden(error.message)
        return _users_page(error.status, error=error, form=form)
    flash(f"User {form['username'].strip()} created as {with_article(form['role'])}.", "ok")
    return redirect(url_for("accounts.users"))


@bp.post("/users/<name>/<any(deactivate, activate):change>")
@login_required
def set_active_view(name: str, change: str) -> ResponseReturnValue:
    try:
        with ctx().db.transaction() as db:
            set_active(db, name, change == "activate", by=g.actor)
    except ServiceError as error:
        if error.status == 403:
            return _forbidden(error.message)
        return _users_page(error.status, error=error)
    flash(f"User {name} {change}d.", "ok")
    return redirect(url_for("accounts.users"))


def _account_page(
    status: int = 200,
    *,
    error: ServiceError | None = None,
    new_token: dict[str, str] | None = None,
) -> ResponseReturnValue:
    with ctx().db.session() as db:
        # Only one's own tokens here, even for an admin (who sees all on the users page).
        tokens = _token_rows(db, g.actor, own_only=True)
    return render_template(
        "accounts/account.html",
        tokens=tokens,
        error=error,
        fields=error.fields if error else {},
        new_token=new_token,
    ), status


@bp.get("/account")
@login_required
def account() -> ResponseReturnValue:
    return _account_page()


@bp.post("/account/password")
@login_required
def change_password_view() -> ResponseReturnValue:
    try:
        with ctx().db.transaction() as db:
            epoch = change_password(
                db,
                g.actor,
                request.form.get("current_password", ""),
                request.form.get("new_password", ""),
            )
    except ServiceError as error:
        return _account_page(error.status, error=error)
    # Every other session of the user ends with the old epoch; this one carries on.
    session["epoch"] = epoch
    flash("Your password is changed, and your other sessions are signed out.", "ok")
    return redirect(url_for("accounts.account"))


@bp.post("/users/<name>/tokens")
@login_required
def create_token_view(name: str) -> ResponseReturnValue:
    # The column holds 120 characters; a longer label would fail in the database.
    label = request.form.get("name", "").strip()[:120]
    try:
        with ctx().db.transaction() as db:
            new = create_token(db, name, label, by=g.actor)
            token, prefix, label = new.token, new.record.prefix, new.record.name
    except ServiceError as error:
        if error.status == 403:
            return _forbidden(error.message)
        return _account_page(error.status, error=error)
    # Rendered, not redirected: the token exists nowhere else, and a flash would put it in the
    # session cookie.
    return _account_page(
        201, new_token={"username": name, "token": token, "prefix": prefix, "name": label}
    )


@bp.post("/tokens/<int:token_id>/revoke")
@login_required
def revoke_token_view(token_id: int) -> ResponseReturnValue:
    try:
        with ctx().db.transaction() as db:
            row = revoke_token(db, token_id, by=g.actor)
            label = f"{row.prefix}… ({row.name}, {row.user.username})"
    except ServiceError as error:
        abort(error.status, error.message)
    flash(f"Token {label} revoked.", "ok")
    back = url_for("accounts.users" if g.actor.can("tokens.manage") else "accounts.account")
    return redirect(back)
