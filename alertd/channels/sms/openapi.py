"""The OpenAPI description of ``/api/v1/subscribers``, merged into the API's document."""

from __future__ import annotations

from typing import Any

from alertd.channels.sms.services import LANGUAGES

_TEXT = {"type": "string"}
_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_AREAS = {
    "type": "array",
    "items": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,40}=[A-Za-z0-9_.:-]{1,100}$"},
    "description": "geocode pairs such as SAME=006037, matched against an alert's geocodes",
}

SUBSCRIBER_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["phone"],
    "additionalProperties": False,
    "description": "at least one area, or a point (lat and lon)",
    "properties": {
        "phone": {"type": "string", "description": "E.164, e.g. +14155550100"},
        "language": {"type": "string", "enum": list(LANGUAGES), "default": "en"},
        "areas": _AREAS,
        "lat": {"type": ["number", "null"], "minimum": -90, "maximum": 90},
        "lon": {"type": ["number", "null"], "minimum": -180, "maximum": 180},
    },
}

SUBSCRIBER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "phone": _TEXT,
        "language": _TEXT,
        "areas": {"type": "array", "items": _TEXT},
        "lat": {"type": ["number", "null"]},
        "lon": {"type": ["number", "null"]},
        "opted_in_via": _TEXT,
        "opted_in_at": {"type": "string", "format": "date-time"},
        "opted_out": {"type": "boolean"},
        "opted_out_at": {"type": ["string", "null"], "format": "date-time"},
        "invalid": {"type": "boolean", "description": "the gateway refused the number for good"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}

_REF = {"$ref": "#/components/schemas/Subscriber"}
_ID = [{"name": "subscriber_id", "in": "path", "required": True, "schema": {"type": "integer"}}]


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): {"description": "error", **_ERROR} for code in (401, 403, *codes)}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


SCHEMAS = {"Subscriber": SUBSCRIBER, "SubscriberBody": SUBSCRIBER_BODY}

PATHS: dict[str, Any] = {
    "/api/v1/subscribers": {
        "get": {
            "summary": "SMS subscribers (operator, admin), a page at a time in id order",
            "parameters": [
                {
                    "name": "phone",
                    "in": "query",
                    "schema": {"type": "string", "maxLength": 20},
                    "description": "only numbers starting with this, e.g. +1415",
                },
                {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
            ],
            "responses": {
                "200": _json(
                    "a page",
                    {
                        "type": "object",
                        "properties": {
                            "subscribers": {"type": "array", "items": _REF},
                            "next_after": {"type": ["integer", "null"]},
                        },
                    },
                ),
                **_errors(400),
            },
        },
        "post": {
            "summary": "Add a subscriber (operator, admin)",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/SubscriberBody"}}
                },
            },
            "responses": {
                "201": _json("created", _REF),
                **_errors(400, 409),
            },
        },
    },
    "/api/v1/subscribers/{subscriber_id}": {
        "parameters": _ID,
        "get": {
            "summary": "One subscriber",
            "responses": {"200": _json("subscriber", _REF), **_errors(404)},
        },
        "delete": {
            "summary": "Delete a subscriber",
            "responses": {
                "200": _json(
                    "deleted", {"type": "object", "properties": {"deleted": {"type": "integer"}}}
                ),
                **_errors(404),
            },
        },
    },
}
