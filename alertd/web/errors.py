"""Error answers for every route: JSON for the API, the console's own page otherwise, both
carrying the headers HTTP requires (``Allow`` on a 405)."""

from __future__ import annotations

from flask import Flask, Response, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from alertd.errors import ServiceError
from alertd.web.auth import ctx, load_session_actor

# Messages for error pages, in the officer's words rather than HTTP's.
ERROR_TEXT = {
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


def _headers(error: HTTPException) -> list[tuple[str, str]]:
    # Allow (405), Retry-After and the like; the body's type is ours to set.
    return [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]


def api_error(error: HTTPException) -> Response:
    response = jsonify(
        error=(error.name or "error").lower().replace(" ", "_"), message=error.description
    )
    response.status_code = error.code or 500
    response.headers.extend(_headers(error))
    return response


def console_error(error: HTTPException) -> Response:
    if "actor" not in g:
        # Refused before the session was read (CSRF runs first): the page still shows who is
        # signed in, and the navigation.
        load_session_actor()
    status = error.code or 500
    message = ERROR_TEXT.get(status, error.description or "Something went wrong.")
    if (
        error.description
        and status in (400, 403, 404, 409)
        and error.description != type(error).description
    ):
        message = error.description  # A view said what exactly was wrong.
    if status == 413:
        # Said with the limit, and how to get back what was typed (the browser keeps it).
        limit = ctx().settings.MAX_PHOTO_BYTES / 1_000_000
        message = (
            f"The upload is too large: a photo may be at most {limit:.1f} MB. "
            "Go back to keep what you typed, and choose a smaller photo."
        )
    if error.name == "Bad Request" and "CSRF" in (error.description or ""):
        message = (
            "The form was not sent from this console or has expired. Reload the page and try again."
        )
    response = Response(
        render_template("errors/error.html", status=status, title=error.name, message=message),
        status=status,
        mimetype="text/html",
    )
    response.headers.extend(_headers(error))
    return response


def service_error(error: ServiceError) -> Response:
    """A refusal no view caught: the same answer a view would have given."""
    if request.path.startswith("/api/"):
        response = jsonify(error.as_json())
        response.status_code = error.status
        return response
    if "actor" not in g:
        load_session_actor()
    title = HTTP_STATUS_CODES.get(error.status, "Error")
    return Response(
        render_template(
            "errors/error.html", status=error.status, title=title, message=error.message
        ),
        status=error.status,
        mimetype="text/html",
    )


def register_error_pages(app: Flask) -> None:
    app.register_error_handler(ServiceError, service_error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        # API clients always get JSON, even for errors raised before a blueprint view runs.
        if request.path.startswith("/api/"):
            return api_error(error)
        return console_error(error)
