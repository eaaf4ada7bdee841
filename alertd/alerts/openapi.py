"""The OpenAPI 3 description of API v1, served at /api/v1/openapi.json."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from alertd import __version__
from alertd.accounts.openapi import PATHS as ACCOUNT_PATHS
from alertd.accounts.openapi import SCHEMAS as ACCOUNT_SCHEMAS
from alertd.alerts.models import STATES as ALERT_STATES
from alertd.channels.base import Channel

_TEXT = {"type": "string"}
_NUMBER = {"type": ["number", "null"]}
_INT = {"type": ["integer", "null"]}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


ALERT_BODY = _obj(
    {
        "status": {"type": "string", "enum": ["Actual", "Exercise", "Test"], "default": "Actual"},
        "jurisdiction": {"type": "string", "description": "rule set name, e.g. us-doj or eu"},
        "criteria": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "case_reference": _TEXT,
        "children": {
            "type": "array",
            "maxItems": 10,
            "items": _obj(
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
            "items": _obj({"name": _TEXT, "description": _TEXT}),
        },
        "vehicles": {
            "type": "array",
            "maxItems": 10,
            "items": _obj(
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
            "items": _obj(
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
                    "circle": _obj(
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
            "additionalProperties": _obj({"description": _TEXT, "instruction": _TEXT}),
        },
        "expires_at": {"type": "string", "format": "date-time"},
        "photo": {
            "type": "string",
            "format": "byte",
            "description": "JPEG or PNG, base64-encoded; size-limited",
        },
    }
)

VERSION = _obj(
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
            "items": _obj({"sender": _TEXT, "identifier": _TEXT, "sent": _TEXT}),
        },
    }
)

ALERT = _obj(
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

# Examples a dispatch system can send as they are. The alert is an exercise, so one copied
# verbatim reaches only the test feeds; it meets the us-doj criteria, so it can be approved.
VEHICLE_EXAMPLE = {
    "make": "Nissan",
    "model": "Versa",
    "colour": "blue",
    "year": 2014,
    "plate": "6WCU986",
    "plate_region": "CA",
}
CREATE_EXAMPLE: dict[str, Any] = {
    "status": "Exercise",
    "jurisdiction": "us-doj",
    "criteria": {
        "minor": True,
        "abduction_confirmed": True,
        "imminent_danger": True,
        "sufficient_description": True,
        "ncic_entered": True,
    },
    "case_reference": "NCIC-2026-000123",
    "children": [
        {"name": "Jane Doe", "age": 7, "sex": "female", "hair": "brown", "clothing": "red coat"}
    ],
    "suspects": [{"name": "John Roe", "description": "man in his 40s, grey beard"}],
    "vehicles": [VEHICLE_EXAMPLE],
    "last_seen_place": "Main St & 3rd Ave, Springfield",
    "direction_of_travel": "northbound on I-5",
    "tip_line": "+1 800 555 0199",
    "description": "Jane was taken from a playground by a man she does not know.",
    "areas": [
        {
            "description": "Springfield County",
            "geocodes": {"SAME": "006037"},
            "polygon": [[34.0, -118.5], [34.2, -118.5], [34.2, -118.2], [34.0, -118.5]],
        }
    ],
    "languages": ["en-US"],
}
# Two fields: the vehicle with its new plate (a merge patch replaces a list whole) and where
# it is heading now. Everything else stays as it is.
PATCH_EXAMPLE: dict[str, Any] = {
    "vehicles": [{**VEHICLE_EXAMPLE, "plate": "7XYZ321"}],
    "direction_of_travel": "southbound on I-405",
}

ALERT_PATCH = {
    "type": "object",
    "description": "A JSON Merge Patch (RFC 7396) of AlertBody: members replace the alert's "
    "current values, null removes one, lists are replaced whole. The result is checked like a "
    "full body and refused with the same field messages.",
    "properties": ALERT_BODY["properties"],
}

JURISDICTION = _obj(
    {
        "name": {"type": "string", "description": "what AlertBody.jurisdiction takes"},
        "title": _TEXT,
        "public_name": {"type": "string", "description": "what public texts call it"},
        "source": _TEXT,
        "criteria": {
            "type": "array",
            "items": _obj(
                {
                    "key": {"type": "string", "description": "a key of AlertBody.criteria"},
                    "label": _TEXT,
                    "required": {"type": "boolean", "description": "needed for approval"},
                },
                ["key", "label", "required"],
            ),
        },
        "rules": _obj(
            {
                "max_age": {"type": "integer", "description": "oldest child age accepted"},
                "requires_case_reference": {"type": "boolean"},
            },
            ["max_age", "requires_case_reference"],
        ),
    },
    ["name", "title", "criteria", "rules"],
)
JURISDICTIONS = _obj(
    {
        "default": {"type": "string", "description": "used when a body names none"},
        "jurisdictions": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/Jurisdiction"},
        },
    },
    ["default", "jurisdictions"],
)

JURISDICTIONS_EXAMPLE: dict[str, Any] = {
    "default": "us-doj",
    "jurisdictions": [
        {
            "name": "us-doj",
            "title": "United States — Department of Justice AMBER Alert criteria",
            "public_name": "AMBER Alert",
            "source": "U.S. DOJ, Guidance on Criteria for Issuing AMBER Alerts",
            "criteria": [
                {
                    "key": "minor",
                    "label": "The child is 17 years of age or younger",
                    "required": True,
                },
                {
                    "key": "ncic_entered",
                    "label": "The case is entered in NCIC and flagged as a Child Abduction",
                    "required": False,
                },
            ],
            "rules": {"max_age": 17, "requires_case_reference": True},
        }
    ],
}

ERROR = _obj(
    {"error": _TEXT, "message": _TEXT, "fields": {"type": "object", "additionalProperties": _TEXT}},
    ["error", "message"],
)
REASON = _obj({"reason": _TEXT})
PROPOSAL = _obj({"proposal_id": {"type": "integer", "description": "pending_update.id"}})


STATES = list(ALERT_STATES)
LIST_PARAMETERS = [
    {"name": "state", "in": "query", "schema": {"type": "string", "enum": STATES}},
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
    },
    {
        "name": "cursor",
        "in": "query",
        "description": "next_cursor from the previous page",
        "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,17}$"},
    },
]
ALERT_PAGE = _obj(
    {
        "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
        "next_cursor": {"type": ["string", "null"]},
        "next": {"type": ["string", "null"]},
    },
    ["alerts", "next_cursor", "next"],
)
_ERROR_TEXT = {
    400: "invalid input",
    401: "no or bad token",
    403: "role not allowed",
    404: "not found",
    405: "method not allowed (see Allow)",
    409: "not allowed in the alert's state",
    413: "body too large",
}


def _errors(*codes: int) -> dict[str, Any]:
    return {
        str(code): {
            "description": _ERROR_TEXT.get(code, "error"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code in codes
    }


def _responses(ok: str, *extra: int) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Alert"}
    responses: dict[str, Any] = {
        ok: {"description": "the alert", "content": {"application/json": {"schema": ref}}}
    }
    return responses | _errors(400, 401, 403, 404, 409, 413, *extra)


IDEMPOTENCY_KEY_REF = {"$ref": "#/components/parameters/IdempotencyKey"}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Any unique string per intended action: a request repeated with the same key "
    "(and the same body) acts once and gets the first answer again, with the header "
    "Idempotent-Replayed: true. The same key with another body is refused with 400.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 100},
}


def _action(summary: str, body: dict[str, Any] | None = None, ok: str = "200") -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": [{"$ref": "#/components/parameters/AlertId"}, IDEMPOTENCY_KEY_REF],
        "responses": _responses(ok),
    }
    if body is not None:
        op["requestBody"] = {"content": {"application/json": {"schema": body}}}
    return {"post": op}


def _update_operation() -> dict[str, Any]:
    operation = _action(
        "Propose an update (officer or operator); approved by a supervisor like an alert. "
        "Send the whole body as "
        "application/json, or only what changed as application/merge-patch+json (RFC 7396), "
        "applied to the alert's current content",
        None,
        "202",
    )
    operation["post"]["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/AlertBody"},
                "examples": {
                    "full": {
                        "summary": "The whole content, with the vehicle's new plate",
                        "value": {**CREATE_EXAMPLE, **PATCH_EXAMPLE},
                    }
                },
            },
            "application/merge-patch+json": {
                "schema": {"$ref": "#/components/schemas/AlertPatch"},
                "examples": {
                    "new_plate": {
                        "summary": "Only the new plate and direction of travel",
                        "value": PATCH_EXAMPLE,
                    }
                },
            },
        },
    }
    return operation


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
            operation["responses"] = _errors(*codes) | operation.get("responses", {})
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
        "paths": {
            "/api/v1/alerts": {
                "get": {
                    "summary": "List alerts, newest first, a page at a time: follow next "
                    "(or pass next_cursor as cursor) until it is null",
                    "parameters": LIST_PARAMETERS,
                    "responses": {
                        "200": {
                            "description": "one page of alerts",
                            "content": {"application/json": {"schema": ALERT_PAGE}},
                        },
                        **_errors(400, 401),
                    },
                },
                "post": {
                    "summary": "Create a draft (officer)",
                    "parameters": [IDEMPOTENCY_KEY_REF],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/AlertBody"},
                                "examples": {
                                    "exercise": {
                                        "summary": "An exercise alert meeting the us-doj criteria",
                                        "value": CREATE_EXAMPLE,
                                    }
                                },
                            }
                        },
                    },
                    "responses": _responses("201"),
                },
            },
            "/api/v1/alerts/{alert_id}": {
                "parameters": [{"$ref": "#/components/parameters/AlertId"}],
                "get": {
                    "summary": "One alert with versions and delivery counts",
                    "responses": _responses("200"),
                },
                "put": {
                    "summary": "Edit a draft (officer)",
                    "parameters": [IDEMPOTENCY_KEY_REF],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/AlertBody"}
                            }
                        },
                    },
                    "responses": _responses("200"),
                },
            },
            "/api/v1/alerts/{alert_id}/photo": {
                "parameters": [{"$ref": "#/components/parameters/AlertId"}],
                "get": {
                    "summary": "The alert's current photo, published or not (the public "
                    "/photos URL serves it only once published)",
                    "responses": {
                        "200": {
                            "description": "the photo",
                            "content": {
                                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                                "image/png": {"schema": {"type": "string", "format": "binary"}},
                            },
                        },
                        **{
                            code: response
                            for code, response in _responses("200").items()
                            if code in ("401", "404")
                        },
                    },
                },
            },
            "/api/v1/alerts/{alert_id}/submit": _action("Submit for approval (officer)"),
            "/api/v1/alerts/{alert_id}/discard": _action(
                "Discard a draft (only the officer who raised it). The alert is kept, as "
                "discarded, for the record and is never published; discarding it again changes "
                "nothing. 403 for anyone else, 409 once it has been submitted"
            ),
            "/api/v1/alerts/{alert_id}/approve": _action(
                "Approve (supervisor, not the submitter); publishes version 1. With a "
                "proposal_id, approves that pending update instead",
                PROPOSAL,
            ),
            "/api/v1/alerts/{alert_id}/reject": _action("Return to draft (supervisor)", REASON),
            "/api/v1/alerts/{alert_id}/update": _update_operation(),
            "/api/v1/jurisdictions": {
                "get": {
                    "summary": "The criteria rule sets: keys, labels, which are required, and "
                    "their rules (maximum age, case reference)",
                    "responses": {
                        "200": {
                            "description": "every rule set",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Jurisdictions"},
                                    "examples": {
                                        "us": {
                                            "summary": "One rule set, two of its criteria",
                                            "value": JURISDICTIONS_EXAMPLE,
                                        }
                                    },
                                }
                            },
                        },
                        "401": {"description": "no or bad token"},
                    },
                }
            },
            "/api/v1/alerts/{alert_id}/update/approve": _action(
                "Approve the pending update (supervisor, not the proposer); proposal_id names "
                "the update reviewed, and a replaced one is refused with 409",
                PROPOSAL,
            ),
            "/api/v1/alerts/{alert_id}/update/reject": _action("Reject the pending update", REASON),
            "/api/v1/alerts/{alert_id}/cancel": _action(
                "Cancel: withdraw the alert (supervisor or operator)", REASON
            ),
            "/api/v1/alerts/{alert_id}/resolve": _action(
                "Resolve: the child was found (supervisor or operator)", REASON
            ),
            "/api/v1/alerts/{alert_id}/extend": _action(
                "Extend the expiry (supervisor or operator)",
                _obj(
                    {
                        "minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
                        "expires_at": {"type": "string", "format": "date-time"},
                    }
                ),
            ),
            **ACCOUNT_PATHS,
        },
    }
