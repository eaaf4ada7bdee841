"""The OpenAPI 3 description of API v1, served at /api/v1/openapi.json: the core's schemas
(``openapi_schemas``) and paths (``openapi_paths``), the credentials API's, and each enabled
channel's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from alertd import __version__
from alertd.accounts.openapi import PATHS as ACCOUNT_PATHS
from alertd.accounts.openapi import SCHEMAS as ACCOUNT_SCHEMAS
from alertd.alerts.openapi_paths import IDEMPOTENCY_KEY, core_paths, error_responses
from alertd.alerts.openapi_schemas import (
    ALERT,
    ALERT_BODY,
    ALERT_PATCH,
    ERROR,
    JURISDICTION,
    JURISDICTIONS,
    VERSION,
)
from alertd.channels.base import Channel

_METHODS = ("get", "put", "post", "patch", "delete")


def _with_common_errors(paths: dict[str, Any]) -> dict[str, Any]:
    """Every operation documents the answers every route can give: 400 (a malformed body or
    query), 401 (no or bad token), 403 (role), 404 where the path names something, and 413
    where a body is taken. Added here once, so no module's paths can forget one."""
    out: dict[str, Any] = {}
    for path, item in paths.items():
        item = dict(item)
        for method in _METHODS:
            if method not in item:
                continue
            operation = dict(item[method])
            codes = [400, 401, 403]
            if "{" in path:
                codes.append(404)
            if method in ("put", "post", "patch"):
                codes.append(413)
            operation["responses"] = error_responses(*codes) | operation.get("responses", {})
            item[method] = operation
        out[path] = item
    return out


def openapi_document(channels: Iterable[Channel] = ()) -> dict[str, Any]:
    """The API's document: the core's paths, and each enabled channel's (its ``openapi()``),
    so a disabled channel's routes, which answer 404, are not promised."""
    document = _document()
    schemas, paths = document["components"]["schemas"], document["paths"]
    for channel in channels:
        part = channel.openapi()
        if part is None:
            continue
        clash = (set(part.paths) & set(paths)) | (set(part.schemas) & set(schemas))
        if clash:
            raise ValueError(f"channel {channel.name} redefines {sorted(clash)} in the API")
        paths.update(part.paths)
        schemas.update(part.schemas)
    document["paths"] = _with_common_errors(paths)
    return document


def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "alertd API",
            "version": __version__,
            "description": "Raise, approve, update, cancel and resolve child abduction "
            "alerts. The approver is never the person who submitted.",
        },
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "parameters": {
                "AlertId": {
                    "name": "alert_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer"},
                },
                "IdempotencyKey": IDEMPOTENCY_KEY,
            },
            "schemas": {
                "AlertBody": ALERT_BODY,
                "Alert": ALERT,
                "Version": VERSION,
                "Error": ERROR,
                "AlertPatch": ALERT_PATCH,
                "Jurisdiction": JURISDICTION,
                "Jurisdictions": JURISDICTIONS,
                **ACCOUNT_SCHEMAS,
            },
        },
        "paths": {**core_paths(), **ACCOUNT_PATHS},
    }
