"""The application factory."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask, Response, g
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from alertd.accounts.api import bp as accounts_api_bp
from alertd.accounts.views import bp as accounts_bp
from alertd.alerts.api import bp as api_bp
from alertd.alerts.views import bp as alerts_bp
from alertd.broker import Publisher
from alertd.context import Context, make_context
from alertd.db import MAX_ROW_ID
from alertd.i18n import init_i18n
from alertd.observe.views import bp as metrics_bp
from alertd.public.views import bp as public_bp
from alertd.settings import REPO_ROOT, Settings, ensure_secret_key, load_settings
from alertd.web.errors import register_error_pages
from alertd.web.filters import register_filters
from alertd.web.http_cache import PublicAwareSessionInterface
from alertd.web.stall import register_stall_banner

csrf = CSRFProtect()


class RowIdConverter(IntegerConverter):
    """<int:...> in every route. An id larger than any row's becomes 0, which names no row:
    the view answers 404 as for any missing id, and the database never sees a number it would
    refuse with an error. (A max on the converter would make Werkzeug answer 405 when another
    method's rule has the same path.)"""

    def to_python(self, value: str) -> int:
        number = int(super().to_python(value))
        return number if number <= MAX_ROW_ID else 0


def create_app(
    settings: Settings | None = None,
    *,
    context: Context | None = None,
    publisher: Publisher | None = None,
    test_config: Mapping[str, Any] | None = None,
) -> Flask:
    if context is None:
        settings = settings or load_settings()
        context = make_context(settings, publisher)
    settings = context.settings
    app = Flask(
        "alertd",
        template_folder=str(REPO_ROOT / "templates"),
        static_folder=str(REPO_ROOT / "alertd" / "web" / "static"),
        instance_path=str(settings.instance_path),
    )
    app.url_map.converters["int"] = RowIdConverter
    app.config.update(
        SECRET_KEY=ensure_secret_key(settings),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_NAME="alertd_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        # A photo (base64 in the API) plus the form; larger bodies are refused unread.
        MAX_CONTENT_LENGTH=settings.MAX_PHOTO_BYTES * 4 // 3 + 1_000_000,
        WTF_CSRF_TIME_LIMIT=None,
    )
    if test_config:
        app.config.update(test_config)
    app.extensions["alertd"] = context
    if settings.PROXY_HOPS:
        # Only behind proxies we run: otherwise any client could choose its own address, and
        # with it dodge the login throttle and forge the audit trail's "from where".
        hops = settings.PROXY_HOPS
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops
        )
    # Public documents, feeds and pages never vary on, nor set, the session cookie.
    app.session_interface = PublicAwareSessionInterface()
    csrf.init_app(app)
    init_i18n(app)
    register_filters(app)
    register_stall_banner(app)

    csrf.exempt(api_bp)
    csrf.exempt(accounts_api_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(alerts_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(accounts_api_bp)
    app.register_blueprint(public_bp)
    # Taken once: the routes registered and the links shown come from the same channels.
    channels = context.channels.channels()
    for channel in channels:
        # A channel's own routes (console pages, API, feeds, status callbacks, inbound
        # messages), only while it is enabled: a disabled channel's URLs answer 404.
        for routes in channel.routes():
            if routes.csrf_exempt:
                csrf.exempt(routes.blueprint)
            app.register_blueprint(routes.blueprint)
    app.register_blueprint(metrics_bp)

    register_error_pages(app)

    @app.context_processor
    def _channel_links() -> dict[str, Any]:
        # The enabled channels' entries in the console's navigation (base.html).
        actor = g.get("actor")
        if actor is None:
            return {}
        return {"channel_links": [link for c in channels for link in c.console_links(actor)]}

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "form-action 'self'; frame-ancestors 'none'",
        )
        if g.get("actor") is not None:
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app
