"""OpenAPI paths of the credentials API, merged into the document at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

_TIME = {"type": ["string", "null"], "format": "date-time"}
TOKEN = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "prefix": {"type": "string"},
        "owner": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "last_used_at": _TIME,
        "revoked_at": _TIME,
        "token": {"type": "string", "description": "only when created; shown once"},
    },
    "required": ["id", "name", "prefix", "owner", "created_at", "last_used_at", "revoked_at"],
}
_JSON = "application/json"


def _ok(description: str, schema: dict[str, Any], status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {_JSON: {"schema": schema}}}}


SCHEMAS = {"Token": TOKEN}
_REF = {"$ref": "#/components/schemas/Token"}

PATHS: dict[str, Any] = {
    "/api/v1/tokens": {
        "get": {
            "summary": "API tokens: one's own; an admin sees every one",
            "responses": _ok(
                "tokens",
                {
                    "type": "object",
                    "properties": {"tokens": {"type": "array", "items": _REF}},
                    "required": ["tokens"],
                },
            ),
        },
        "post": {
            "summary": "Create a token for oneself (nobody mints one for someone else); the "
            "token is in the answer only",
            "requestBody": {
                "content": {
                    _JSON: {
                        "schema": {
                            "type": "object",
                            "properties": {"name": {"type": "string", "maxLength": 120}},
                        }
                    }
                }
            },
            "responses": _ok("the new token", _REF, "201"),
        },
    },
    "/api/v1/tokens/{token_id}/revoke": {
        "parameters": [
            {"name": "token_id", "in": "path", "required": True, "schema": {"type": "integer"}}
        ],
        "post": {
            "summary": "Revoke a token at once: one's own, or any for an admin",
            "responses": _ok("the revoked token", _REF),
        },
    },
    "/api/v1/users/{name}/{change}": {
        "parameters": [
            {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
            {
                "name": "change",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "enum": ["deactivate", "activate"]},
            },
        ],
        "post": {
            "summary": "Deactivate or reactivate a user (admin): a deactivated user's sessions "
            "and tokens stop working at once",
            "responses": _ok(
                "the user",
                {
                    "type": "object",
                    "properties": {
                        "username": {"type": "string"},
                        "role": {"type": "string"},
                        "active": {"type": "boolean"},
                    },
                },
            ),
        },
    },
}
