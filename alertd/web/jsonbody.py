"""Reading an API request's JSON body strictly: a body that is not a JSON object is refused
with a 400 that says why, never guessed to be ``{}``."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from alertd.errors import Invalid

# Alert content nests a few levels (areas, polygons, points); anything deeper is not ours.
MAX_DEPTH = 32


def _too_deep(value: Any) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"  # RFC 7396


def json_object(*, optional: bool = False, types: tuple[str, ...] = (JSON,)) -> dict[str, Any]:
    """The body as a JSON object. With ``optional``, an empty body means ``{}``; a body that is
    there but malformed, not JSON, or not an object is always a 400. ``types`` are the content
    types the endpoint takes (a merge patch is JSON too, but only where a patch is meant)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if optional:
            return {}
        raise Invalid(
            "The request body must be a JSON object (Content-Type: application/json).",
            fields={"body": "missing"},
        )
    if request.mimetype not in types:
        raise Invalid(
            f"Send the body as JSON with Content-Type: {' or '.join(types)}.",
            fields={"body": f"content type {request.mimetype or 'none'!s}"},
        )
    try:
        body = json.loads(raw)
    except RecursionError:
        body = None
        deep = True
    except (ValueError, UnicodeDecodeError) as error:
        raise Invalid(
            f"The request body is not valid JSON: {error}", fields={"body": "malformed JSON"}
        ) from None
    else:
        deep = _too_deep(body)
    if deep:
        raise Invalid(
            f"The request body nests deeper than {MAX_DEPTH} levels.",
            fields={"body": "nested too deeply"},
        )
    if not isinstance(body, dict):
        raise Invalid("The request body must be a JSON object.", fields={"body": "not an object"})
    return body


def refuse_bad_body() -> None:
    """A ``before_request`` for API blueprints: a body sent with any write is JSON, even where
    the action reads none of it, so nothing malformed is silently taken for ``{}``."""
    if request.method in ("POST", "PUT", "PATCH"):
        # Syntax only; each endpoint says which of the two JSON types it takes.
        json_object(optional=True, types=(JSON, MERGE_PATCH))
