"""Console sign-in, sign-out and user administration, plus the error pages every console
route shares."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from werkzeug.exceptions import HTTPException

from alertd.accounts.models import ApiToken
from alertd.accounts.services import (
    authenticate,
    create_token,
    create_user,
    list_users,
    record_logout,
)
from alertd.actor import ROLES, Actor
from alertd.errors import ServiceError, TooManyRequests, Unauthenticated
from alertd.web.auth import client_address, ctx, load_session_actor, login_required

bp = Blueprint("accounts", __name__)

# Messages for error pages, in the officer's words rather than HTTP's.
_ERROR_TEXT = {
    400: "The request could not be understood. If you were sending a form, reload the page and "
    "try again.",
    401: "Please sign in.",
    403: "Your role does not allow this.",
    404: "There is nothing here. Check the address or go back to the alert list.",
    405: "That action is not available here.",
    409: "This does not fit the alert's current state.",
    413: "The upload is too large.",
    429: "Too many attempts. Wait a few minutes and try again.",
}


@bp.before_app_request
def _load_actor() -> None:
    # API requests authenticate with bearer tokens in their own blueprint, never a cookie.
    if not request.path.startswith("/api/"):
        load_session_actor()


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {"actor": g.get("actor"), "roles": ROLES}


@bp.app_errorhandler(HTTPException)
def _http_error(error: HTTPException) -> ResponseReturnValue:
    status = error.code or 500
    if request.path.startswith("/api/"):
        return jsonify(
            error=(error.name or "error").lower().replace(" ", "_"), message=error.description
        ), status
    message = _ERROR_TEXT.get(status, error.description or "Something went wrong.")
    if (
        error.description
        and status in (400, 403, 404, 409)
        and error.description != type(error).description
    ):
        message = error.description  # A view said what exactly was wrong.
    if error.name == "Bad Request" and "CSRF" in (error.description or ""):
        message = (
            "The form was not sent from this console or has expired. Reload the page and try again."
        )
    return render_template(
        "errors/error.html", status=status, title=error.name, message=message
    ), status


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
    refusal: ServiceError | None = None
    with ctx().db.transaction() as db:
        # authenticate() writes the failure's audit entry and then raises; catching here,
        # inside the transaction, lets the commit keep that entry for the rate limit.
        try:
            user = authenticate(
                db,
                username,
                password,
                address=client_address(),
                user_agent=request.headers.get("User-Agent", "")[:500],
                max_failures=settings.LOGIN_MAX_FAILURES,
                window_seconds=settings.LOGIN_WINDOW_SECONDS,
            )
            user_id, epoch = user.id, user.session_epoch
        except (Unauthenticated, TooManyRequests) as error:
            refusal = error
    if refusal is not None:
        return render_template(
            "accounts/login.html", next=next_url, username=username, error=refusal.message
        ), refusal.status
    # A fresh session on sign-in, so a cookie planted before it carries nothing over.
    session.clear()
    session["user_id"] = user_id
    session["epoch"] = epoch
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


def _users_page(
    status: int = 200,
    *,
    error: ServiceError | None = None,
    form: dict[str, str] | None = None,
    new_token: dict[str, str] | None = None,
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
    return render_template(
        "accounts/users.html",
        users=users,
        error=error,
        fields=error.fields if error else {},
        form=form or {},
        new_token=new_token,
    ), status


def _admin_only() -> ResponseReturnValue | None:
    actor: Actor = g.actor
    if not actor.can("users.manage"):
        return render_template(
            "errors/error.html",
            status=403,
            title="Forbidden",
            message="Only an admin manages users and tokens.",
        ), 403
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
            return render_template(
                "errors/error.html", status=403, title="Forbidden", message=error.message
            ), 403
        return _users_page(error.status, error=error, form=form)
    flash(f"User {form['username'].strip()} created as {form['role']}.", "ok")
    return redirect(url_for("accounts.users"))


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
            return render_template(
                "errors/error.html", status=403, title="Forbidden", message=error.message
            ), 403
        return _users_page(error.status, error=error)
    # Rendered, not redirected: the token exists nowhere else, and a flash would put it in the
    # session cookie.
    return _users_page(
        201, new_token={"username": name, "token": token, "prefix": prefix, "name": label}
    )
