"""The OpenAPI description of ``/api/v1/endpoints``, merged into the API's document."""

from __future__ import annotations

from typing import Any

from alertd.channels.webhooks.models import EVENTS, FORMATS
from alertd.channels.webhooks.services import LANGUAGES

_TEXT = {"type": "string"}
_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

ENDPOINT_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["url"],
    "additionalProperties": False,
    "properties": {
        "url": {
            "type": "string",
            "description": "https URL; its host must resolve only to public addresses",
        },
        "description": _TEXT,
        "events": {"type": "array", "items": {"type": "string", "enum": list(EVENTS)}},
        "language": {"type": "string", "enum": list(LANGUAGES), "default": "en"},
        "format": {"type": "string", "enum": list(FORMATS), "default": "standard"},
        "enabled": {"type": "boolean", "default": True},
        "accepts_tests": {"type": "boolean", "default": False},
        "token": {"type": "string", "description": "Mastodon access token or Telegram bot token"},
        "chat_id": {"type": "string", "description": "Telegram channel"},
    },
}

ENDPOINT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "url": _TEXT,
        "description": _TEXT,
        "events": {"type": "array", "items": _TEXT},
        "language": _TEXT,
        "format": _TEXT,
        "enabled": {"type": "boolean"},
        "accepts_tests": {"type": "boolean"},
        "disabled_reason": {"type": ["string", "null"]},
        "circuit": {"type": "string", "enum": ["closed", "failing", "open"]},
        "circuit_open_until": {"type": ["string", "null"], "format": "date-time"},
        "consecutive_failures": {"type": "integer"},
        "failed_deliveries": {"type": "integer"},
        "rotating": {"type": "boolean", "description": "the previous secret still signs"},
        "secret": {
            "type": "string",
            "description": "whsec_...; only in the answer that created or rotated it",
        },
    },
}

ATTEMPTS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "attempts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "delivery_id": {"type": "integer"},
                    "endpoint_id": {"type": "integer"},
                    "at": {"type": "string", "format": "date-time"},
                    "status_code": {"type": ["integer", "null"]},
                    "latency_ms": {"type": "integer"},
                    "response_head": _TEXT,
                    "outcome": _TEXT,
                },
            },
        }
    },
}


def _ok(description: str, schema: dict[str, Any], *errors: int) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": description, "content": {"application/json": {"schema": schema}}}
    }
    for code in (401, 403, *errors):
        responses[str(code)] = {"description": "error", **_ERROR}
    return responses


_ID = [{"name": "endpoint_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
_REF = {"$ref": "#/components/schemas/Endpoint"}
_REPLAYED = {"type": "object", "properties": {"replayed": {"type": "integer"}}}

SCHEMAS = {"Endpoint": ENDPOINT, "EndpointBody": ENDPOINT_BODY}

PATHS: dict[str, Any] = {
    "/api/v1/endpoints": {
        "get": {
            "summary": "Webhook endpoints (operator)",
            "responses": _ok("endpoints", {"type": "object"}),
        },
        "post": {
            "summary": "Add an endpoint (operator); the answer carries its secret, once",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/EndpointBody"}}
                },
            },
            "responses": {
                "201": {
                    "description": "created",
                    "content": {"application/json": {"schema": _REF}},
                },
                "400": {"description": "invalid, or the URL is refused (SSRF guard)", **_ERROR},
                "401": {"description": "no or bad token", **_ERROR},
                "403": {"description": "role not allowed", **_ERROR},
            },
        },
    },
    "/api/v1/endpoints/{endpoint_id}": {
        "parameters": _ID,
        "get": {"summary": "One endpoint and its circuit", "responses": _ok("endpoint", _REF, 404)},
    },
    "/api/v1/endpoints/{endpoint_id}/disable": {
        "parameters": _ID,
        "post": {"summary": "Stop sending to it", "responses": _ok("endpoint", _REF, 404)},
    },
    "/api/v1/endpoints/{endpoint_id}/enable": {
        "parameters": _ID,
        "post": {"summary": "Send to it again", "responses": _ok("endpoint", _REF, 400, 404)},
    },
    "/api/v1/endpoints/{endpoint_id}/rotate-secret": {
        "parameters": _ID,
        "post": {
            "summary": "New secret (shown once); the previous one also signs for 24 hours",
            "responses": _ok("endpoint with its new secret", _REF, 404, 409),
        },
    },
    "/api/v1/endpoints/{endpoint_id}/attempts": {
        "parameters": _ID,
        "get": {"summary": "Delivery log: each request", "responses": _ok("log", ATTEMPTS, 404)},
    },
    "/api/v1/endpoints/{endpoint_id}/replay": {
        "parameters": _ID,
        "post": {"summary": "Replay every failed delivery", "responses": _ok("count", _REPLAYED)},
    },
    "/api/v1/webhook-deliveries/{delivery_id}/replay": {
        "parameters": [
            {"name": "delivery_id", "in": "path", "required": True, "schema": {"type": "integer"}}
        ],
        "post": {
            "summary": "Replay one failed delivery (same webhook-id)",
            "responses": _ok("count", _REPLAYED, 409),
        },
    },
    "/api/v1/alerts/{alert_id}/webhook-attempts": {
        "parameters": [{"$ref": "#/components/parameters/AlertId"}],
        "get": {"summary": "Delivery log of one alert", "responses": _ok("log", ATTEMPTS)},
    },
}
