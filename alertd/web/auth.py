"""Who is asking: a console session or an API bearer token, turned into an Actor."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort, current_app, g, jsonify, redirect, request, session, url_for

from alertd.accounts.models import User
from alertd.accounts.services import (
    LAST_USED_RESOLUTION,
    actor_for,
    token_actor,
    token_for,
    touch_token,
)
from alertd.actor import Actor
from alertd.context import Context
from alertd.db import utcnow

F = TypeVar("F", bound=Callable[..., Any])


def ctx() -> Context:
    return cast(Context, current_app.extensions["alertd"])


def client_address() -> str | None:
    # With ALERTD_PROXY_HOPS set, ProxyFix has already taken this from X-Forwarded-For.
    return request.remote_addr[:64] if request.remote_addr else None


def request_actor(user: User) -> Actor:
    return actor_for(user, client_address(), request.headers.get("User-Agent", "")[:500])


def load_session_actor() -> None:
    g.actor = None
    user_id = session.get("user_id")
    if user_id is None:
        return
    with ctx().db.session() as db_session:
        user = db_session.get(User, user_id)
        if user is None or not user.active or user.session_epoch != session.get("epoch"):
            session.clear()
            return
        g.actor = request_actor(user)


def current_actor() -> Actor:
    actor = g.get("actor")
    if actor is None:
        abort(401)
    return cast(Actor, actor)


def login_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("actor") is None:
            return redirect(url_for("accounts.login", next=request.full_path))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def load_token_actor() -> None:
    g.actor = None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return
    with ctx().db.session() as db_session:
        row = token_for(db_session, token.strip())
        if row is None:
            return
        # The token's id travels in the actor, and from there into its own audit field.
        g.actor = token_actor(row, client_address(), request.headers.get("User-Agent", "")[:500])
        stale = row.last_used_at is None or row.last_used_at < utcnow() - LAST_USED_RESOLUTION
    if stale:
        with ctx().db.transaction() as db_session:
            touch_token(db_session, g.actor.token_id)


def token_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("actor") is None:
            response = jsonify(
                error="unauthenticated",
                message="Send an API token as 'Authorization: Bearer <token>'.",
            )
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="alertd"'
            return response
        return view(*args, **kwargs)

    return cast(F, wrapped)
