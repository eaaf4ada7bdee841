"""The JSON schemas of API v1's document (alertd.alerts.openapi): an alert's body and the alert
as answered, its versions, a merge patch, the jurisdictions, errors and the actions' bodies."""

from __future__ import annotations

from typing import Any

_TEXT = {"type": "string"}
_NUMBER = {"type": ["number", "null"]}
_INT = {"type": ["integer", "null"]}


def obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


ALERT_BODY = obj(
    {
        "status": {"type": "string", "enum": ["Actual", "Exercise", "Test"], "default": "Actual"},
        "jurisdiction": {"type": "string", "description": "rule set name, e.g. us-doj or eu"},
        "criteria": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "case_reference": _TEXT,
        "children": {
            "type": "array",
            "maxItems": 10,
            "items": obj(
                {
                    "name": _TEXT,
                    "age": _INT,
                    "sex": _TEXT,
                    "height_cm": _NUMBER,
                    "weight_kg": _NUMBER,
                    "hair": _TEXT,
                    "eyes": _TEXT,
                    "clothing": _TEXT,
                    "marks": _TEXT,
                }
            ),
        },
        "suspects": {
            "type": "array",
            "maxItems": 10,
            "items": obj({"name": _TEXT, "description": _TEXT}),
        },
        "vehicles": {
            "type": "array",
            "maxItems": 10,
            "items": obj(
                {
                    "make": _TEXT,
                    "model": _TEXT,
                    "colour": _TEXT,
                    "year": _INT,
                    "plate": _TEXT,
                    "plate_region": _TEXT,
                }
            ),
        },
        "last_seen_at": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "with a UTC offset; null when not known",
        },
        "last_seen_place": _TEXT,
        "direction_of_travel": _TEXT,
        "tip_line": {
            "type": "string",
            "description": "a phone number with its country code (+1 800 555 0199); with "
            "ALERTD_SMS_DEFAULT_REGION set, also a national number or that region's emergency "
            "number (911). Free text is refused. Stored in international format.",
        },
        "description": _TEXT,
        "instruction": _TEXT,
        "areas": {
            "type": "array",
            "maxItems": 10,
            "items": obj(
                {
                    "description": _TEXT,
                    "geocodes": {"type": "object", "additionalProperties": {"type": "string"}},
                    "polygon": {
                        "type": "array",
                        "minItems": 3,
                        "items": {
                            "type": "array",
                            "minItems": 2,
                            "maxItems": 2,
                            "items": {"type": "number"},
                        },
                    },
                    "circle": obj(
                        {
                            "lat": {"type": "number"},
                            "lon": {"type": "number"},
                            "radius_km": {"type": "number"},
                        },
                        ["lat", "lon", "radius_km"],
                    ),
                },
                ["description"],
            ),
        },
        "languages": {"type": "array", "items": {"type": "string", "example": "en-US"}},
        "translations": {
            "type": "object",
            "additionalProperties": obj({"description": _TEXT, "instruction": _TEXT}),
        },
        "expires_at": {"type": "string", "format": "date-time"},
        "photo": {
            "type": "string",
            "format": "byte",
            "description": "JPEG or PNG, base64-encoded; size-limited",
        },
    }
)

VERSION = obj(
    {
        "seq": {"type": "integer"},
        "identifier": _TEXT,
        "msg_type": {"type": "string", "enum": ["Alert", "Update", "Cancel"]},
        "kind": {
            "type": "string",
            "enum": ["alert", "update", "extend", "resolve", "cancel", "expire"],
        },
        "status": _TEXT,
        "sent_at": {"type": "string", "format": "date-time"},
        "expires_at": {"type": "string", "format": "date-time"},
        "references": {
            "type": "array",
            "items": obj({"sender": _TEXT, "identifier": _TEXT, "sent": _TEXT}),
        },
    }
)

ALERT = obj(
    {
        "id": {"type": "integer"},
        "public_id": _TEXT,
        "state": {
            "type": "string",
            "enum": ["draft", "pending", "active", "cancelled", "resolved", "expired"],
        },
        "status": _TEXT,
        "jurisdiction": _TEXT,
        "case_reference": _TEXT,
        "expires_at": {"type": "string", "format": "date-time"},
        "content": ALERT_BODY,
        "photo_url": {"type": ["string", "null"]},
        "versions": {"type": "array", "items": VERSION},
        "pending_update": {"type": ["object", "null"]},
        "deliveries": {
            "type": "object",
            "description": "channel -> state -> count",
            "additionalProperties": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
        "progress": {
            "type": "array",
            "description": "per version, newest first: per channel the dispatch state, planned, "
            "sent, delivered, failed, unknown, skipped and waiting counts, percent, and the "
            "first and last send times",
            "items": {"type": "object"},
        },
    }
)


ALERT_PATCH = {
    "type": "object",
    "description": "A JSON Merge Patch (RFC 7396) of AlertBody: members replace the alert's "
    "current values, null removes one, lists are replaced whole. The result is checked like a "
    "full body and refused with the same field messages.",
    "properties": ALERT_BODY["properties"],
}

JURISDICTION = obj(
    {
        "name": {"type": "string", "description": "what AlertBody.jurisdiction takes"},
        "title": _TEXT,
        "public_name": {"type": "string", "description": "what public texts call it"},
        "source": _TEXT,
        "criteria": {
            "type": "array",
            "items": obj(
                {
                    "key": {"type": "string", "description": "a key of AlertBody.criteria"},
                    "label": _TEXT,
                    "required": {"type": "boolean", "description": "needed for approval"},
                },
                ["key", "label", "required"],
            ),
        },
        "rules": obj(
            {
                "max_age": {"type": "integer", "description": "oldest child age accepted"},
                "requires_case_reference": {"type": "boolean"},
            },
            ["max_age", "requires_case_reference"],
        ),
    },
    ["name", "title", "criteria", "rules"],
)
JURISDICTIONS = obj(
    {
        "default": {"type": "string", "description": "used when a body names none"},
        "jurisdictions": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/Jurisdiction"},
        },
    },
    ["default", "jurisdictions"],
)

ERROR = obj(
    {"error": _TEXT, "message": _TEXT, "fields": {"type": "object", "additionalProperties": _TEXT}},
    ["error", "message"],
)
REASON = obj({"reason": _TEXT})
PROPOSAL = obj({"proposal_id": {"type": "integer", "description": "pending_update.id"}})

ALERT_PAGE = obj(
    {
        "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
        "next_cursor": {"type": ["string", "null"]},
        "next": {"type": ["string", "null"]},
    },
    ["alerts", "next_cursor", "next"],
)
