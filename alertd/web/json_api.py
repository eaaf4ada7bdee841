"""What every JSON API blueprint under ``/api/v1`` shares: bearer-token actors, bodies checked
before any view runs, and errors answered as JSON (never the console's HTML pages)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from werkzeug.exceptions import HTTPException

from alertd.errors import ServiceError
from alertd.web.auth import load_token_actor
from alertd.web.errors import api_error
from alertd.web.jsonbody import refuse_bad_body

API_PREFIX = "/api/v1"


def _service_error(error: ServiceError) -> tuple[Response, int]:
    return jsonify(error.as_json()), error.status


def json_api_blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint of ``/api/v1`` routes; the app exempts it from CSRF (no cookies are read)."""
    bp = Blueprint(name, import_name, url_prefix=API_PREFIX)
    bp.before_request(load_token_actor)
    bp.before_request(refuse_bad_body)
    bp.register_error_handler(ServiceError, _service_error)
    bp.register_error_handler(HTTPException, api_error)
    return bp
